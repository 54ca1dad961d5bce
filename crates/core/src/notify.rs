//! Who is told what (issue 15): the events of a branch's rows, the commit
//! statuses a forge is sent, and one notifier's decisions about either.
//!
//! [`events`] turns a branch's transitions into one event per commit row
//! and kind ("main broken on linux and mac by 8d3e…"), never one per
//! platform. [`statuses`] turns a matrix into the state each cell's commit
//! status should have on the forge. A [`Notifier`] is a sans-IO machine
//! like the replicator: fed the messages every derivation finds, it sends
//! each at most once (what was sent is recorded durably by the node and
//! given back at start), never one older than its age bound (no storm on a
//! first start or after a long partition), at most so many a minute, and
//! retries a failed delivery with backoff. The node carries the messages
//! (mail, webhooks, IRC, forge APIs).

mod events;
mod notifier;
mod status;

pub use events::{
    Crossing, Event, EventKey, EventKind, events, recent_events, regressions, settled,
};
pub use notifier::{Message, Notifier, NotifierConfig, NotifierStats, NotifyAction, NotifyInput};
pub use status::{StatusKey, StatusState, StatusUpdate, pull_statuses, statuses};
