//! The JSON bodies of errors, in FastAPI's shapes: `{"detail": "..."}`, and for 422 a list of
//! `{loc, msg, type}`.

use serde::{Deserialize, Serialize};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        ArrayBuilder, KnownFormat, Object, ObjectBuilder, OneOfBuilder, Ref, RefOr, Schema,
        SchemaFormat, Type,
    },
};

/// The most characters of words an error holds. Words that quote the client (serde's "unknown
/// field `...`") are cut to it, so an answer never grows with what was sent.
pub const MAX_WORDS_CHARS: usize = 500;
/// The most characters of a name in `loc` (a field, parameter or header), cut like words.
pub const MAX_NAME_CHARS: usize = 100;
/// `["body", "items", 3, "credit"]`, a batch item's field, is the deepest place a problem has.
pub const MAX_LOC_ITEMS: usize = 4;
/// The most characters of a problem's kind (`int_type`, `missing`, pydantic's short names).
pub const MAX_KIND_CHARS: usize = 32;
/// The most problems one 422 lists: the first found (a body has far fewer fields).
pub const MAX_PROBLEMS: usize = 32;

/// `text` with at most `max_chars` characters, the last of them `…` when it was cut.
pub fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some(_) => {
            let kept: String = text.chars().take(max_chars - 1).collect();
            format!("{kept}…")
        }
    }
}

fn bounded_text(max_chars: usize) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(max_chars))
        .build()
}

/// Words an error says, as the document gives them.
pub fn words_schema() -> Object {
    bounded_text(MAX_WORDS_CHARS)
}

/// A 422's list of problems, as the document gives it.
pub fn problems_schema() -> utoipa::openapi::Array {
    ArrayBuilder::new()
        .items(Ref::from_schema_name("FieldError"))
        .max_items(Some(MAX_PROBLEMS))
        .build()
}

fn kind_schema() -> Object {
    bounded_text(MAX_KIND_CHARS)
}

fn loc_schema() -> utoipa::openapi::Array {
    ArrayBuilder::new()
        .items(Ref::from_schema_name("LocItem"))
        .max_items(Some(MAX_LOC_ITEMS))
        .build()
}

/// FastAPI's `HTTPError`: the body of every non-422 error.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    #[schema(schema_with = words_schema)]
    pub detail: String,
}

/// FastAPI's `HTTPValidationError`: every problem found in the request, each with where it is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidationErrorBody {
    #[schema(schema_with = problems_schema)]
    pub detail: Vec<FieldError>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// Where the problem is: `["body", "credit"]`, `["query", "limit"]`, `["path", "account_id"]`.
    #[schema(schema_with = loc_schema)]
    pub loc: Vec<LocItem>,
    #[schema(schema_with = words_schema)]
    pub msg: String,
    #[serde(rename = "type")]
    #[schema(schema_with = kind_schema)]
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
            msg: cut(&msg.into(), MAX_WORDS_CHARS),
            kind: cut(kind, MAX_KIND_CHARS),
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

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum LocItem {
    Name(String),
    /// A batch item's index, or a byte offset into a body that is not JSON.
    Index(u64),
}

impl PartialSchema for LocItem {
    fn schema() -> RefOr<Schema> {
        let index = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(0))
            .maximum(Some(i64::MAX));
        OneOfBuilder::new()
            .item(bounded_text(MAX_NAME_CHARS))
            .item(index)
            .into()
    }
}

impl ToSchema for LocItem {}

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
        let name = |s: &str| LocItem::Name(cut(s, MAX_NAME_CHARS));
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

#[cfg(test)]
mod bounds {
    use super::*;

    #[test]
    fn words_past_the_bound_are_cut_with_an_ellipsis() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("exactly10!", 10), "exactly10!");
        assert_eq!(cut("eleven chars", 10), "eleven ch…");
        // Characters, not bytes: a cut never splits one.
        assert_eq!(cut("ééééé", 3), "éé…");
    }

    #[test]
    fn a_problem_quoting_a_huge_field_name_stays_within_the_documented_bounds() {
        let name = "x".repeat(10_000);
        let problem = FieldError::new(
            Loc::BodyField(&name),
            format!("unknown field `{name}`"),
            "value_error",
        );
        assert_eq!(problem.msg.chars().count(), MAX_WORDS_CHARS);
        let LocItem::Name(field) = &problem.loc[1] else {
            panic!("a name")
        };
        assert_eq!(field.chars().count(), MAX_NAME_CHARS);
    }
}
