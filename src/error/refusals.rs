//! What the rules refused: a caller without a usable token, a failed or throttled login, a caller
//! who may not do this, an account or row that is not there (or not the caller's: the same
//! answer), money the rules will not move, a route that does not exist.

use actix_web::{
    HttpResponse,
    http::{StatusCode, header},
};
use bank_core::{authentication::token::Refusal, domain::MAX_BALANCE};
use utoipa::openapi::{HeaderBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};

use super::{Answer, Responses, answers_http, detail, documented, fixed_answer};

/// The longest wait a `Retry-After` asks for: a login throttle's whole window, at most a day
/// (`LOGIN_THROTTLE_SECS`).
const LONGEST_RETRY_AFTER_SECS: i64 = 86_400;

/// A response header whose value is one of `values`, for the document.
fn one_of(description: &str, values: &[&str]) -> utoipa::openapi::Header {
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()));
    HeaderBuilder::new()
        .schema(Some(schema))
        .description(Some(description))
        .build()
}

/// `Retry-After` as this server writes it: whole seconds.
pub(crate) fn retry_after() -> utoipa::openapi::Header {
    let seconds = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(1))
        .maximum(Some(LONGEST_RETRY_AFTER_SECS));
    HeaderBuilder::new()
        .schema(Some(seconds))
        .description(Some("Seconds to wait"))
        .build()
}

fn with_header(status: StatusCode, name: &str, value: impl ToString, words: &str) -> HttpResponse {
    let mut response = detail(status, words, None);
    if let Ok(value) = header::HeaderValue::from_str(&value.to_string()) {
        response.headers_mut().insert(
            header::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            value,
        );
    }
    response
}

/// 401 with `WWW-Authenticate: Bearer`: no token, or one that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("token refused: {0:?}")]
pub struct Unauthenticated(pub Refusal);

impl Unauthenticated {
    fn words(&self) -> &'static str {
        match self.0 {
            Refusal::Missing => "Not authenticated",
            _ => "Could not validate credentials",
        }
    }
}

impl Answer for Unauthenticated {
    fn status(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }

    fn respond(&self) -> HttpResponse {
        let mut response = with_header(self.status(), "www-authenticate", "Bearer", self.words());
        response
            .extensions_mut()
            .insert(super::Rejected("unauthorized"));
        response
    }

    fn responses() -> Responses {
        let (missing, refused) = (Self(Refusal::Missing), Self(Refusal::Expired));
        let description = format!(
            "No bearer token (`{}`), or one that is malformed, expired, wrongly signed or names no \
             user (`{}`)",
            missing.words(),
            refused.words()
        );
        let mut responses = super::merge([
            documented(
                StatusCode::UNAUTHORIZED,
                &description,
                "no_token",
                missing.words(),
            ),
            documented(
                StatusCode::UNAUTHORIZED,
                &description,
                "bad_token",
                refused.words(),
            ),
        ]);
        let challenge = one_of("The scheme a token must use", &["Bearer"]);
        with_documented_header(&mut responses, "WWW-Authenticate", challenge);
        responses
    }
}
answers_http!(Unauthenticated);

/// Adds a header to the one documented response of `responses`.
fn with_documented_header(responses: &mut Responses, name: &str, header: utoipa::openapi::Header) {
    for response in responses.values_mut() {
        if let utoipa::openapi::RefOr::T(response) = response {
            response
                .headers
                .insert(name.to_owned(), header.clone().into());
        }
    }
}

/// 401 for a login with an unknown username or a wrong password: the two look the same.
#[derive(Debug, thiserror::Error)]
#[error("unknown username or wrong password")]
pub struct BadCredentials;

impl BadCredentials {
    const WORDS: &str = "Incorrect username or password";
}

impl Answer for BadCredentials {
    fn status(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }

    fn respond(&self) -> HttpResponse {
        let mut response = with_header(self.status(), "www-authenticate", "Bearer", Self::WORDS);
        response
            .extensions_mut()
            .insert(super::Rejected("unauthorized"));
        response
    }

    fn responses() -> Responses {
        let description =
            "Wrong username or password (the same answer, in the same time, for both)";
        documented(
            StatusCode::UNAUTHORIZED,
            description,
            "bad_credentials",
            Self::WORDS,
        )
    }
}

/// 429 with `Retry-After`: too many failed logins; the seconds until the next is heard.
#[derive(Debug, thiserror::Error)]
#[error("login throttled for {0} s")]
pub struct Throttled(pub u64);

impl Throttled {
    const WORDS: &str = "Too many failed login attempts; try again later";
}

impl Answer for Throttled {
    fn status(&self) -> StatusCode {
        StatusCode::TOO_MANY_REQUESTS
    }

