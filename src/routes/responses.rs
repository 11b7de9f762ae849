//! The answers many routes share, described once and listed in each route's `responses(...)`:
//! every route that can give one of these says so with the same words, and the limits quoted come
//! from the constants that enforce them.

use std::{collections::BTreeMap, marker::PhantomData};

use serde_json::{Value, json};
use utoipa::{
    IntoResponses, ToSchema,
    openapi::{
        ArrayBuilder, Content, HeaderBuilder, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder,
        Type,
    },
};

use crate::{domain::MAX_BALANCE, error::OUTCOME_UNKNOWN};

type Responses = BTreeMap<String, RefOr<Response>>;

fn json_content(schema: &str, example: Option<Value>) -> Content {
    let mut content = Content::new(Some(Ref::from_schema_name(schema)));
    content.example = example;
    content
}

/// An error answered with `{"detail": "..."}`.
fn detail(description: impl Into<String>, example: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            json_content("ErrorBody", Some(json!({ "detail": example }))),
        )
        .into()
}

fn responses<const N: usize>(list: [(&str, RefOr<Response>); N]) -> Responses {
    list.into_iter()
        .map(|(status, response)| (status.to_owned(), response))
        .collect()
}

/// 422: FastAPI's `HTTPValidationError`, for a body, a parameter or a header.
pub struct Invalid;

impl IntoResponses for Invalid {
    fn responses() -> Responses {
        let response = ResponseBuilder::new()
            .description(
                "The request is invalid: `detail` lists every problem, with where it is (`loc`: \
                 the body field, path or query parameter, or header), what is wrong (`msg`) and \
                 its kind (`type`)",
            )
            .content(
                "application/json",
                json_content("ValidationErrorBody", None),
            );
        responses([("422", response.into())])
    }
}

/// What a route with a JSON body can answer about the body itself, besides 422.
pub struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> Responses {
        let mut all = responses([
            (
                "408",
                detail(
                    "The body did not arrive within the client timeout",
                    "Request body not received in time",
                ),
            ),
            (
                "413",
                detail(
                    "The body is larger than the configured limit",
                    "Request body too large",
                ),
            ),
        ]);
        all.extend(Invalid::responses());
        all
    }
}

/// 404 for an account that does not exist, or is not the caller's: the two look the same.
pub struct AccountNotFound;

impl IntoResponses for AccountNotFound {
    fn responses() -> Responses {
        let description = "No account has this id, or not one the caller may see";
        responses([("404", detail(description, "Account not found"))])
    }
}

pub struct TransactionNotFound;

impl IntoResponses for TransactionNotFound {
    fn responses() -> Responses {
        let description = "No ledger row has this id, or not one the caller may see";
        responses([("404", detail(description, "Transaction not found"))])
    }
}

/// 409: the money rules refused a write, and nothing was written.
pub struct MoneyRefused;

impl IntoResponses for MoneyRefused {
    fn responses() -> Responses {
        let description = format!(
            "The money rules refused it and nothing was written: `Insufficient funds` when a \
             balance would go below zero, `Balance limit exceeded` when one would go above \
             {MAX_BALANCE} minor units"
        );
        responses([("409", detail(description, "Insufficient funds"))])
    }
}

/// 401 for a route that needs a token.
pub struct AuthErrors;

impl IntoResponses for AuthErrors {
    fn responses() -> Responses {
        let response = ResponseBuilder::new()
            .description(
                "No bearer token (`Not authenticated`), or one that is malformed, expired, \
                 wrongly signed or names no user (`Could not validate credentials`)",
            )
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .description(Some("`Bearer`"))
                    .build(),
            )
            .content(
                "application/json",
                json_content("ErrorBody", Some(json!({"detail": "Not authenticated"}))),
            );
        responses([("401", response.into())])
    }
}

const UNAVAILABLE: &str = "Service temporarily unavailable";

/// 503 for a route that reads the database.
pub struct DatabaseErrors;

impl IntoResponses for DatabaseErrors {
    fn responses() -> Responses {
        let description = "The database could not be reached in time and the request was not \
                           carried out: retry later";
        responses([("503", detail(description, UNAVAILABLE))])
    }
}

/// 503 and 500 for a route that writes to the ledger, when the database fails.
pub struct WriteErrors;

impl IntoResponses for WriteErrors {
    fn responses() -> Responses {
        let unavailable = "The database could not be reached in time and the write was \
                           certainly not applied: retry";
        let unknown = "The connection failed after the write was sent, and whether it was \
                       applied could not be learned in time. Check the ledger before sending it \
                       again, or resend it with the same `Idempotency-Key`, which applies it at \
                       most once";
        responses([
            ("503", detail(unavailable, UNAVAILABLE)),
            ("500", detail(unknown, OUTCOME_UNKNOWN)),
        ])
    }
}

/// 200 with a page of `T`s and, when the list goes on, the link to the next page.
pub struct PageOf<T>(PhantomData<T>);

impl<T: ToSchema> IntoResponses for PageOf<T> {
    fn responses() -> Responses {
        let rows = ArrayBuilder::new().items(Ref::from_schema_name(T::name()));
        let link = HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some(
                "Present when the list goes on: the URL of the next page, this path with \
                 `after_id` (the last id of this page) and `limit`, as \
                 `<...?after_id=100&limit=100>; rel=\"next\"` (RFC 8288)",
            ))
            .build();
        let response = ResponseBuilder::new()
            .description(format!("A page of {}s, by id", T::name().to_lowercase()))
            .header("Link", link)
            .content("application/json", Content::new(Some(rows)));
        responses([("200", response.into())])
    }
}
