//! Amounts of money: integers of minor units (cents), never floats.

use super::DomainError;

/// The largest amount one credit, debit or transfer may move: 10^12 minor units
/// (ten billion in a currency with cents).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// The largest balance an account may hold: 10^15 minor units. Keeps every sum the ledger
/// computes far from i64 overflow.
pub const MAX_BALANCE: i64 = 1_000_000_000_000_000;

/// An amount of money in minor units, between 0 and [`MAX_AMOUNT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amount(i64);

impl Amount {
    pub const ZERO: Self = Self(0);

    /// Like `try_from`, but zero is refused too: moving nothing is a client mistake.
    pub fn positive(value: i64) -> Result<Self, DomainError> {
        let amount = Self::try_from(value)?;
        if amount.is_zero() {
            return Err(DomainError::NotPositive);
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

impl TryFrom<i64> for Amount {
    type Error = DomainError;

    fn try_from(value: i64) -> Result<Self, DomainError> {
        if (0..=MAX_AMOUNT).contains(&value) {
            Ok(Self(value))
        } else {
            Err(DomainError::AmountOutOfRange)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_outside_zero_to_the_maximum_are_refused() {
        for bad in [-1, i64::MIN, MAX_AMOUNT + 1, i64::MAX] {
            assert_eq!(
                Amount::try_from(bad),
                Err(DomainError::AmountOutOfRange),
                "{bad}"
            );
        }
        for good in [0, 1, MAX_AMOUNT] {
            assert_eq!(Amount::try_from(good).map(Amount::minor_units), Ok(good));
        }
        assert_eq!(Amount::positive(0), Err(DomainError::NotPositive));
    }
}
