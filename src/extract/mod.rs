//! Request extractors: each turns a part of a request into a typed value, or into a FastAPI-shaped
//! 4xx that names what is wrong (its own declared failures), instead of actix-web's plain-text
//! defaults. Handlers ask for them as arguments, so a handler's signature shows what it reads and
//! who may call it.
//!
//! - `body`: JSON bodies (`ApiJson`) and forms (`FormBody`), within the size limit and the client
//!   timeout.
//! - `pagination`: `?after_id=&skip=&limit=`.
//! - `path`: path parameters that do not parse.
//! - `query`: a query string's name-value pairs, the last of a name winning.
//! - `caller`: the bearer token's caller (`Authenticated`), or a 401.
//! - `client_address`: who is logging in, seen through `TRUSTED_PROXIES`.
//! - `idempotency_key`: the optional `Idempotency-Key` header.
//! - `schemas`: the OpenAPI schemas of the values with limits, built from the constants that
//!   enforce them.

mod body;
mod caller;
mod client_address;
mod idempotency_key;
mod pagination;
mod path;
mod query;
pub mod schemas;

pub use body::{ApiJson, BodyRejected, BodyTimeout, FormBody};
pub use caller::{Authenticated, CallerRejected, MaybeCaller, VerifiedToken, bearer};
pub use client_address::ClientAddress;
pub use idempotency_key::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, IdempotencyKeyHeader};
pub use pagination::Pagination;
pub use path::path_error;
pub use query::QueryPairs;
