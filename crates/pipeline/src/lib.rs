//! What every face of Gatehouse shares: the control plane's Query API, the AI gateway, and
//! the faces to come (MCP tools, sign-in) all authenticate a caller, resolve its principal
//! with its compiled policies, ask the engine, and record the decision the same way. This
//! crate is where that pipeline lives, so that a new face calls it instead of copying it.
//!
//! It must not know HTTP routing, XML, OpenAI JSON, or what any IAM action means.

pub mod authz;
pub mod clock;
pub mod counts;
pub mod origin;

pub use clock::{Clock, ManualClock};
