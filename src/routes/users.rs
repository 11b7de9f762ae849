//! `/users` and `/token`: signing up, and the OAuth2 password flow that turns a username and
//! password into a bearer token (what FastAPI's `OAuth2PasswordRequestForm` reads).

use actix_web::{HttpResponse, http::header, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::responses::BodyErrors;
use crate::{
    authentication::{AuthError, Role, users},
    domain::{Password, Problems, Username},
    error::{ApiError, ErrorBody, FieldError, Loc},
    extract::{ApiJson, ClientAddress, MaybeCaller, schemas},
    state::AppState,
};

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
        (status = 403, description = "Sign-up is switched off and the caller is not an operator", body = ErrorBody, example = json!({"detail": "Sign-up is disabled"})),
        (status = 409, description = "The username is taken", body = ErrorBody, example = json!({"detail": "Username already taken"})),
        BodyErrors,
    )
)]
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: MaybeCaller,
    body: ApiJson<NewUser>,
) -> Result<HttpResponse, ApiError> {
    let operator = caller.0.is_some_and(|caller| caller.is_operator());
    if !state.auth.signup_enabled && !operator {
        return Err(AuthError::SignUpDisabled.into());
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
        (status = 401, description = "Wrong username or password (the same answer for both)", body = ErrorBody, example = json!({"detail": "Incorrect username or password"})),
        BodyErrors,
        (status = 429, description = "Too many failed logins for this username or address; retry after `Retry-After` seconds", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/token")]
pub async fn create_token(
    state: web::Data<AppState>,
    ClientAddress(address): ClientAddress,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|_| ApiError::BadRequest("Malformed form body".into()))?;
    let field = |name: &'static str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .ok_or_else(|| FieldError::new(Loc::BodyField(name), "Field required", "missing"))
    };
    let (username, password) = match (field("username"), field("password")) {
        (Ok(username), Ok(password)) => (username, password),
        (username, password) => {
            let missing = [username.err(), password.err()];
            return Err(ApiError::Validation(
                missing.into_iter().flatten().collect(),
            ));
        }
    };
    let token = users::log_in(
        &state.db,
        &state.auth,
        &state.metrics,
        &username,
        password,
        address,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(TokenResponse {
            access_token: token,
            token_type: "bearer".into(),
            expires_in: state.auth.tokens.ttl.as_secs(),
        }))
}
