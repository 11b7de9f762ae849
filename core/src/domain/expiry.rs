//! How long a hold may reserve money.

use super::DomainError;

/// The longest a hold may last: seven days, as card authorisations commonly do.
pub const MAX_HOLD_SECONDS: i64 = 7 * 24 * 60 * 60;

/// A hold's lifetime: 1 second to [`MAX_HOLD_SECONDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry(i64);

impl Expiry {
    pub fn seconds(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Expiry {
    type Error = DomainError;

    fn try_from(seconds: i64) -> Result<Self, DomainError> {
        if (1..=MAX_HOLD_SECONDS).contains(&seconds) {
            Ok(Self(seconds))
        } else {
            Err(DomainError::ExpiryOutOfRange)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_lasts_one_second_to_seven_days() {
        for bad in [i64::MIN, -1, 0, MAX_HOLD_SECONDS + 1] {
            assert_eq!(
                Expiry::try_from(bad),
                Err(DomainError::ExpiryOutOfRange),
                "{bad}"
            );
        }
        for good in [1, MAX_HOLD_SECONDS] {
            assert_eq!(Expiry::try_from(good).map(Expiry::seconds), Ok(good));
        }
    }
}
