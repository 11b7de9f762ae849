//! What a client is told when a request fails, and how the OpenAPI document says so, written once.
//!
//! Every kind of failure is an [`Answer`]: its status, the words a client gets (FastAPI's shapes,
//! `{"detail": "..."}` or, for 422, `{"detail": [{"loc", "msg", "type"}]}`), and the description
//! the document gives it. A route's failures are one enum of answers, declared with [`failures!`],
//! which makes from that one list both its HTTP answers (`ResponseError`) and its documented
//! responses (`IntoResponses`, listed in the route's `#[utoipa::path]`): the two cannot differ.
//! Extractors are declared the same way, and a route's enum takes theirs in.
//!
//! - `requests`: what was wrong with the request itself (body, parameters, headers).
//! - `refusals`: what the rules refused (callers, logins, accounts, money).
//! - `server`: what failed on our side (the database, an internal error).
//! - `body`: the JSON bodies.

mod body;
mod refusals;
mod requests;
mod server;

pub use body::{
    ErrorBody, FieldError, Loc, LocItem, MAX_PROBLEMS, NOT_AN_INTEGER, NOT_AN_OBJECT,
    ValidationErrorBody, problems_schema, words_schema,
};
pub use refusals::{
    AccountNotFound, BadCredentials, BadRefreshToken, EndpointNotFound, HoldConflict, HoldNotFound,
    MethodNotAllowed, MoneyRefused, OperatorsOnly, OverRequestLimit, ProfileRunning, RouteNotFound,
    SignUpDisabled, Throttled, TransactionNotFound, Unauthenticated, UsernameTaken,
};
pub use requests::{
    Invalid, KeyReused, PayloadTooLarge, Problems, RequestTimeout, Unreadable, domain_words,
};
pub use server::{DatabaseFailed, Diagnostic, Internal, NotReady, WriteFailed};

use std::collections::BTreeMap;

use actix_web::{HttpResponse, http::StatusCode};
use serde_json::json;
use utoipa::openapi::{
    Content, RefOr, Response, ResponseBuilder, example::ExampleBuilder, schema::Ref,
};

/// Documented responses by status, as utoipa's `IntoResponses` gives them.
pub type Responses = BTreeMap<String, RefOr<Response>>;

/// One kind of failure: the answer a client gets and how the document describes it.
pub trait Answer: std::error::Error {
    fn status(&self) -> StatusCode;
    fn respond(&self) -> HttpResponse;
    /// Every status this kind can answer, described, with an example of each body.
    fn responses() -> Responses
    where
        Self: Sized;
}

