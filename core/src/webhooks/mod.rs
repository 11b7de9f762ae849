//! Webhooks: endpoints that receive the money events of their owner's accounts (every account's,
//! for an operator's), and the outbox their messages wait in.
//!
//! The database writes the outbox itself (triggers from migrations `create_webhooks`,
//! `outbox_per_statement` and `outbox_only_with_endpoints`), in the transaction of each change, so
//! a committed change always has its messages and a change that did not commit never has. Here:
//! registering and reading endpoints (`endpoints`), and the dispatcher's side of the outbox
//! (`outbox`): claiming due messages with a lease, so replicas never send one at the same time,
//! with the event each tells of, and settling each attempt.
//! Sending, signing and what is counted are the web crate's.

mod endpoints;
mod outbox;

pub use endpoints::{NewEndpoint, enable, endpoint, endpoints, register};
pub use outbox::{Backlog, Due, Event, Failed, backlog, claim, delivered, failed, prune};

/// The events an endpoint may ask for, as the database's triggers name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventType {
    TransactionPosted,
    TransferMade,
    HoldCreated,
    HoldCaptured,
    HoldVoided,
    HoldExpired,
}

impl EventType {
    pub const ALL: [Self; 6] = [
        Self::TransactionPosted,
        Self::TransferMade,
        Self::HoldCreated,
        Self::HoldCaptured,
        Self::HoldVoided,
        Self::HoldExpired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransactionPosted => "transaction.posted",
            Self::TransferMade => "transfer.made",
            Self::HoldCreated => "hold.created",
            Self::HoldCaptured => "hold.captured",
            Self::HoldVoided => "hold.voided",
            Self::HoldExpired => "hold.expired",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == name)
    }
}

/// Milliseconds since the epoch, as the outbox keeps time.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