    fn respond(&self) -> HttpResponse {
        let mut response = with_header(self.status(), "retry-after", self.0, Self::WORDS);
        response
            .extensions_mut()
            .insert(super::Rejected("throttled"));
        response
    }

    fn responses() -> Responses {
        let mut responses = documented(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed logins for this username or address; retry after `Retry-After` \
             seconds",
            "throttled",
            Self::WORDS,
        );
        with_documented_header(&mut responses, "Retry-After", retry_after());
        responses
    }
}

/// 429 with `Retry-After`: the client sent more requests than its limit lets through.
#[derive(Debug, thiserror::Error)]
#[error("over the request limit of {per_second} a second; retry after {retry_after} s")]
pub struct OverRequestLimit {
    pub per_second: u32,
    pub retry_after: u64,
}

impl Answer for OverRequestLimit {
    fn status(&self) -> StatusCode {
        StatusCode::TOO_MANY_REQUESTS
    }

    fn respond(&self) -> HttpResponse {
        let words = format!(
            "Too many requests: at most {} a second per client. Retry after {} s",
            self.per_second, self.retry_after
        );
        let mut response = with_header(self.status(), "retry-after", self.retry_after, &words);
        response
            .extensions_mut()
            .insert(super::Rejected("throttled"));
        response
    }

    fn responses() -> Responses {
        let mut responses = documented(
            StatusCode::TOO_MANY_REQUESTS,
            "This client (the user of the bearer token, else the address) sent more requests \
             than its limit, which `RateLimit-Policy` states on every answer; retry after \
             `Retry-After` seconds",
            "over_request_limit",
            "Too many requests: at most 100 a second per client. Retry after 1 s",
        );
        with_documented_header(&mut responses, "Retry-After", retry_after());
        responses
    }
}

fixed_answer!(
    /// 401 for a refresh token that cannot be exchanged: unknown, expired, revoked or used before
    /// (then this very request revoked its session). The client is not told which.
    BadRefreshToken {
        status: UNAUTHORIZED,
        words: "Invalid refresh token",
        rejected: Some("unauthorized"),
        log: "refresh token refused",
        example: "bad_refresh_token",
        description: "The refresh token was never issued, has expired, was revoked (logged out), \
            or was used before: then its whole session is revoked, since two parties held it. \
            Log in again",
    }
);
fixed_answer!(
    /// 403: only operators may create users while sign-up is off.
    SignUpDisabled {
        status: FORBIDDEN,
        words: "Sign-up is disabled",
        rejected: Some("forbidden"),
        log: "sign-up is switched off",
        example: "signup_disabled",
        description: "Sign-up is switched off (`SIGNUP_ENABLED=false`) and the caller is not an operator",
    }
);
fixed_answer!(
    /// 403: a route for operators, called by someone else.
    OperatorsOnly {
        status: FORBIDDEN,
        words: "Only operators may call the diagnostics routes",
        rejected: Some("forbidden"),
        log: "not an operator",
        example: "operators_only",
        description: "The caller is not an operator",
    }
);
fixed_answer!(
    /// 409: the process is sampled by one profile at a time.
    ProfileRunning {
        status: CONFLICT,
        words: "A profile is already being taken; ask again when it ends",
        rejected: Some("conflict"),
        log: "a profile is already being taken",
        example: "profile_running",
        description: "Another profile of this process is being taken",
    }
);
fixed_answer!(
    /// 409: the username is taken.
    UsernameTaken {
        status: CONFLICT,
        words: "Username already taken",
        rejected: Some("conflict"),
        log: "the username is taken",
        example: "username_taken",
        description: "The username is taken",
    }
);
fixed_answer!(
    /// 404 for an account that does not exist, or is not the caller's: the two look the same.
    AccountNotFound {
        status: NOT_FOUND,
        words: "Account not found",
        rejected: Some("not_found"),
        log: "no such account in the caller's scope",
        example: "account_not_found",
        description: "No account has this id, or not one the caller may see",
    }
);
fixed_answer!(
    /// 404 for a ledger row that does not exist, or is not the caller's.
    TransactionNotFound {
        status: NOT_FOUND,
        words: "Transaction not found",
        rejected: Some("not_found"),
        log: "no such ledger row in the caller's scope",
        example: "transaction_not_found",
        description: "No ledger row has this id, or not one the caller may see",
    }
);
fixed_answer!(
    /// 404 for a path no route has.
    RouteNotFound {
        status: NOT_FOUND,
        words: "Not Found",
        rejected: Some("not_found"),
        log: "no route has this path",
        example: "no_route",
        description: "No route has this path",
    }
);