/// The reason a request was refused, on its response, for `bank_rejections_total`: failures of
/// ours carry none.
#[derive(Clone, Copy, Debug)]
pub struct Rejected(pub &'static str);

/// `{"detail": words}` at `status`, marked with the reason the client was refused, if it was.
fn detail(status: StatusCode, words: &str, reason: Option<&'static str>) -> HttpResponse {
    let mut response = HttpResponse::build(status).json(ErrorBody {
        detail: body::cut(words, body::MAX_WORDS_CHARS),
    });
    if let Some(reason) = reason {
        response.extensions_mut().insert(Rejected(reason));
    }
    response
}

/// A documented answer with the `{"detail": words}` body; its example is named `name`.
fn documented(
    status: StatusCode,
    description: impl Into<String>,
    name: &str,
    words: &str,
) -> Responses {
    let example = json!({ "detail": words });
    documented_with(status, description, "ErrorBody", name, example, |r| r)
}

/// A documented answer whose body has the schema `schema`, its example named `name`.
pub(crate) fn documented_with(
    status: StatusCode,
    description: impl Into<String>,
    schema: &str,
    name: &str,
    example: serde_json::Value,
    more: impl FnOnce(ResponseBuilder) -> ResponseBuilder,
) -> Responses {
    let mut content = Content::new(Some(Ref::from_schema_name(schema)));
    let example = ExampleBuilder::new().value(Some(example)).build();
    content.examples.insert(name.to_owned(), RefOr::T(example));
    let response = ResponseBuilder::new()
        .description(description)
        .content("application/json", content);
    let mut responses = Responses::new();
    responses.insert(status.as_str().to_owned(), more(response).build().into());
    responses
}

/// All the answers of several kinds. Kinds that share a status are one response, described by
/// each in turn, with every kind's example.
pub fn merge(all: impl IntoIterator<Item = Responses>) -> Responses {
    let mut merged = Responses::new();
    for (status, response) in all.into_iter().flatten() {
        let RefOr::T(response) = response else {
            merged.insert(status, response);
            continue;
        };
        let Some(RefOr::T(into)) = merged.get_mut(&status) else {
            merged.insert(status, RefOr::T(response));
            continue;
        };
        if !into.description.contains(&response.description) {
            into.description = format!("{}\n\n{}", into.description, response.description);
        }
        into.headers.extend(response.headers);
        for (kind, content) in response.content {
            let (Some(RefOr::T(into)), RefOr::T(content)) = (into.content.get_mut(&kind), &content)
            else {
                into.content.entry(kind).or_insert(content);
                continue;
            };
            for (name, example) in &content.examples {
                into.examples.entry(name.clone()).or_insert(example.clone());
            }
        }
    }
    merged
}

/// Declares an answer that is always the same: its status, the words a client gets, the reason it
/// is counted under (`None` for a failure of ours), what the log says, and how the document
/// describes it.
macro_rules! fixed_answer {
    (
        $(#[$meta:meta])* $name:ident {
            status: $status:ident,
            words: $words:expr,
            rejected: $reason:expr,
            log: $log:literal,
            example: $example:literal,
            description: $description:expr $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, thiserror::Error)]
        #[error($log)]
        pub struct $name;

        impl $crate::error::Answer for $name {
            fn status(&self) -> actix_web::http::StatusCode {
                actix_web::http::StatusCode::$status
            }

            fn respond(&self) -> actix_web::HttpResponse {
                $crate::error::detail(self.status(), $words, $reason)
            }

            fn responses() -> $crate::error::Responses {
                let status = actix_web::http::StatusCode::$status;
                $crate::error::documented(status, $description, $example, $words)
            }
        }
    };
}
pub(crate) use fixed_answer;

/// Declares the failures of a route or an extractor: an enum of [`Answer`]s that is an `Answer`
/// itself, answers HTTP with each (`ResponseError`) and documents all of them (`IntoResponses`).
/// Each variant converts from its answer with `?`.
macro_rules! failures {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident($answer:ty)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, thiserror::Error)]
        $vis enum $name {
            $(#[error(transparent)] $variant(#[from] $answer),)+
        }

        impl $crate::error::Answer for $name {
            fn status(&self) -> actix_web::http::StatusCode {
                match self { $(Self::$variant(answer) => answer.status(),)+ }
            }

            fn respond(&self) -> actix_web::HttpResponse {
                match self { $(Self::$variant(answer) => answer.respond(),)+ }
            }

            fn responses() -> $crate::error::Responses {
                $crate::error::merge([$(<$answer as $crate::error::Answer>::responses(),)+])
            }
        }

        $crate::error::answers_http!($name);
    };
}
pub(crate) use failures;

/// Lets an [`Answer`] be the error of a handler or an extractor, answered and documented by
/// itself.
macro_rules! answers_http {
    ($name:ty) => {
        impl actix_web::ResponseError for $name {
            fn status_code(&self) -> actix_web::http::StatusCode {
                $crate::error::Answer::status(self)
            }

            fn error_response(&self) -> actix_web::HttpResponse {
                $crate::error::Answer::respond(self)
            }
        }

        impl utoipa::IntoResponses for $name {
            fn responses() -> $crate::error::Responses {
                <Self as $crate::error::Answer>::responses()
            }
        }
    };
}
pub(crate) use answers_http;
