//! What every face of Gatehouse shares: the control plane's Query API, the AI gateway, and
//! the faces to come (MCP tools, sign-in) all authenticate a caller, resolve its principal
//! with its compiled policies, ask the engine, and record the decision the same way. This
//! crate is where that pipeline lives, so that a new face calls it instead of copying it.
//!
//! - [`Core`] — the shared state (store, account configuration, clock, caches, signing
//!   ring, audit writers);
//! - authenticate and principal — [`Core::authenticate`] (any [`Credential`] kind in the
//!   `Authorization` header) and [`Core::authenticate_signed`] (SigV4 only, for the Query
//!   APIs) give a [`Principal`];
//! - decide — [`decide::decide`] gives a [`Decided`] (decision, request, sealed denial);
//! - record — [`audit::AuditWriters`], the one writer path of `gatehouse_audit::AuditRecord`;
//! - [`Call`] — the four steps for one call, for a face that keeps none of them itself.
//!
//! It must not know HTTP routing, XML, OpenAI JSON, or what any IAM action means.

pub mod audit;
pub mod authenticate;
pub mod authz;
pub mod call;
pub mod clock;
pub mod core;
pub mod counts;
pub mod decide;
pub mod error;
pub mod identity;
pub mod origin;
pub mod session;

pub use authenticate::{CallerSource, Credential, Principal, RequestParts, declared_body_matches};
pub use call::{Call, DecideError, Denied};
pub use clock::{Clock, ManualClock};
pub use core::{Core, CoreConfig};
pub use decide::Decided;
pub use error::PipelineError;
