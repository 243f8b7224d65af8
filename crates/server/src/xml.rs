//! The AWS Query protocol's response side: XML envelopes for results and errors.
//!
//! The shapes are AWS's: `<ActionResponse xmlns=...><ActionResult>...</ActionResult>
//! <ResponseMetadata><RequestId>...</RequestId></ResponseMetadata></ActionResponse>` and
//! `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`,
//! which is what botocore and the AWS SDKs parse.

use std::fmt::Write as _;

/// The IAM API's XML namespace.
pub const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// The STS API's XML namespace.
pub const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Builds an XML document element by element, escaping all text.
#[derive(Debug, Default)]
pub struct Xml {
    out: String,
}

impl Xml {
    /// An empty document.
    pub fn new() -> Xml {
        Xml {
            out: String::with_capacity(512),
        }
    }

    /// `<tag>`.
    pub fn open(&mut self, tag: &str) -> &mut Xml {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// `</tag>`.
    pub fn close(&mut self, tag: &str) -> &mut Xml {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// `<tag>text</tag>`.
    pub fn elem(&mut self, tag: &str, text: &str) -> &mut Xml {
        self.open(tag);
        escape_into(&mut self.out, text);
        self.close(tag)
    }

    /// `<tag>text</tag>` when `text` is present.
    pub fn opt(&mut self, tag: &str, text: Option<&str>) -> &mut Xml {
        if let Some(t) = text {
            self.elem(tag, t);
        }
        self
    }

    /// `<tag>...</tag>` around whatever `f` writes.
    pub fn wrap(&mut self, tag: &str, f: impl FnOnce(&mut Xml)) -> &mut Xml {
        self.open(tag);
        f(self);
        self.close(tag)
    }

    /// The document so far.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Escapes `&`, `<`, `>`, `"` and `'`; writes tab, line feed and carriage return as
/// character references (so that a parser keeps them as they were); and replaces what
/// XML 1.0 cannot carry at all (the other C0 controls, U+FFFE, U+FFFF) with U+FFFD, so
/// that text from a token, a name or an error message never makes a document clients
/// cannot parse.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

/// A successful response for `action`; `result` is the inside of `<ActionResult>`
/// (`None` for actions with no result element, such as `DeleteUser`).
pub fn response(action: &str, ns: &str, request_id: &str, result: Option<&str>) -> String {
    let mut x = Xml::new();
    let _ = write!(
        x.out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{ns}\">"
    );
    if let Some(inner) = result {
        let tag = format!("{action}Result");
        x.open(&tag);
        x.out.push_str(inner);
        x.close(&tag);
    }
    x.wrap("ResponseMetadata", |x| {
        x.elem("RequestId", request_id);
    });
    x.close(&format!("{action}Response"));
    x.finish()
}

/// An error response in AWS's Query shape.
pub fn error(kind: &str, code: &str, message: &str, request_id: &str, ns: &str) -> String {
    let mut x = Xml::new();
    let _ = write!(
        x.out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{ns}\">"
    );
    x.wrap("Error", |x| {
        x.elem("Type", kind)
            .elem("Code", code)
            .elem("Message", message);
    });
    x.elem("RequestId", request_id);
    x.close("ErrorResponse");
    x.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let mut inner = Xml::new();
        inner.wrap("User", |x| {
            x.elem("UserName", "a<b");
        });
        let r = response("GetUser", IAM_NS, "rid", Some(&inner.finish()));
        assert!(r.contains("<GetUserResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><GetUserResult><User><UserName>a&lt;b</UserName></User></GetUserResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></GetUserResponse>"));
        let e = error("Sender", "NoSuchEntity", "no \"x\"", "rid", IAM_NS);
        assert!(e.contains("<Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>no &quot;x&quot;</Message></Error><RequestId>rid</RequestId>"));
    }

    #[test]
    fn what_xml_cannot_carry_is_replaced_and_whitespace_kept() {
        let mut out = String::new();
        escape_into(
            &mut out,
            "a\u{0}b\u{1}c\u{7}\u{1b}\u{7f}\u{fffe}\u{ffff}\td\ne\rf\u{85}é😀",
        );
        assert_eq!(
            out,
            "a\u{fffd}b\u{fffd}c\u{fffd}\u{fffd}\u{7f}\u{fffd}\u{fffd}&#9;d&#10;e&#13;f\u{85}é😀"
        );
    }
}