fixed_answer!(
    /// 404 for a hold that does not exist, or is not on an account of the caller's.
    HoldNotFound {
        status: NOT_FOUND,
        words: "Hold not found",
        rejected: Some("not_found"),
        log: "no such hold in the caller's scope",
        example: "hold_not_found",
        description: "No hold has this id, or not one on an account the caller may act on",
    }
);

fixed_answer!(
    /// 404 for a webhook endpoint that does not exist, or is not the caller's.
    EndpointNotFound {
        status: NOT_FOUND,
        words: "Webhook endpoint not found",
        rejected: Some("not_found"),
        log: "no such webhook endpoint in the caller's scope",
        example: "endpoint_not_found",
        description: "No webhook endpoint has this id, or not one of the caller's",
    }
);

/// 409: a hold cannot be resolved as asked, because it was resolved before (a hold resolves
/// once) or is asked for more than it holds; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum HoldConflict {
    #[error("the hold was captured before")]
    Captured,
    #[error("the hold was voided before")]
    Voided,
    #[error("the hold has expired")]
    Expired,
    #[error("a capture of more than the hold")]
    MoreThanHeld,
}

impl HoldConflict {
    fn words(&self) -> &'static str {
        match self {
            Self::Captured => "Hold already captured",
            Self::Voided => "Hold already voided",
            Self::Expired => "Hold expired",
            Self::MoreThanHeld => "Capture exceeds the hold",
        }
    }

    const ALL: [(Self, &str); 4] = [
        (Self::Captured, "hold_captured"),
        (Self::Voided, "hold_voided"),
        (Self::Expired, "hold_expired"),
        (Self::MoreThanHeld, "more_than_held"),
    ];
}

impl Answer for HoldConflict {
    fn status(&self) -> StatusCode {
        StatusCode::CONFLICT
    }

    fn respond(&self) -> HttpResponse {
        detail(self.status(), self.words(), Some("conflict"))
    }

    fn responses() -> Responses {
        let description = "The hold was resolved before (captured, voided, or expired: a hold \
                           resolves once), or the capture asks for more than it holds; nothing \
                           was written";
        super::merge(Self::ALL.map(|(conflict, name)| {
            documented(StatusCode::CONFLICT, description, name, conflict.words())
        }))
    }
}

/// 409: the money rules refused a write, and nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum MoneyRefused {
    #[error("the balance would go below its floor")]
    InsufficientFunds,
    #[error("the balance would go above the limit")]
    BalanceLimitExceeded,
}

impl MoneyRefused {
    pub(crate) fn words(&self) -> &'static str {
        match self {
            Self::InsufficientFunds => "Insufficient funds",
            Self::BalanceLimitExceeded => "Balance limit exceeded",
        }
    }
}

impl Answer for MoneyRefused {
    fn status(&self) -> StatusCode {
        StatusCode::CONFLICT
    }

    fn respond(&self) -> HttpResponse {
        let reason = match self {
            Self::InsufficientFunds => "insufficient_funds",
            Self::BalanceLimitExceeded => "balance_limit",
        };
        detail(self.status(), self.words(), Some(reason))
    }

    fn responses() -> Responses {
        let description = format!(
            "The money rules refused it and nothing was written: `{}` when what an account may \
             spend (its balance less its pending holds) would go below zero, `{}` when a balance \
             would go above {MAX_BALANCE} minor units",
            Self::InsufficientFunds.words(),
            Self::BalanceLimitExceeded.words(),
        );
        let example = |refused: Self, name| {
            documented(
                StatusCode::CONFLICT,
                description.as_str(),
                name,
                refused.words(),
            )
        };
        super::merge([
            example(Self::InsufficientFunds, "insufficient_funds"),
            example(Self::BalanceLimitExceeded, "balance_limit"),
        ])
    }
}

/// 405 with `Allow`: the path exists, but not for this method.
#[derive(Debug, thiserror::Error)]
#[error("method not allowed; allowed: {0}")]
pub struct MethodNotAllowed(pub String);

impl Answer for MethodNotAllowed {
    fn status(&self) -> StatusCode {
        StatusCode::METHOD_NOT_ALLOWED
    }

    fn respond(&self) -> HttpResponse {
        let mut response = with_header(self.status(), "allow", &self.0, "Method Not Allowed");
        response
            .extensions_mut()
            .insert(super::Rejected("method_not_allowed"));
        response
    }

    fn responses() -> Responses {
        let description = "The path exists, but not for this method: `Allow` lists its methods";
        let mut responses = documented(
            StatusCode::METHOD_NOT_ALLOWED,
            description,
            "method_not_allowed",
            "Method Not Allowed",
        );
        let allow = one_of(
            "The methods the path answers",
            &["GET", "POST", "GET, POST"],
        );
        with_documented_header(&mut responses, "Allow", allow);
        responses
    }
}
