//! What callers identify themselves and their requests with: usernames, passwords and
//! idempotency keys.

use super::DomainError;

/// A sign-in name: [`Username::MIN_CHARS`] to [`Username::MAX_CHARS`] ASCII letters, digits and
/// [`Username::SYMBOLS`].
pub struct Username(String);

impl Username {
    pub const MIN_CHARS: usize = 3;
    pub const MAX_CHARS: usize = 64;
    pub const SYMBOLS: &str = "._@+-";

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || Self::SYMBOLS.contains(c);
        let length = value.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&length) || !value.chars().all(allowed) {
            return Err(DomainError::Username);
        }
        Ok(Self(value.to_owned()))
    }

    /// The rule as a regular expression, for the OpenAPI document.
    pub fn pattern() -> String {
        format!(
            "^[A-Za-z0-9{}]{{{},{}}}$",
            Self::SYMBOLS,
            Self::MIN_CHARS,
            Self::MAX_CHARS
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as it is compared: `Ada`, `ADA` and `ada` are one name.
    pub fn key(&self) -> String {
        username_key(&self.0)
    }
}

/// `name` as usernames are compared, whether or not it is a valid username (a login may give
/// anything).
pub fn username_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// A password: [`Password::MIN_CHARS`] to [`Password::MAX_CHARS`] characters (the upper bound
/// keeps hashing cheap), no NUL.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let length = value.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&length) || value.contains('\0') {
            return Err(DomainError::Password);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn pattern() -> String {
        format!("^[^\\x00]{{{},{}}}$", Self::MIN_CHARS, Self::MAX_CHARS)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// An `Idempotency-Key`: 1 to [`IdempotencyKey::MAX_LEN`] visible ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let valid = (1..=Self::MAX_LEN).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(DomainError::IdempotencyKey);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn pattern() -> String {
        format!("^[!-~]{{1,{}}}$", Self::MAX_LEN)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patterns_say_what_the_parsers_accept() {
        assert_eq!(Username::pattern(), r"^[A-Za-z0-9._@+-]{3,64}$");
        assert_eq!(Password::pattern(), r"^[^\x00]{8,128}$");
        assert_eq!(IdempotencyKey::pattern(), "^[!-~]{1,255}$");
        assert!(Username::parse("ada.l+1@x").is_ok());
        assert!(Username::parse("ad").is_err() && Username::parse("a d a").is_err());
        assert!(Password::parse("12345678").is_ok() && Password::parse("1234567").is_err());
        assert!(IdempotencyKey::parse("k-1").is_ok() && IdempotencyKey::parse("k 1").is_err());
    }
}
