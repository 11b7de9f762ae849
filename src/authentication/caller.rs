//! `Caller`: who sent a request, read from its `Authorization: Bearer` token. A data route asks
//! for one as an argument, and a request without a valid token never reaches the handler: it is
//! answered 401 with `WWW-Authenticate: Bearer`, and the reason counted.

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web::Data};
use entity::user;
use futures_util::future::LocalBoxFuture;
use sea_orm::EntityTrait;

use super::{Auth, token::Refusal};
use crate::{error::ApiError, ledger::Scope};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Customer,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Operator => "operator",
        }
    }

    fn parse(role: &str) -> Self {
        if role == "operator" {
            Self::Operator
        } else {
            Self::Customer
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Caller {
    /// `None` only when `AUTH_REQUIRED=false`, where every caller is an operator.
    pub user_id: Option<i64>,
    pub role: Role,
}

impl Caller {
    /// The accounts this caller may see and move money from.
    pub fn scope(&self) -> Scope {
        match (self.role, self.user_id) {
            (Role::Customer, Some(id)) => Scope::OwnedBy(id),
            _ => Scope::All,
        }
    }

    /// What an `Idempotency-Key` is stored under: the route, and the user who sent it, so one
    /// user's key can never replay another's answer.
    pub fn keyed(&self, route: &str) -> String {
        match self.user_id {
            Some(user_id) => format!("{route} by user {user_id}"),
            None => route.to_owned(),
        }
    }

    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = req.app_data::<Data<Auth>>().cloned();
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|value| bearer(value.as_bytes()));
        Box::pin(async move {
            let auth = auth.ok_or(ApiError::Internal("no authentication state".into()))?;
            if !auth.required {
                return Ok(Caller {
                    user_id: None,
                    role: Role::Operator,
                });
            }
            let refused = match token {
                None => Refusal::Missing,
                Some(None) => Refusal::Malformed,
                Some(Some(token)) => match identify(&auth, &token).await? {
                    Ok(caller) => return Ok(caller),
                    Err(refusal) => refusal,
                },
            };
            auth.metrics
                .tokens_refused
                .with_label_values(&[refused.label()])
                .inc();
            Err(ApiError::Unauthorized(match refused {
                Refusal::Missing => "Not authenticated",
                _ => "Could not validate credentials",
            }))
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

/// `Some(token)` from `Bearer <token>` (the scheme in any case); `None` for anything else.
fn bearer(value: &[u8]) -> Option<String> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// The user a token names, as they are now: a deleted user's token is refused, and a changed
/// role applies at once.
async fn identify(auth: &Auth, token: &str) -> Result<Result<Caller, Refusal>, ApiError> {
    let user_id = match auth.tokens.verify(token) {
        Ok(id) => id,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let Some(user) = user::Entity::find_by_id(user_id).one(&auth.db).await? else {
        return Ok(Err(Refusal::UnknownUser));
    };
    Ok(Ok(Caller {
        user_id: Some(user.id),
        role: Role::parse(&user.role),
    }))
}
