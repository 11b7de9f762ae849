//! The `Caller` a data route asks for: a request without a valid bearer token never reaches the
//! handler. It is answered 401 with `WWW-Authenticate: Bearer`, and the reason is counted.

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web::Data};
use futures_util::future::LocalBoxFuture;

use crate::{
    authentication::{AuthError, Caller, caller, token::Refusal},
    error::ApiError,
    state::AppState,
};

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<Data<AppState>>().cloned();
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|value| caller::bearer(value.as_bytes()).map(str::to_owned));
        Box::pin(async move {
            let state = state.ok_or(ApiError::Internal("no application state".into()))?;
            if !state.auth.required {
                return Ok(Caller::ANYONE);
            }
            let refused = match token {
                None => Refusal::Missing,
                Some(None) => Refusal::Malformed,
                Some(Some(token)) => {
                    match caller::identify(&state.db, &state.auth, &token).await? {
                        Ok(caller) => return Ok(caller),
                        Err(refusal) => refusal,
                    }
                }
            };
            state
                .metrics
                .tokens_refused
                .with_label_values(&[refused.label()])
                .inc();
            Err(match refused {
                Refusal::Missing => AuthError::NotAuthenticated,
                _ => AuthError::InvalidToken,
            }
            .into())
        })
    }
}

/// For a route open to anyone that does more for an operator (sign-up): no `Authorization`
/// header is an anonymous caller, not a refusal; a token that is sent must be valid.
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequest for MaybeCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !req.headers().contains_key(header::AUTHORIZATION) {
            return Box::pin(std::future::ready(Ok(Self(None))));
        }
        let caller = Caller::from_request(req, payload);
        Box::pin(async move { Ok(Self(Some(caller.await?))) })
    }
}
