//! Password hashes: argon2id with the crate's defaults (19 MiB, 2 passes: OWASP's minimum), in
//! PHC format. Hashing and checking take tens of milliseconds of CPU on purpose, so they run on
//! the blocking pool, never on the async workers.

use std::sync::LazyLock;

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};

use super::AuthError;
use crate::domain::Password;

pub async fn hash(password: &Password) -> Result<String, AuthError> {
    let password = password.expose().to_owned();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
    })
    .await
    .map_err(AuthError::internal)?
    .map_err(AuthError::internal)
}

/// A hash of no one's password, checked when the user does not exist, so that an unknown
/// username costs the same time as a wrong password and cannot be told apart by it.
static NO_ONE: LazyLock<String> = LazyLock::new(|| {
    Argon2::default()
        .hash_password(uuid::Uuid::new_v4().as_bytes())
        .map(|hash| hash.to_string())
        .expect("argon2 hashes 16 random bytes")
});

/// Whether `password` matches `stored`; `None` (no such user) always fails, in the same time.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let hash = stored.as_deref().unwrap_or(&NO_ONE);
        let matches = PasswordHash::new(hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        matches && stored.is_some()
    })
    .await
    .unwrap_or(false)
}
