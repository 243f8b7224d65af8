//! What of an upstream's answer reaches the caller.
//!
//! The provider key is Gatehouse's, not the caller's, and some model servers repeat the
//! key they were sent (a 401's "Incorrect API key provided: sk-..."): every answer, whole
//! or streamed, has it taken out ([`Redactor`]). The upstream's headers never reach the
//! caller (the gateway writes its own).
//!
//! A streamed answer is passed on in whole server-sent events ([`EventFramer`]). When the
//! upstream breaks off or stalls, or access is revoked, in the middle of an event,
//! Gatehouse's error event must not be glued onto the upstream's half line (the caller's
//! parser would read one broken event and fail on it instead of raising Gatehouse's
//! error): the half event is dropped, and the error follows the last whole one. Holding
//! a chunk back until its event is complete delays nothing a client could use, since an
//! SSE client dispatches nothing before the blank line that ends an event.

use bytes::Bytes;
use gatehouse_store::Secret;

/// What stands in for the provider key in an answer.
const REDACTED: &[u8] = b"[redacted]";

/// Takes the provider key out of an upstream's answer: as sent, and as a JSON encoder
/// may have escaped it.
#[derive(Debug, Clone, Default)]
pub(super) struct Redactor {
    forms: Vec<Secret>,
}

impl Redactor {
    /// For the deployment's provider key (none: nothing to take out).
    pub fn new(key: Option<&Secret>) -> Redactor {
        let Some(key) = key.and_then(Secret::expose_str).filter(|k| !k.is_empty()) else {
            return Redactor::default();
        };
        let mut forms = vec![key.to_owned()];
        // JSON escaping (`"`, `\`, control characters), and the `\/` some encoders write.
        if let Ok(quoted) = serde_json::to_string(key)
            && let Some(inner) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"'))
        {
            forms.push(inner.to_owned());
        }
        let slashed: Vec<String> = forms.iter().map(|f| f.replace('/', "\\/")).collect();
        forms.extend(slashed);
        forms.sort();
        forms.dedup();
        // The longest first: a form that contains another is taken out whole.
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        Redactor {
            forms: forms.into_iter().map(Secret::new).collect(),
        }
    }

    /// `bytes` without the key.
    pub fn redact(&self, bytes: Bytes) -> Bytes {
        let mut out: Option<Vec<u8>> = None;
        for form in &self.forms {
            let needle = form.expose();
            let current = out.as_deref().unwrap_or(&bytes);
            if let Some(replaced) = replace_all(current, needle) {
                out = Some(replaced);
            }
        }
        out.map_or(bytes, Bytes::from)
    }
}

/// `hay` with every `needle` replaced by [`REDACTED`], or `None` when there is none.
fn replace_all(hay: &[u8], needle: &[u8]) -> Option<Vec<u8>> {
    let finder = memchr::memmem::Finder::new(needle);
    let mut found = finder.find_iter(hay).peekable();
    found.peek()?;
    let mut out = Vec::with_capacity(hay.len());
    let mut from = 0;
    for at in found {
        // Overlapping matches: the earlier one already took these bytes.
        if at < from {
            continue;
        }
        out.extend_from_slice(&hay[from..at]);
        out.extend_from_slice(REDACTED);
        from = at + needle.len();
    }
    out.extend_from_slice(&hay[from..]);
    Some(out)
}

/// The most an upstream may send without ending an event (a stream that never does is
/// not server-sent events).
pub(super) const EVENT_LIMIT: usize = 8 * 1024 * 1024;

/// An upstream event longer than [`EVENT_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the model endpoint sent more than {EVENT_LIMIT} bytes without ending an event")]
pub(super) struct EventTooLong;

/// Cuts a server-sent-event stream after its last complete event. Lines end in CRLF, LF
/// or CR, and a blank line ends an event (the SSE specification); a CRLF cut between its
/// CR and LF reads the same to the client, which takes an LF right after a CR as part of
/// the same line end.
#[derive(Debug, Default)]
pub(super) struct EventFramer {
    /// Received and not yet passed on.
    pending: Vec<u8>,
    /// How much of `pending` has been scanned.
    scanned: usize,
    /// The end of the last complete event in `pending` (0: none).
    boundary: usize,
    /// Inside a line that has something on it.
    in_line: bool,
    /// The last byte was a CR (an LF next belongs to it).
    after_cr: bool,
    /// That CR ended an event: the LF belongs to the event too.
    cr_ended_event: bool,
}

