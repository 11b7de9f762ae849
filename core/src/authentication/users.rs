//! Users: signing up, logging in for a token (and exchanging a refresh token for the next), and
//! the operator account from the environment.

use std::net::IpAddr;

use entity::user;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, Set, TryInsertResult,
    sea_query::{Condition, Expr},
};

use super::{Auth, AuthError, Role, password, throttle::Refusal};
use crate::domain::{Password, UserId, Username, username_key};

pub async fn sign_up(
    db: &impl ConnectionTrait,
    username: &Username,
    password: &Password,
    role: Role,
) -> Result<user::Model, AuthError> {
    let hash = password::hash(password).await?;
    let row = user::ActiveModel {
        username: Set(username.as_str().to_owned()),
        username_key: Set(Some(username.key())),
        password_hash: Set(hash),
        role: Set(role.as_str().to_owned()),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    };
    // Taken: the name in any case (the oldest of names that differ only by case holds the key).
    let inserted = user::Entity::insert(row)
        .on_conflict_do_nothing_on([user::Column::UsernameKey])
        .exec_without_returning(db)
        .await?;
    if !matches!(inserted, TryInsertResult::Inserted(1)) {
        return Err(AuthError::UsernameTaken);
    }
    user::Entity::find()
        .filter(user::Column::Username.eq(username.as_str()))
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("a user vanished after sign-up".into()).into())
}

/// What a login or a refresh hands out: a short-lived access token and the refresh token that
/// gets the next one.
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
}

/// Tokens for the right username and password, in a new session. Throttled per username and per address; an
/// unknown username and a wrong password get the same refusal in the same time: the password is
/// checked against a hash either way.
pub async fn log_in(
    db: &impl ConnectionTrait,
    auth: &Auth,
    username: &str,
    password: String,
    address: Option<IpAddr>,
) -> Result<Issued, AuthError> {
    let attempt = match auth.throttle.attempt(db, username, address).await {
        Ok(attempt) => attempt,
        Err(Refusal::Throttled(retry_after)) => return Err(AuthError::Throttled(retry_after)),
        Err(Refusal::Database(error)) => return Err(error.into()),
    };
    // No name holds a NUL, and Postgres cannot even compare text holding one.
    let user = match username.contains('\0') {
        true => None,
        false => named(db, username).await?,
    };
    let stored = user.as_ref().map(|user| user.password_hash.clone());
    let verified = password::verify(password, stored).await;
    match user {
        Some(user) if verified => {
            auth.throttle.succeeded(db, &attempt).await?;
            let user = UserId(user.id);
            Ok(Issued {
                access_token: auth.tokens.issue(user)?,
                refresh_token: auth.sessions.start(db, user).await?,
            })
        }
        _ => Err(AuthError::BadCredentials),
    }
}

/// Tokens for the holder of `refresh_token`, which is used up (see `sessions`).
pub async fn refresh(
    db: &DatabaseConnection,
    auth: &Auth,
    refresh_token: &str,
) -> Result<Issued, AuthError> {
    let (user, next) = auth
        .sessions
        .rotate(db, refresh_token)
        .await?
        .map_err(AuthError::Refresh)?;
    Ok(Issued {
        access_token: auth.tokens.issue(user)?,
        refresh_token: next,
    })
}

/// The user `username` names, in any case. A name that differed from an older one only by case
/// when names became one whatever their case has no key, and is found by its exact spelling,
/// which wins over the older name's.
async fn named(db: &impl ConnectionTrait, username: &str) -> Result<Option<user::Model>, DbErr> {
    let exact = Expr::col(user::Column::Username).eq(username);
    let legacy = Condition::all()
        .add(user::Column::UsernameKey.is_null())
        .add(exact.clone());
    user::Entity::find()
        .filter(
            Condition::any()
                .add(user::Column::UsernameKey.eq(username_key(username)))
                .add(legacy),
        )
        .order_by_desc(exact)
        .one(db)
        .await
}

/// Creates the operator named by `OPERATOR_USERNAME`, or gives the user of that name (in any
/// case) the operator role and the password from `OPERATOR_PASSWORD`. Replicas starting together
/// may both try: the insert of the one that comes second does nothing, and both set the same
/// password.
pub async fn ensure_operator(
    db: &DatabaseConnection,
    username: &Username,
    password: &Password,
) -> Result<(), AuthError> {
    let hash = password::hash(password).await?;
    let operator = Role::Operator.as_str().to_owned();
    if let Some(user) = named(db, username.as_str()).await? {
        let user = user::ActiveModel {
            id: Set(user.id),
            password_hash: Set(hash),
            role: Set(operator),
            ..Default::default()
        };
        user::Entity::update(user).exec(db).await?;
        return Ok(());
    }
    let row = user::ActiveModel {
        username: Set(username.as_str().to_owned()),
        username_key: Set(Some(username.key())),
        password_hash: Set(hash),
        role: Set(operator),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    };
    user::Entity::insert(row)
        .on_conflict_do_nothing_on([user::Column::UsernameKey])
        .exec_without_returning(db)
        .await?;
    Ok(())
}
