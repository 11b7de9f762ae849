//! The JSON bodies of errors, in FastAPI's shapes: `{"detail": "..."}`, and for 422 a list of
//! `{loc, msg, type}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// FastAPI's `HTTPError`: the body of every non-422 error.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub detail: String,
}

/// FastAPI's `HTTPValidationError`: every problem found in the request, each with where it is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidationErrorBody {
    pub detail: Vec<FieldError>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// Where the problem is: `["body", "credit"]`, `["query", "limit"]`, `["path", "account_id"]`.
    pub loc: Vec<LocItem>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// pydantic's words for the problems every kind of input can have.
pub const FIELD_REQUIRED: &str = "Field required";
pub const NOT_AN_INTEGER: &str = "Input should be a valid integer";
pub const NOT_AN_OBJECT: &str = "Input should be a valid dictionary or object";
pub const NOT_JSON: &str = "JSON decode error";

impl FieldError {
    pub fn new(loc: Loc, msg: impl Into<String>, kind: &'static str) -> Self {
        Self {
            loc: loc.into_items(),
            msg: msg.into(),
            kind: kind.into(),
        }
    }

    pub fn missing(loc: Loc) -> Self {
        Self::new(loc, FIELD_REQUIRED, "missing")
    }

    /// A body that is not JSON, at the byte where reading stopped.
    pub fn not_json(offset: u64) -> Self {
        Self::new(Loc::BodyOffset(offset), NOT_JSON, "json_invalid")
    }

    /// Text that should have been an integer (`int_parsing`, pydantic's name for a path or query
    /// parameter's).
    pub fn not_an_integer(loc: Loc) -> Self {
        Self::new(loc, NOT_AN_INTEGER, "int_parsing")
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(untagged)]
pub enum LocItem {
    Name(String),
    Index(u64),
}

/// Where in the request a problem is.
#[derive(Clone, Copy, Debug)]
pub enum Loc<'a> {
    Body,
    BodyField(&'a str),
    /// A byte offset into a body that is not valid JSON.
    BodyOffset(u64),
    Query(&'a str),
    Path(&'a str),
    Header(&'a str),
}

impl Loc<'_> {
    fn into_items(self) -> Vec<LocItem> {
        let name = |s: &str| LocItem::Name(s.to_owned());
        match self {
            Loc::Body => vec![name("body")],
            Loc::BodyField(field) => vec![name("body"), name(field)],
            Loc::BodyOffset(offset) => vec![name("body"), LocItem::Index(offset)],
            Loc::Query(field) => vec![name("query"), name(field)],
            Loc::Path(field) => vec![name("path"), name(field)],
            Loc::Header(field) => vec![name("header"), name(field)],
        }
    }
}
