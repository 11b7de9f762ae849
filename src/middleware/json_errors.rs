//! Errors made outside our handlers (a missing Swagger UI asset, say) arrive with an empty body;
//! clients get the same `{"detail": ...}` shape from them as from every other error. Given to
//! actix-web's `ErrorHandlers` as its default handler.

use actix_web::{
    body::{BodySize, BoxBody, MessageBody},
    dev::ServiceResponse,
    http::header::{self, HeaderValue},
    middleware::ErrorHandlerResponse,
};

pub fn json_detail<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_empty = matches!(
        res.response().body().size(),
        BodySize::None | BodySize::Sized(0)
    );
    if !is_empty {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let reason = res.status().canonical_reason().unwrap_or("Error");
    let detail = serde_json::json!({ "detail": reason }).to_string();
    let res = res.map_body(|head, _| {
        head.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        BoxBody::new(detail)
    });
    Ok(ErrorHandlerResponse::Response(res.map_into_right_body()))
}
