//! Headers that tell a browser what an answer may do. Every answer: no type sniffing, no framing
//! by any page (clickjacking: Swagger UI holds the login form), no referrer sent on. The docs
//! pages get a Content-Security-Policy that lets Swagger UI and ReDoc run from this server's
//! own files and nothing else; every other answer is data, and may load nothing.

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{self, HeaderValue},
    middleware::Next,
};

/// Swagger UI and ReDoc: scripts and styles from this server (both set styles inline), images
/// and fonts from it or `data:`, calls to this API only, ReDoc's search worker from a `blob:`.
pub const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";
/// Everything else: JSON and text that load nothing.
pub const DATA_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let docs = ["/docs", "/redoc"]
        .iter()
        .any(|page| req.path().starts_with(page));
    let mut res = next.call(req).await?;
    let policy = if docs { DOCS_POLICY } else { DATA_POLICY };
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    Ok(res)
}
