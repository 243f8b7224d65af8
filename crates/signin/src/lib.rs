//! Sign-in for people (issue 13): Gatehouse federated to the company's OpenID Connect
//! identity providers, so that people get short-lived role sessions instead of long-lived
//! access keys, and (in later steps) the OAuth authorization server that MCP clients and
//! `gatehouse login` use, and token exchange for agents acting for people.
//!
//! This crate holds sign-in's own rules, once for every way in (CLI, config file, Query
//! API): what a valid identity source is ([`source`]), what an assignment is and whom it
//! applies to ([`assignment`]), and the config file's `[signin]` table ([`config`]). The
//! store keeps the rows (`gatehouse_store::SigninSource`, `SigninAssignment`; migration
//! `0060_signin.sql`), with client secrets sealed. Must not know: HTTP routing of the
//! server, XML, how the Query API authenticates.

pub mod assignment;
pub mod codes;
pub mod config;
mod error;
pub mod oauth;
pub mod source;

pub use assignment::{
    AssignmentSpec, Person, Subject, assign, assignment_arn, assignments_for, unassign,
};
pub use config::{SigninConfig, apply as apply_config};
pub use error::SigninError;
pub use source::{SourceSpec, put_source, remove_source, source_arn};
