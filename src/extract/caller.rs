//! The `Caller` a data route asks for: a request without a valid bearer token never reaches the
//! handler. It is answered 401 with `WWW-Authenticate: Bearer`, and the reason is counted.

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, http::header, web::Data};
use bank_core::{
    authentication::{AuthError, Caller, caller, token::Refusal},
    domain::UserId,
};
use futures_util::future::LocalBoxFuture;

use crate::{
    error::{DatabaseFailed, Internal, Unauthenticated, failures},
    state::AppState,
};

failures! {
    /// Why a request's caller is not known.
    pub enum CallerRejected {
        Unauthenticated(Unauthenticated),
        Database(DatabaseFailed),
        Internal(Internal),
    }
}

/// `Some(token)` from `Bearer <token>` (the scheme in any case); `None` for anything else.
pub fn bearer(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// What a bearer token said when the request limiter verified it, so it is verified once per
/// request.
#[derive(Clone, Copy)]
pub struct VerifiedToken(pub Result<UserId, Refusal>);

/// The caller a data route acts for. An extractor of the web crate for a type of the core, so it
/// is a wrapper the handlers take apart: `Authenticated(caller): Authenticated`.
pub struct Authenticated(pub Caller);

impl FromRequest for Authenticated {
    type Error = CallerRejected;
    type Future = LocalBoxFuture<'static, Result<Self, CallerRejected>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<Data<AppState>>().cloned();
        let verified = req.extensions().get::<VerifiedToken>().map(|token| token.0);
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|value| bearer(value.as_bytes()).map(str::to_owned));
        Box::pin(async move {
            let state = state.ok_or_else(|| Internal("no application state".into()))?;
            if !state.auth.required {
                return Ok(Self(Caller::ANYONE));
            }
            let refused = match token {
                None => Refusal::Missing,
                Some(None) => Refusal::Malformed,
                Some(Some(token)) => match identify(&state, verified, &token).await {
                    Ok(caller) => return Ok(Self(caller)),
                    Err(AuthError::Token(refusal)) => refusal,
                    Err(AuthError::Database(error)) => {
                        return Err(DatabaseFailed::from(error).into());
                    }
                    Err(other) => return Err(Internal(Box::new(other)).into()),
                },
            };
            state.metrics.count_refused_token(refused);
            Err(Unauthenticated(refused).into())
        })
    }
}

/// The caller a token names, verifying it unless that was done already.
async fn identify(
    state: &AppState,
    verified: Option<Result<UserId, Refusal>>,
    token: &str,
) -> Result<Caller, AuthError> {
    match verified {
        Some(user) => {
            caller::of_user(&state.db, &state.auth, user.map_err(AuthError::Token)?).await
        }
        None => caller::identify(&state.db, &state.auth, token).await,
    }
}

/// For a route open to anyone that does more for an operator (sign-up): no `Authorization`
/// header is an anonymous caller, not a refusal; a token that is sent must be valid.
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequest for MaybeCaller {
    type Error = CallerRejected;
    type Future = LocalBoxFuture<'static, Result<Self, CallerRejected>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !req.headers().contains_key(header::AUTHORIZATION) {
            return Box::pin(std::future::ready(Ok(Self(None))));
        }
        let caller = Authenticated::from_request(req, payload);
        Box::pin(async move { Ok(Self(Some(caller.await?.0))) })
    }
}
