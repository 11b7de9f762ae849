//! The text of an account: names and address.

use super::DomainError;

/// The longest name or address accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// A name or an address: trimmed, 1 to [`MAX_TEXT_CHARS`] characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    /// What a valid value looks like, for the OpenAPI document: not only whitespace, and no
    /// control characters (C0, DEL and C1, which is what `char::is_control` refuses).
    pub const PATTERN: &str =
        r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            Err(DomainError::TextEmpty)
        } else if trimmed.chars().count() > MAX_TEXT_CHARS {
            Err(DomainError::TextTooLong)
        } else if trimmed.chars().any(char::is_control) {
            Err(DomainError::TextControlCharacters)
        } else {
            Ok(Self(trimmed.to_owned()))
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(
            Text::parse("  Ada  ").map(Text::into_inner),
            Ok("Ada".into())
        );
        assert_eq!(
            Text::parse(&"é".repeat(200)).map(|t| t.into_inner().chars().count()),
            Ok(200)
        );
        let bad = [
            ("", DomainError::TextEmpty),
            ("   ", DomainError::TextEmpty),
            ("a\0b", DomainError::TextControlCharacters),
            ("tab\there", DomainError::TextControlCharacters),
            ("line\nbreak", DomainError::TextControlCharacters),
            (&"a".repeat(201), DomainError::TextTooLong),
        ];
        for (value, error) in bad {
            assert_eq!(Text::parse(value), Err(error), "{value:?}");
        }
    }
}
