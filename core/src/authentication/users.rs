//! Users: signing up, logging in for a token, and the operator account from the environment.

use std::net::IpAddr;

use entity::user;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
    TryInsertResult, sea_query::OnConflict,
};

use super::{Auth, AuthError, Role, password, throttle::Refusal};
use crate::domain::{Password, UserId, Username};

pub async fn sign_up(
    db: &impl ConnectionTrait,
    username: &Username,
    password: &Password,
    role: Role,
) -> Result<user::Model, AuthError> {
    let hash = password::hash(password).await?;
    let row = user::ActiveModel {
        username: Set(username.as_str().to_owned()),
        password_hash: Set(hash),
        role: Set(role.as_str().to_owned()),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    };
    let inserted = user::Entity::insert(row)
        .on_conflict_do_nothing_on([user::Column::Username])
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

/// A token for the right username and password. Throttled per username and per address; an
/// unknown username and a wrong password get the same refusal in the same time: the password is
/// checked against a hash either way.
pub async fn log_in(
    db: &impl ConnectionTrait,
    auth: &Auth,
    username: &str,
    password: String,
    address: Option<IpAddr>,
) -> Result<String, AuthError> {
    let attempt = match auth.throttle.attempt(db, username, address).await {
        Ok(attempt) => attempt,
        Err(Refusal::Throttled(retry_after)) => return Err(AuthError::Throttled(retry_after)),
        Err(Refusal::Database(error)) => return Err(error.into()),
    };
    let user = user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(db)
        .await?;
    let stored = user.as_ref().map(|user| user.password_hash.clone());
    let verified = password::verify(password, stored).await;
    match user {
        Some(user) if verified => {
            auth.throttle.succeeded(db, &attempt).await?;
            auth.tokens.issue(UserId(user.id))
        }
        _ => Err(AuthError::BadCredentials),
    }
}

/// Creates the operator named by `OPERATOR_USERNAME`, or gives that user the operator role and
/// the password from `OPERATOR_PASSWORD`: one upsert, so replicas starting together cannot trip
/// over each other.
pub async fn ensure_operator(
    db: &DatabaseConnection,
    username: &Username,
    password: &Password,
) -> Result<(), AuthError> {
    let hash = password::hash(password).await?;
    let operator = user::ActiveModel {
        username: Set(username.as_str().to_owned()),
        password_hash: Set(hash),
        role: Set(Role::Operator.as_str().to_owned()),
        created_at: Set(chrono::Utc::now()),
        ..Default::default()
    };
    let keep_the_row = OnConflict::column(user::Column::Username)
        .update_columns([user::Column::PasswordHash, user::Column::Role])
        .to_owned();
    user::Entity::insert(operator)
        .on_conflict(keep_the_row)
        .exec_without_returning(db)
        .await?;
    Ok(())
}
