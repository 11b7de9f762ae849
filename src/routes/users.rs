//! `/users` and `/token`: signing up; the OAuth2 password flow that turns a username and
//! password into a bearer token (what FastAPI's `OAuth2PasswordRequestForm` reads) and a refresh
//! token; the refresh grant that exchanges one for the next; and revocation (RFC 7009), which is
//! logging out.

use actix_web::{HttpResponse, http::header, post, web};
use bank_core::{
    authentication::{
        AuthError, Role,
        sessions::Refused,
        users::{self, Issued},
    },
    domain::{Password, Username},
};
use serde::{Deserialize, Serialize};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{OneOfBuilder, RefOr, Schema},
};

use crate::{
    error::{
        BadCredentials, BadRefreshToken, DatabaseFailed, FieldError, Internal, Invalid, Loc,
        Problems, SignUpDisabled, Throttled, UsernameTaken, failures,
    },
    extract::{
        ApiJson, BodyRejected, CallerRejected, ClientAddress, FormBody, MaybeCaller, schemas,
    },
    metrics::LoginOutcome,
    state::AppState,
};

failures! {
    /// What signing up can answer besides 201.
    pub enum SignUpFailed {
        Caller(CallerRejected),
        Body(BodyRejected),
        Invalid(Invalid),
        Disabled(SignUpDisabled),
        Taken(UsernameTaken),
        Database(DatabaseFailed),
        Internal(Internal),
    }
}

impl From<AuthError> for SignUpFailed {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::UsernameTaken => UsernameTaken.into(),
            AuthError::SignUpDisabled => SignUpDisabled.into(),
            AuthError::Database(error) => DatabaseFailed::from(error).into(),
            other => Internal(Box::new(other)).into(),
        }
    }
}

failures! {
    /// What a login can answer besides 200.
    pub enum LogInFailed {
        Body(BodyRejected),
        Invalid(Invalid),
        BadCredentials(BadCredentials),
        BadRefreshToken(BadRefreshToken),
        Throttled(Throttled),
        Database(DatabaseFailed),
        Internal(Internal),
    }
}

impl From<AuthError> for LogInFailed {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::BadCredentials => BadCredentials.into(),
            AuthError::Refresh(_) => BadRefreshToken.into(),
            AuthError::Throttled(seconds) => Throttled(seconds).into(),
            AuthError::Database(error) => DatabaseFailed::from(error).into(),
            other => Internal(Box::new(other)).into(),
        }
    }
}

/// The body of `POST /users`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"username": "ada", "password": "correct horse battery"}))]
pub struct NewUser {
    #[schema(schema_with = schemas::username)]
    pub username: String,
    #[schema(schema_with = schemas::password)]
    pub password: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 1, "username": "ada", "role": "customer", "created_at": "2026-11-25T09:30:00.123456Z"}))]
pub struct User {
    #[schema(schema_with = schemas::row_id)]
    pub id: i64,
    #[schema(schema_with = schemas::username)]
    pub username: String,
    /// `customer` or `operator`.
    #[schema(pattern = "^(customer|operator)$", max_length = 8)]
    pub role: String,
    #[schema(schema_with = schemas::timestamp)]
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What `POST /token` answers (RFC 6749 section 5.1).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9...", "token_type": "bearer", "expires_in": 900, "refresh_token": "3f1c9a7e0b2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e"}))]
pub struct TokenResponse {
    #[schema(max_length = 1024)]
    pub access_token: String,
    /// Always `bearer`: send `Authorization: Bearer <access_token>`.
    #[schema(pattern = "^bearer$", max_length = 6)]
    pub token_type: String,
    /// Seconds until the token expires.
    #[schema(minimum = 60, maximum = 86400)]
    pub expires_in: u64,
    /// Exchange it at `POST /token` (`grant_type=refresh_token`) for the next pair, once; end the
    /// session with `POST /token/revoke`. A refresh token used twice ends its session.
    #[schema(pattern = "^[0-9a-f]{64}$", max_length = 64)]
    pub refresh_token: String,
}

impl TokenResponse {
    fn new(issued: Issued, state: &AppState) -> Self {
        Self {
            access_token: issued.access_token,
            token_type: "bearer".into(),
            expires_in: state.auth.tokens.ttl.as_secs(),
            refresh_token: issued.refresh_token,
        }
    }
}

/// The form of `POST /token`: the OAuth2 password grant, or the refresh grant. Only the schemas
/// are used: the form is read field by field, to name what is missing.
pub struct TokenRequest;

impl PartialSchema for TokenRequest {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(PasswordGrant::schema())
            .item(RefreshGrant::schema())
            .into()
    }
}

