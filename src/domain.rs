//! Values that are checked once, where a request enters, so code past the boundary cannot hold a
//! bad one: amounts of money and the text fields of an account.

use crate::error::{FieldError, Loc};

/// The largest amount one credit, debit or transfer may move: 10^12 minor units
/// (ten billion in a currency with cents).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// The largest balance an account may hold: 10^15 minor units. Keeps every sum the ledger
/// computes far from i64 overflow.
pub const MAX_BALANCE: i64 = 1_000_000_000_000_000;
/// The longest name or address accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// An amount of money in minor units, between 0 and [`MAX_AMOUNT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amount(i64);

impl Amount {
    pub const ZERO: Self = Self(0);

    pub fn parse(value: i64, field: &str) -> Result<Self, FieldError> {
        if (0..=MAX_AMOUNT).contains(&value) {
            return Ok(Self(value));
        }
        Err(FieldError::new(
            Loc::BodyField(field),
            format!("Input should be between 0 and {MAX_AMOUNT} (minor units)"),
            "amount_range",
        ))
    }

    /// Like [`Amount::parse`], but zero is refused too: moving nothing is a client mistake.
    pub fn parse_positive(value: i64, field: &str) -> Result<Self, FieldError> {
        let amount = Self::parse(value, field)?;
        if amount.is_zero() {
            return Err(FieldError::new(
                Loc::BodyField(field),
                "Input should be greater than 0",
                "greater_than",
            ));
        }
        Ok(amount)
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn minor_units(self) -> i64 {
        self.0
    }
}

/// A name or an address: trimmed, 1 to [`MAX_TEXT_CHARS`] characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub fn parse(value: &str, field: &str) -> Result<Self, FieldError> {
        let trimmed = value.trim();
        let problem = if trimmed.is_empty() {
            Some(("String should not be empty", "string_too_short"))
        } else if trimmed.chars().count() > MAX_TEXT_CHARS {
            Some((
                "String should have at most 200 characters",
                "string_too_long",
            ))
        } else if trimmed.chars().any(char::is_control) {
            Some((
                "String should not contain control characters",
                "string_pattern_mismatch",
            ))
        } else {
            None
        };
        match problem {
            Some((msg, kind)) => Err(FieldError::new(Loc::BodyField(field), msg, kind)),
            None => Ok(Self(trimmed.to_owned())),
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Collects every field's problem, so one 422 lists them all, as FastAPI does.
#[derive(Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        result.map_err(|problem| self.0.push(problem)).ok()
    }

    pub fn push(&mut self, problem: FieldError) {
        self.0.push(problem);
    }

    /// `Ok(value)` when no problem was found; `value` is only built then.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, crate::error::ApiError> {
        match value() {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(crate::error::ApiError::Validation(self.0)),
        }
    }
}

/// A sign-in name: 3 to 64 characters, letters, digits and `. _ @ + -`.
pub struct Username(String);

impl Username {
    pub fn parse(value: &str, field: &str) -> Result<Self, FieldError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._@+-".contains(c);
        let length = value.chars().count();
        if !(3..=64).contains(&length) || !value.chars().all(allowed) {
            return Err(FieldError::new(
                Loc::BodyField(field),
                "Should be 3 to 64 letters, digits or . _ @ + -",
                "username",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password: 8 to 128 characters (the upper bound keeps hashing cheap), no NUL.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(value: &str, field: &str) -> Result<Self, FieldError> {
        let length = value.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&length) || value.contains('\0') {
            return Err(FieldError::new(
                Loc::BodyField(field),
                "Should be 8 to 128 characters, without NUL",
                "password",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_outside_zero_to_the_maximum_are_refused() {
        for bad in [-1, i64::MIN, MAX_AMOUNT + 1, i64::MAX] {
            assert!(Amount::parse(bad, "credit").is_err(), "{bad} accepted");
        }
        for good in [0, 1, MAX_AMOUNT] {
            assert_eq!(
                Amount::parse(good, "credit").map(Amount::minor_units),
                Ok(good)
            );
        }
        assert!(Amount::parse_positive(0, "amount").is_err());
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(
            Text::parse("  Ada  ", "first_name").map(Text::into_inner),
            Ok("Ada".into())
        );
        assert_eq!(
            Text::parse(&"é".repeat(200), "x").map(|t| t.into_inner().chars().count()),
            Ok(200)
        );
        let bad = [
            "",
            "   ",
            "a\0b",
            "tab\there",
            "line\nbreak",
            &"a".repeat(201),
        ];
        for value in bad {
            assert!(
                Text::parse(value, "first_name").is_err(),
                "{value:?} accepted"
            );
        }
    }
}