impl EventFramer {
    /// Takes a chunk; returns the events it completed (empty when none).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Bytes, EventTooLong> {
        self.pending.extend_from_slice(chunk);
        for i in self.scanned..self.pending.len() {
            let b = self.pending[i];
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                if std::mem::take(&mut self.cr_ended_event) {
                    self.boundary = i + 1;
                }
                continue;
            }
            self.cr_ended_event = false;
            if b == b'\r' || b == b'\n' {
                if !self.in_line {
                    self.boundary = i + 1;
                    self.cr_ended_event = b == b'\r';
                }
                self.in_line = false;
                self.after_cr = b == b'\r';
            } else {
                self.in_line = true;
            }
        }
        self.scanned = self.pending.len();
        let complete = if self.boundary > 0 {
            let rest = self.pending.split_off(self.boundary);
            let events = std::mem::replace(&mut self.pending, rest);
            self.scanned -= self.boundary;
            self.boundary = 0;
            Bytes::from(events)
        } else {
            Bytes::new()
        };
        if self.pending.len() > EVENT_LIMIT {
            return Err(EventTooLong);
        }
        Ok(complete)
    }

    /// Whether part of an event is held back.
    pub fn holds_part(&self) -> bool {
        !self.pending.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame(chunks: &[&str]) -> (Vec<String>, bool) {
        let mut f = EventFramer::default();
        let out = chunks
            .iter()
            .map(|c| String::from_utf8(f.push(c.as_bytes()).unwrap().to_vec()).unwrap())
            .collect();
        (out, f.holds_part())
    }

    #[test]
    fn only_whole_events_are_passed_on() {
        assert_eq!(
            frame(&["data: a\n\ndata: b", "\n", "\ndata: {\"c\": ["]),
            (
                vec!["data: a\n\n".into(), String::new(), "data: b\n\n".into()],
                true
            )
        );
        // Every line ending the specification allows, and a CRLF cut in two.
        assert_eq!(
            frame(&["data: a\r\n\r", "\ndata: b\r\rdata: c\n\r\n"]),
            (
                vec!["data: a\r\n\r".into(), "\ndata: b\r\rdata: c\n\r\n".into()],
                false
            )
        );
        // A CR ending a line with something on it is not the end of an event.
        assert_eq!(
            frame(&["data: a\r", "\ndata: b"]),
            (vec![String::new(), String::new()], true)
        );
        // Comments and other fields are part of events like data lines.
        assert_eq!(
            frame(&[": keep-alive\n\nevent: x\nid: 1\ndata: y\n\n"]),
            (
                vec![": keep-alive\n\nevent: x\nid: 1\ndata: y\n\n".into()],
                false
            )
        );
    }

    #[test]
    fn a_stream_that_never_ends_an_event_is_refused() {
        let mut f = EventFramer::default();
        let line = vec![b'x'; 1024 * 1024];
        let mut result = Ok(Bytes::new());
        for _ in 0..=EVENT_LIMIT / line.len() {
            result = f.push(&line);
        }
        assert_eq!(result, Err(EventTooLong));
    }

    #[test]
    fn the_key_is_taken_out_in_every_form() {
        let r = Redactor::new(Some(&Secret::new("sk-a/b\"c")));
        let answer = r#"{"m": "sk-a/b"c, sk-a\/b\"c and sk-a/b\"c"}"#;
        let out = r.redact(Bytes::from(answer));
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"m": "[redacted], [redacted] and [redacted]"}"#
        );
        let plain = Bytes::from_static(b"nothing here");
        assert_eq!(r.redact(plain.clone()), plain);
        assert_eq!(Redactor::new(None).redact(plain.clone()), plain);
        assert_eq!(
            Redactor::new(Some(&Secret::new(""))).redact(plain.clone()),
            plain
        );
        // Overlapping occurrences leave no piece of the key.
        let r = Redactor::new(Some(&Secret::new("aa")));
        assert_eq!(
            r.redact(Bytes::from_static(b"aaa")).as_ref(),
            b"[redacted]a"
        );
    }
}
