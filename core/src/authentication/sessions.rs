//! Sessions that can end: the refresh token `POST /token` hands out beside each access token.
//!
//! A refresh token is exchanged once for the next one and a new access token (rotation). The
//! tokens of one login are a family: when a token already exchanged comes back, two parties hold
//! it (one of them stole it), so the whole family is revoked and neither can go on. Revoking a
//! token (RFC 7009, logout) ends its family too. Only SHA-256 digests are stored, in the
//! database, so every replica rotates, detects reuse and revokes alike. Access tokens stay
//! short-lived and are not revoked: they end by themselves within `TOKEN_TTL_SECS`.

use std::time::Duration;

use chrono::Utc;
use entity::refresh_token::{self, Column};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use sha2::{Digest, Sha256};

use crate::domain::UserId;

/// Why a refresh token was not exchanged. The client is told none of it, only that the token
/// cannot be used; the log and the metrics say which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Never issued here, or swept long after it expired.
    Unknown,
    Expired,
    /// Its family was revoked: logged out, or a reuse was seen before.
    Revoked,
    /// Exchanged before: its family is revoked now.
    Reused,
}

pub struct Sessions {
    ttl: Duration,
}

impl Sessions {
    /// `ttl`: how long a refresh token may wait to be exchanged.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl }
    }

    /// The first refresh token of a new family, for `user`, who just logged in.
    pub async fn start(&self, db: &impl ConnectionTrait, user: UserId) -> Result<String, DbErr> {
        let family = uuid::Uuid::new_v4().to_string();
        self.issue(db, &family, user).await
    }

    /// Exchanges `token` for the next of its family: the user it was issued to and the new token.
    pub async fn rotate(
        &self,
        db: &DatabaseConnection,
        token: &str,
    ) -> Result<Result<(UserId, String), Refused>, DbErr> {
        let digest = digest(token);
        let now = now_ms();
        let txn = db.begin().await?;
        // One statement claims the token: of two racing exchanges, one finds it unused.
        let claimed = refresh_token::Entity::update_many()
            .col_expr(Column::UsedAt, now.into())
            .filter(Column::Digest.eq(&digest))
            .filter(Column::UsedAt.is_null())
            .filter(Column::RevokedAt.is_null())
            .filter(Column::ExpiresAt.gt(now))
            .exec_with_returning(&txn)
            .await?;
        if let Some(claimed) = claimed.first() {
            let user = UserId(claimed.user_id);
            let next = self.issue(&txn, &claimed.family, user).await?;
            txn.commit().await?;
            return Ok(Ok((user, next)));
        }
        let Some(stored) = refresh_token::Entity::find_by_id(digest).one(&txn).await? else {
            return Ok(Err(Refused::Unknown));
        };
        let refused = if stored.revoked_at.is_some() {
            Refused::Revoked
        } else if stored.used_at.is_some() {
            revoke_family(&txn, &stored.family, now).await?;
            Refused::Reused
        } else {
            Refused::Expired
        };
        txn.commit().await?;
        Ok(Err(refused))
    }

    /// Ends the family `token` belongs to (logout). `false` when no such token was issued here.
    pub async fn revoke(&self, db: &impl ConnectionTrait, token: &str) -> Result<bool, DbErr> {
        let Some(stored) = refresh_token::Entity::find_by_id(digest(token))
            .one(db)
            .await?
        else {
            return Ok(false);
        };
        revoke_family(db, &stored.family, now_ms()).await?;
        Ok(true)
    }

    /// Forgets the tokens past their expiry, once an hour, for as long as it runs; a token past
    /// its expiry is refused whether it is remembered or not.
    pub async fn keep_swept(&self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        let mut every_hour = tokio::time::interval(Duration::from_secs(60 * 60));
        loop {
            every_hour.tick().await;
            refresh_token::Entity::delete_many()
                .filter(Column::ExpiresAt.lte(now_ms()))
                .exec(db)
                .await?;
        }
    }

    async fn issue(
        &self,
        db: &impl ConnectionTrait,
        family: &str,
        user: UserId,
    ) -> Result<String, DbErr> {
        let token = new_token();
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        refresh_token::Entity::insert(refresh_token::ActiveModel {
            digest: Set(digest(&token)),
            family: Set(family.to_owned()),
            user_id: Set(user.0),
            expires_at: Set(now_ms().saturating_add(ttl)),
            used_at: Set(None),
            revoked_at: Set(None),
        })
        .exec_without_returning(db)
        .await?;
        Ok(token)
    }
}

async fn revoke_family(db: &impl ConnectionTrait, family: &str, now: i64) -> Result<(), DbErr> {
    refresh_token::Entity::update_many()
        .col_expr(Column::RevokedAt, now.into())
        .filter(Column::Family.eq(family))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// 244 random bits from the OS (two v4 UUIDs), as 64 hex digits.
fn new_token() -> String {
    let bytes = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()];
    bytes.iter().map(|id| id.simple().to_string()).collect()
}

fn digest(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}
