//! Errors made outside our handlers arrive with an empty body (a missing Swagger UI asset) or a
//! plain-text one (a CORS preflight from an origin that is not allowed); clients get the same
//! `{"detail": ...}` shape from them as from every other error. A 4xx says what the error said; a
//! 5xx only its status's name. Given to actix-web's `ErrorHandlers` as its default handler.

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::ServiceResponse,
    http::header::{self, HeaderValue},
    middleware::ErrorHandlerResponse,
};

pub fn json_detail<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let reason = status.canonical_reason().unwrap_or("Error").to_owned();
    let detail = match res.response().error() {
        Some(error) if status.is_client_error() => error.to_string(),
        _ => reason,
    };
    let body = serde_json::json!({ "detail": detail }).to_string();
    let res = res.map_body(|head, _| {
        head.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        BoxBody::new(body)
    });
    Ok(ErrorHandlerResponse::Response(res.map_into_right_body()))
}
