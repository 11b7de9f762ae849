//! Request extractors whose failures are FastAPI-shaped 4xx errors naming the bad field,
//! instead of actix-web's plain-text defaults.

use actix_web::{
    FromRequest, HttpMessage, HttpRequest, HttpResponse,
    dev::Payload,
    error::PayloadError,
    web::{self, Bytes},
};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use utoipa::IntoParams;

use crate::error::{ApiError, FieldError, Loc};

/// How long a client may take to send a request body: a slow sender is cut off with 408 instead of
/// holding the request open.
#[derive(Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

impl BodyTimeout {
    const DEFAULT: std::time::Duration = std::time::Duration::from_secs(10);
}

/// A JSON body: `application/json` required, size limited by `web::PayloadConfig`, and every
/// type mismatch reported with the field it is in.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json =
            req.mime_type().ok().flatten().is_some_and(|mime| {
                mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON)
            });
        let body = Bytes::from_request(req, payload);
        let timeout = req
            .app_data::<BodyTimeout>()
            .map_or(BodyTimeout::DEFAULT, |timeout| timeout.0);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::validation(
                    Loc::Header("content-type"),
                    "Content type should be application/json",
                    "content_type",
                ));
            }
            let body = tokio::time::timeout(timeout, body)
                .await
                .map_err(|_| ApiError::RequestTimeout)?;
            let bytes = body.map_err(|error| match error.as_error::<PayloadError>() {
                Some(PayloadError::Overflow) => ApiError::PayloadTooLarge,
                _ => ApiError::BadRequest("Could not read the request body".into()),
            })?;
            parse_json(&bytes).map(ApiJson)
        })
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|byte| !byte.is_ascii_whitespace()) {
        None => return Err(ApiError::validation(Loc::Body, "Field required", "missing")),
        // serde would read an array as the struct's fields in order; clients must name them.
        Some(b'[') => return Err(ApiError::Validation(vec![not_an_object(Loc::Body)])),
        Some(_) => {}
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *deserializer)
        .map_err(|error| ApiError::Validation(vec![describe(&error, bytes)]))?;
    // Without this, `{...}{...}` would be read as its first document and the rest ignored.
    deserializer.end().map_err(|error| {
        let offset = byte_offset(bytes, error.line(), error.column());
        ApiError::Validation(vec![FieldError::new(
            Loc::BodyOffset(offset),
            "JSON decode error",
            "json_invalid",
        )])
    })?;
    Ok(value)
}

fn describe(error: &serde_path_to_error::Error<serde_json::Error>, bytes: &[u8]) -> FieldError {
    let inner = error.inner();
    if inner.classify() != Category::Data {
        let offset = byte_offset(bytes, inner.line(), inner.column());
        return FieldError::new(Loc::BodyOffset(offset), "JSON decode error", "json_invalid");
    }
    // serde_json appends " at line L column C"; the location is given by `loc` instead.
    let message = inner.to_string();
    let message = message.split(" at line ").next().unwrap_or_default();
    if let Some(field) = message.strip_prefix("missing field `") {
        return FieldError::new(
            Loc::BodyField(field.trim_end_matches('`')),
            "Field required",
            "missing",
        );
    }
    let path = error.path().to_string();
    let loc = if path == "." {
        Loc::Body
    } else {
        Loc::BodyField(&path)
    };
    let (msg, kind) = if message.ends_with("expected i64") {
        ("Input should be a valid integer", "int_type")
    } else if message.ends_with("expected a string") {
        ("Input should be a valid string", "string_type")
    } else if message.contains("expected struct") {
        (
            "Input should be a valid dictionary or object",
            "model_attributes_type",
        )
    } else {
        (message, "value_error")
    };
    FieldError::new(loc, msg, kind)
}

fn not_an_object(loc: Loc) -> FieldError {
    FieldError::new(
        loc,
        "Input should be a valid dictionary or object",
        "model_attributes_type",
    )
}

fn byte_offset(bytes: &[u8], line: usize, column: usize) -> u64 {
    let line_start: usize = bytes
        .split(|byte| *byte == b'\n')
        .take(line.saturating_sub(1))
        .map(|line| line.len() + 1)
        .sum();
    (line_start + column.saturating_sub(1)) as u64
}

