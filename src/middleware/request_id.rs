//! Every request has an id: the caller's `X-Request-Id` when it is a short printable token, so a
//! request can be followed across services, else a new one. It is on the request's span and its
//! log lines, and echoed in the response.

use actix_web::{
    Error, HttpMessage,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
};
use bank_core::domain::random_uuid;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const MAX_LEN: usize = 128;

/// The request's id, in its extensions, for the middleware and handlers inside this one.
#[derive(Clone)]
pub struct RequestId(pub String);

pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = decide(&req);
    tracing::Span::current().record("request_id", id.as_str());
    let header = HeaderValue::from_str(&id).ok();
    req.extensions_mut().insert(RequestId(id));
    let mut res = next.call(req).await?;
    if let Some(value) = header {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

fn decide(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=MAX_LEN).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(new_id, str::to_owned)
}

fn new_id() -> String {
    random_uuid().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_id_is_a_random_uuid_each_time() {
        let (first, second) = (new_id(), new_id());
        assert_ne!(first, second);
        let uuid = uuid::Uuid::parse_str(&first).expect("a UUID");
        assert_eq!(uuid.get_version(), Some(uuid::Version::Random));
        assert_eq!(first, uuid.simple().to_string());
    }
}
