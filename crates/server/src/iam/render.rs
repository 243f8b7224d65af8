//! XML shapes of IAM entities, as the IAM API reference defines them.
//!
//! Policy documents are URL-encoded inside the XML, as AWS sends them (botocore decodes
//! them back into JSON for boto3 users).

use crate::xml::Xml;
use gatehouse_store::{AccessKey, Group, Page, Policy, PolicyVersion, Role, Tag, Timestamp, User};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

const DOC_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub(crate) fn time(t: &Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(crate) fn document(doc: &str) -> String {
    utf8_percent_encode(doc, DOC_ESCAPE).to_string()
}

pub(crate) fn user(x: &mut Xml, tag: &str, u: &User, tags: &[Tag]) {
    x.wrap(tag, |x| {
        x.elem("Path", &u.path)
            .elem("UserName", &u.name)
            .elem("UserId", &u.user_id)
            .elem("Arn", &u.arn())
            .elem("CreateDate", &time(&u.created));
        if let Some(b) = &u.permissions_boundary {
            boundary(x, b);
        }
        tag_list(x, tags);
    });
}

fn boundary(x: &mut Xml, arn: &str) {
    x.wrap("PermissionsBoundary", |x| {
        x.elem("PermissionsBoundaryType", "Policy")
            .elem("PermissionsBoundaryArn", arn);
    });
}

pub(crate) fn tag_list(x: &mut Xml, tags: &[Tag]) {
    if tags.is_empty() {
        return;
    }
    x.wrap("Tags", |x| tag_members(x, tags));
}

pub(crate) fn tag_members(x: &mut Xml, tags: &[Tag]) {
    for t in tags {
        x.wrap("member", |x| {
            x.elem("Key", &t.key).elem("Value", &t.value);
        });
    }
}

pub(crate) fn group(x: &mut Xml, tag: &str, g: &Group) {
    x.wrap(tag, |x| {
        x.elem("Path", &g.path)
            .elem("GroupName", &g.name)
            .elem("GroupId", &g.group_id)
            .elem("Arn", &g.arn())
            .elem("CreateDate", &time(&g.created));
    });
}

pub(crate) fn role(x: &mut Xml, tag: &str, r: &Role, tags: &[Tag]) {
    x.wrap(tag, |x| {
        x.elem("Path", &r.path)
            .elem("RoleName", &r.name)
            .elem("RoleId", &r.role_id)
            .elem("Arn", &r.arn())
            .elem("CreateDate", &time(&r.created))
            .elem("AssumeRolePolicyDocument", &document(&r.trust_policy))
            .opt("Description", r.description.as_deref())
            .elem("MaxSessionDuration", &r.max_session_duration.to_string());
        if let Some(b) = &r.permissions_boundary {
            boundary(x, b);
        }
        tag_list(x, tags);
    });
}

pub(crate) fn policy(x: &mut Xml, tag: &str, p: &Policy, tags: &[Tag]) {
    x.wrap(tag, |x| {
        x.elem("PolicyName", &p.name)
            .elem("PolicyId", &p.policy_id)
            .elem("Arn", &p.arn)
            .elem("Path", &p.path)
            .elem("DefaultVersionId", &p.default_version_id)
            .elem("AttachmentCount", &p.attachment_count.to_string())
            .elem(
                "PermissionsBoundaryUsageCount",
                &p.permissions_boundary_usage_count.to_string(),
            )
            .elem("IsAttachable", "true")
            .opt("Description", p.description.as_deref())
            .elem("CreateDate", &time(&p.created))
            .elem("UpdateDate", &time(&p.updated));
        tag_list(x, tags);
    });
}

pub(crate) fn policy_version(x: &mut Xml, tag: &str, v: &PolicyVersion, with_document: bool) {
    x.wrap(tag, |x| {
        if with_document {
            x.elem("Document", &document(&v.document));
        }
        x.elem("VersionId", &v.version_id)
            .elem(
                "IsDefaultVersion",
                if v.is_default { "true" } else { "false" },
            )
            .elem("CreateDate", &time(&v.created));
    });
}

pub(crate) fn access_key_metadata(x: &mut Xml, k: &AccessKey) {
    x.wrap("member", |x| {
        x.elem("UserName", &k.user_name)
            .elem("AccessKeyId", &k.access_key_id)
            .elem("Status", k.status.as_str())
            .elem("CreateDate", &time(&k.created));
    });
}

/// `<IsTruncated>` and `<Marker>` for a page.
pub(crate) fn paging<T>(x: &mut Xml, page: &Page<T>) {
    x.elem(
        "IsTruncated",
        if page.is_truncated() { "true" } else { "false" },
    );
    x.opt("Marker", page.next_marker.as_deref());
}

/// A list of members followed by paging.
pub(crate) fn page<T>(x: &mut Xml, list_tag: &str, page: &Page<T>, item: impl Fn(&mut Xml, &T)) {
    x.wrap(list_tag, |x| {
        for it in &page.items {
            item(x, it);
        }
    });
    paging(x, page);
}