/// `?after_id=&skip=&limit=`: a page of a list ordered by id.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// Start after the row with this id: pass the last id of the previous page. Any page costs
    /// one index seek, where `skip` walks every row it skips.
    #[param(minimum = 0, maximum = 9223372036854775807_i64, required = false)]
    pub after_id: Option<u64>,
    /// How many rows to skip from the start of the list (after `after_id`, if given).
    #[param(
        minimum = 0,
        maximum = 9223372036854775807_i64,
        default = 0,
        required = false
    )]
    pub skip: u64,
    /// How many rows to return.
    #[param(minimum = 1, maximum = 1000, default = 100, required = false)]
    pub limit: u64,
}

impl Pagination {
    pub const DEFAULT_LIMIT: u64 = 100;
    pub const MAX_LIMIT: u64 = 1000;

    fn parse(query: &str) -> Result<Self, ApiError> {
        let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
            .map_err(|_| ApiError::BadRequest("Malformed query string".into()))?;
        let value = |name: &str| {
            pairs
                .iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, v)| v)
        };
        let mut problems = Vec::new();
        let mut number =
            |name: &'static str, range: std::ops::RangeInclusive<u64>, default: u64| {
                let Some(raw) = value(name) else {
                    return default;
                };
                match raw.parse::<u64>() {
                    Ok(number) if range.contains(&number) => number,
                    Ok(_) => {
                        let msg = format!(
                            "Input should be between {} and {}",
                            range.start(),
                            range.end()
                        );
                        problems.push(FieldError::new(Loc::Query(name), msg, "range"));
                        default
                    }
                    Err(_) => {
                        let msg = "Input should be a valid integer";
                        problems.push(FieldError::new(Loc::Query(name), msg, "int_parsing"));
                        default
                    }
                }
            };
        let after_id = value("after_id").map(|_| number("after_id", 0..=i64::MAX as u64, 0));
        let skip = number("skip", 0..=i64::MAX as u64, 0);
        let limit = number("limit", 1..=Self::MAX_LIMIT, Self::DEFAULT_LIMIT);
        if problems.is_empty() {
            Ok(Self {
                after_id,
                skip,
                limit,
            })
        } else {
            Err(ApiError::Validation(problems))
        }
    }
}

impl FromRequest for Pagination {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::parse(req.query_string()))
    }
}

/// Path parameters that do not parse (`/accounts/abc`, ids beyond i64) are a 422 naming the parameter.
pub fn path_error(_: actix_web::error::PathError, req: &HttpRequest) -> actix_web::Error {
    let name = req
        .match_info()
        .iter()
        .next()
        .map_or("id", |(name, _)| name);
    ApiError::validation(
        Loc::Path(name),
        "Input should be a valid integer",
        "int_parsing",
    )
    .into()
}

impl From<Pagination> for crate::ledger::Page {
    fn from(page: Pagination) -> Self {
        Self {
            // In range by parsing: at most i64::MAX.
            after_id: page.after_id.map(|id| id as i64),
            skip: page.skip,
            limit: page.limit,
        }
    }
}

/// The methods each documented route template answers, for the `Allow` header of a 405.
#[derive(Clone, Default)]
pub struct AllowedMethods(std::collections::HashMap<String, String>);

impl AllowedMethods {
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        let methods = api.paths.paths.iter().map(|(path, item)| {
            let operations = [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
            ];
            let allowed: Vec<&str> = operations
                .iter()
                .filter(|(_, operation)| operation.is_some())
                .map(|(method, _)| *method)
                .collect();
            (path.clone(), allowed.join(", "))
        });
        Self(methods.collect())
    }
}

/// No route has this path (404), or one does but not for this method (405, with `Allow`).
pub async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let allowed = req.match_pattern().and_then(|pattern| {
        req.app_data::<AllowedMethods>()
            .and_then(|methods| methods.0.get(&pattern).cloned())
    });
    Err(match allowed {
        Some(allow) => ApiError::MethodNotAllowed(allow),
        None => ApiError::NotFound("Not Found"),
    })
}