impl ToSchema for TokenRequest {}

/// Log in: a username and its password.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PasswordGrant {
    #[schema(max_length = 64)]
    username: String,
    #[schema(format = Password, max_length = 128)]
    password: String,
    /// `password`, when sent. A form has no null: the field is sent or left out.
    #[schema(required = false, pattern = "^password$", max_length = 8)]
    grant_type: String,
}

/// Exchange a refresh token for the next pair.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RefreshGrant {
    #[schema(pattern = "^refresh_token$", max_length = 13)]
    grant_type: String,
    /// The refresh token of the last answer of `POST /token`.
    #[schema(max_length = 64)]
    refresh_token: String,
}

/// A refresh token's length: 64 hex digits.
const REFRESH_TOKEN_MAX_CHARS: usize = 64;
/// RFC 7009's token type hints.
const TOKEN_TYPE_HINTS: [&str; 2] = ["refresh_token", "access_token"];

/// The answer of `POST /token/revoke`: the same whether or not the token was known.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "revoked"}))]
pub struct Revoked {
    #[schema(pattern = "^revoked$", max_length = 7)]
    pub status: String,
}

/// The form of `POST /token/revoke` (RFC 7009).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RevokeRequest {
    /// A refresh token; its whole session ends.
    #[schema(min_length = 1, max_length = 64)]
    token: String,
    /// What `token` is, when sent; either way a refresh token is looked for (access tokens are
    /// not revoked: they expire by themselves).
    #[schema(
        required = false,
        pattern = "^(refresh_token|access_token)$",
        max_length = 13
    )]
    token_type_hint: String,
}

/// Sign up
///
/// Creates a customer. Anyone may sign up unless `SIGNUP_ENABLED=false`, when only an operator
/// may create users. The password is stored as an argon2id hash, never echoed or logged.
#[utoipa::path(
    tag = "users",
    security((), ("OAuth2PasswordBearer" = [])),
    request_body = NewUser,
    responses(
        (status = 201, description = "The user was created", body = User),
        SignUpFailed,
    )
)]
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: MaybeCaller,
    body: ApiJson<NewUser>,
) -> Result<HttpResponse, SignUpFailed> {
    let operator = caller.0.is_some_and(|caller| caller.is_operator());
    if !state.auth.signup_enabled && !operator {
        return Err(SignUpDisabled.into());
    }
    let mut problems = Problems::default();
    let username = problems.check("username", Username::parse(&body.0.username));
    let password = problems.check("password", Password::parse(&body.0.password));
    let (username, password) = problems.finish(|| Some((username?, password?)))?;
    let user = users::sign_up(&state.db, &username, &password, Role::Customer).await?;
    Ok(HttpResponse::Created().json(User {
        id: user.id,
        username: user.username,
        role: user.role,
        created_at: user.created_at,
    }))
}

