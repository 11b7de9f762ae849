//! `Caller`: who sent a request, as its bearer token names them, and the accounts they may act
//! on.

use entity::user;
use sea_orm::{ConnectionTrait, EntityTrait};

use super::{Auth, AuthError, token::Refusal};
use crate::domain::{Scope, UserId};

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
    pub user_id: Option<UserId>,
    pub role: Role,
}

impl Caller {
    /// Everyone, when access control is off: the Python original's clients send no token.
    pub const ANYONE: Self = Self {
        user_id: None,
        role: Role::Operator,
    };

    /// The accounts this caller may see and move money from.
    pub fn scope(&self) -> Scope {
        match (self.role, self.user_id) {
            (Role::Customer, Some(id)) => Scope::OwnedBy(id),
            _ => Scope::All,
        }
    }

    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }
}

/// The user `token` names, as they are now: a deleted user's token is refused, and a changed
/// role applies, as soon as this process hears of it (see `directory`).
pub async fn identify(
    db: &impl ConnectionTrait,
    auth: &Auth,
    token: &str,
) -> Result<Caller, AuthError> {
    let user_id = auth.tokens.verify(token).map_err(AuthError::Token)?;
    of_user(db, auth, user_id).await
}

/// The user a verified token names, as they are now (`identify`, once the token is verified).
pub async fn of_user(
    db: &impl ConnectionTrait,
    auth: &Auth,
    user_id: UserId,
) -> Result<Caller, AuthError> {
    let caller = |role| Caller {
        user_id: Some(user_id),
        role,
    };
    if let Some(role) = auth.directory.role(user_id) {
        return Ok(caller(role));
    }
    let generation = auth.directory.generation();
    let Some(user) = user::Entity::find_by_id(user_id.0).one(db).await? else {
        return Err(AuthError::Token(Refusal::UnknownUser));
    };
    let role = Role::parse(&user.role);
    auth.directory.remember(user_id, role, generation);
    Ok(caller(role))
}
