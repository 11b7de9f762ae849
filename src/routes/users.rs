//! `/users` and `/token`: signing up, and the OAuth2 password flow that turns a username and
//! password into a bearer token (what FastAPI's `OAuth2PasswordRequestForm` reads).

use actix_web::{HttpResponse, http::header, post, web};
use bank_core::{
    authentication::{AuthError, Role, users},
    domain::{Password, Username},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    error::{
        BadCredentials, DatabaseFailed, Internal, Invalid, Problems, SignUpDisabled, Throttled,
        UsernameTaken, failures,
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
        Throttled(Throttled),
        Database(DatabaseFailed),
        Internal(Internal),
    }
}

impl From<AuthError> for LogInFailed {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::BadCredentials => BadCredentials.into(),
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
    pub id: i64,
    pub username: String,
    /// `customer` or `operator`.
    pub role: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What `POST /token` answers (RFC 6749 section 5.1).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9...", "token_type": "bearer", "expires_in": 900}))]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `bearer`: send `Authorization: Bearer <access_token>`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// The form of `POST /token`: the OAuth2 password grant.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used: the form is read field by field, to name what is missing.
pub struct TokenRequest {
    username: String,
    #[schema(format = Password)]
    password: String,
    /// `password`, when sent.
    grant_type: Option<String>,
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

/// Log in for a token
///
/// The OAuth2 password flow: a form with `username` and `password` gets a bearer token that
/// expires after `expires_in` seconds. Failed logins are limited per username and client address
/// together, per username and per address, on every replica alike (429 with `Retry-After`).
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
    let (username, password) = match (form.field("username"), form.field("password")) {
        (Ok(username), Ok(password)) => (username, password),
        (username, password) => {
            let missing = [username.err(), password.err()];
            return Err(Invalid(missing.into_iter().flatten().collect()).into());
        }
    };
    let token = users::log_in(&state.db, &state.auth, &username, password, address).await;
    state.metrics.count_login(LoginOutcome::of(&token));
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(TokenResponse {
            access_token: token?,
            token_type: "bearer".into(),
            expires_in: state.auth.tokens.ttl.as_secs(),
        }))
}