/// Log in for a token, or refresh it
///
/// The OAuth2 password flow: a form with `username` and `password` gets a bearer token that
/// expires after `expires_in` seconds, and a refresh token. Failed logins are limited per
/// username and client address together, per username and per address, on every replica alike
/// (429 with `Retry-After`).
///
/// The refresh grant, `grant_type=refresh_token` with `refresh_token`, exchanges a refresh token
/// for a new pair. Each refresh token is good once: sent again, it ends its session, so a stolen
/// copy and the original cannot both go on.
#[utoipa::path(
    tag = "users",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A token", body = TokenResponse),
        LogInFailed,
    )
)]
#[post("/token")]
pub async fn create_token(
    state: web::Data<AppState>,
    ClientAddress(address): ClientAddress,
    form: FormBody,
) -> Result<HttpResponse, LogInFailed> {
    let issued = match form.field("grant_type").ok().as_deref() {
        None | Some("password") => log_in(&state, address, &form).await?,
        Some("refresh_token") => {
            let token = form
                .field("refresh_token")
                .map_err(|missing| Invalid(vec![missing]))?;
            let issued = users::refresh(&state.db, &state.auth, &token).await;
            state.metrics.count_refresh(&issued);
            if let Err(AuthError::Refresh(Refused::Reused)) = issued {
                // A stolen token, or a client that lost an answer and sent its token again.
                log::warn!("a refresh token was used twice: its session is revoked");
            }
            issued?
        }
        Some(_) => {
            let words = "Input should be 'password' or 'refresh_token'";
            let loc = Loc::BodyField("grant_type");
            return Err(Invalid::one(loc, words, "literal_error").into());
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(TokenResponse::new(issued, &state)))
}

async fn log_in(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    form: &FormBody,
) -> Result<Issued, LogInFailed> {
    let (username, password) = match (form.field("username"), form.field("password")) {
        (Ok(username), Ok(password)) => (username, password),
        (username, password) => {
            let missing = [username.err(), password.err()];
            return Err(Invalid(missing.into_iter().flatten().collect()).into());
        }
    };
    let issued = users::log_in(&state.db, &state.auth, &username, password, address).await;
    state.metrics.count_login(LoginOutcome::of(&issued));
    Ok(issued?)
}

failures! {
    /// What revoking a token can answer besides 200.
    pub enum RevokeFailed {
        Body(BodyRejected),
        Invalid(Invalid),
        Database(DatabaseFailed),
    }
}

/// Log out: revoke a refresh token
///
/// RFC 7009 token revocation: the refresh token's session ends, so neither it nor any token it
/// led to can be exchanged again. 200 whether or not the token was known (the RFC's rule: a
/// client can do nothing about an unknown one). Access tokens are not revoked: they expire by
/// themselves within `expires_in` seconds.
#[utoipa::path(
    tag = "users",
    request_body(content = RevokeRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token's session has ended, if it had one", body = Revoked),
        RevokeFailed,
    )
)]
#[post("/token/revoke")]
pub async fn revoke_token(
    state: web::Data<AppState>,
    form: FormBody,
) -> Result<HttpResponse, RevokeFailed> {
    let token = form
        .field("token")
        .map_err(|missing| Invalid(vec![missing]))?;
    let hint = form.field("token_type_hint").ok();
    let mut problems = Vec::new();
    if !(1..=REFRESH_TOKEN_MAX_CHARS).contains(&token.chars().count()) {
        let words = "String should have 1 to 64 characters";
        problems.push(FieldError::new(
            Loc::BodyField("token"),
            words,
            "string_too_long",
        ));
    }
    if hint.is_some_and(|hint| !TOKEN_TYPE_HINTS.contains(&hint.as_str())) {
        let words = "Input should be 'refresh_token' or 'access_token'";
        let loc = Loc::BodyField("token_type_hint");
        problems.push(FieldError::new(loc, words, "literal_error"));
    }
    if !problems.is_empty() {
        return Err(Invalid(problems).into());
    }
    let ended = state.auth.sessions.revoke(&state.db, &token).await;
    if ended.map_err(DatabaseFailed::from)? {
        state.metrics.count_revoked();
    }
    Ok(HttpResponse::Ok().json(Revoked {
        status: "revoked".into(),
    }))
}
