//! Kubernetes resource quantities (`100m`, `1.5`, `128Mi`, `1G`, `2e3`), parsed exactly.
//!
//! A quantity is held as an integer number of nano-units, so `0.1` + `0.2` is `300m` and `1Gi` is
//! exactly 1073741824 bytes. Finer precision than a nano-unit rounds up, as Kubernetes does.

use std::fmt;
use std::ops::{Add, AddAssign, Mul, Sub};

/// An exact quantity in nano-units (1e-9 of a core, of a byte, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(i128);

const NANO: i128 = 1_000_000_000;
/// The largest quantity accepted, in nano-units (10^21 units).
const MAX_NANO: i128 = 1_000_000_000_000_000_000_000_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("`{0}` is not a Kubernetes quantity (e.g. `250m`, `1.5`, `128Mi`, `1G`)")]
#[diagnostic(help(
    "write a number with an optional suffix: m (milli), k M G T P E (powers of 1000) or Ki Mi Gi Ti Pi Ei (powers of 1024); no negative values"
))]
pub struct QuantityError(pub String);

impl Quantity {
    pub const ZERO: Quantity = Quantity(0);

    /// The value in nano-units.
    pub fn nanos(self) -> i128 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Millicores (or milli-units), rounded up.
    pub fn millis_ceil(self) -> i128 {
        (self.0 + 999_999).div_euclid(1_000_000)
    }

    /// Whole units (bytes), rounded up.
    pub fn units_ceil(self) -> i128 {
        (self.0 + NANO - 1).div_euclid(NANO)
    }

    pub fn parse(input: &str) -> Result<Quantity, QuantityError> {
        let bad = || QuantityError(input.to_owned());
        let s = input.trim();
        let (sign, s) = match s.as_bytes().first() {
            Some(b'-') => (-1, &s[1..]),
            Some(b'+') => (1, &s[1..]),
            _ => (1, s),
        };
        let num_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(num_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(bad());
        }
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        // value = digits × 10^(exp10) × 2^(exp2)
        let digits: String = format!("{int_part}{frac_part}");
        let mut exp10: i32 = -(frac_part.len() as i32);
        let mut exp2: u32 = 0;
        match suffix {
            "" => {}
            "n" => exp10 -= 9,
            "u" => exp10 -= 6,
            "m" => exp10 -= 3,
            "k" => exp10 += 3,
            "M" => exp10 += 6,
            "G" => exp10 += 9,
            "T" => exp10 += 12,
            "P" => exp10 += 15,
            "E" => exp10 += 18,
            "Ki" => exp2 = 10,
            "Mi" => exp2 = 20,
            "Gi" => exp2 = 30,
            "Ti" => exp2 = 40,
            "Pi" => exp2 = 50,
            "Ei" => exp2 = 60,
            e if e.starts_with(['e', 'E']) => {
                let n: i32 = e[1..].parse().map_err(|_| bad())?;
                if !(-30..=30).contains(&n) {
                    return Err(bad());
                }
                exp10 += n;
            }
            _ => return Err(bad()),
        }
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return Err(bad());
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| bad())?
        };
        // Into nano-units: × 10^(exp10 + 9) × 2^exp2, rounding a remainder up.
        let e = exp10 + 9;
        let scaled = if e >= 0 {
            mantissa
                .checked_mul(10i128.checked_pow(e as u32).ok_or_else(bad)?)
                .ok_or_else(bad)?
        } else {
            let div = 10i128.checked_pow((-e) as u32).ok_or_else(bad)?;
            (mantissa + div - 1) / div
        };
        let value = scaled.checked_mul(1i128 << exp2).ok_or_else(bad)?;
        // Requests and capacities are never negative, and nothing real is bigger than 10^21
        // units (a zetta-core): refusing both keeps every sum far from overflow.
        if sign < 0 && value != 0 {
            return Err(bad());
        }
        if value > MAX_NANO {
            return Err(bad());
        }
        Ok(Quantity(value))
    }

    /// CPU as Kubernetes writes it: `250m`, `2`.
    pub fn cpu(self) -> String {
        let m = self.millis_ceil();
        if m % 1000 == 0 {
            format!("{}", m / 1000)
        } else {
            format!("{m}m")
        }
    }

    /// Memory in the largest binary unit that divides it: `256Mi`, `1.5Gi` shown as `1536Mi`.
    pub fn memory(self) -> String {
        let b = self.units_ceil();
        for (unit, shift) in [("Gi", 30), ("Mi", 20), ("Ki", 10)] {
            if b != 0 && b % (1i128 << shift) == 0 {
                return format!("{}{unit}", b >> shift);
            }
        }
        if b.abs() >= 1 << 20 {
            format!("{:.1}Mi", b as f64 / (1u64 << 20) as f64)
        } else {
            format!("{b}")
        }
    }
}

impl Add for Quantity {
    type Output = Quantity;
    fn add(self, o: Quantity) -> Quantity {
        Quantity(self.0.saturating_add(o.0))
    }
}

impl AddAssign for Quantity {
    fn add_assign(&mut self, o: Quantity) {
        self.0 += o.0;
    }
}

impl Sub for Quantity {
    type Output = Quantity;
    fn sub(self, o: Quantity) -> Quantity {
        Quantity(self.0.saturating_sub(o.0))
    }
}

impl Mul<u32> for Quantity {
    type Output = Quantity;
    fn mul(self, n: u32) -> Quantity {
        Quantity(self.0.saturating_mul(i128::from(n)))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}n", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(q("100m").millis_ceil(), 100);
        assert_eq!(q("1.5").millis_ceil(), 1500);
        assert_eq!(q("0.1") + q("0.2"), q("300m"));
        assert_eq!(q("2").cpu(), "2");
        assert_eq!(q("250m").cpu(), "250m");
        assert_eq!(q("128Mi").units_ceil(), 134_217_728);
        assert_eq!(q("1G").units_ceil(), 1_000_000_000);
        assert_eq!(q("1.5Gi").units_ceil(), 1_610_612_736);
        assert_eq!(q("1Ki").units_ceil(), 1024);
        assert_eq!(q("2e3").units_ceil(), 2000);
        assert_eq!(q("1E").units_ceil(), 1_000_000_000_000_000_000);
        assert_eq!(q("500u").millis_ceil(), 1);
        assert_eq!(q("1n").millis_ceil(), 1);
        assert_eq!(q("0.0000000001"), q("1n")); // below a nano-unit rounds up
        assert_eq!(q("129M").units_ceil(), 129_000_000);
        assert!(
            Quantity::parse("-1").is_err(),
            "requests are never negative"
        );
        assert!(Quantity::parse("-0").is_ok());
        assert!(Quantity::parse("2E").is_ok() && Quantity::parse("1e22").is_err());
        assert_eq!(q("1536Mi").memory(), "1536Mi");
        assert_eq!(q("2Gi").memory(), "2Gi");
        assert_eq!(q("1G").memory(), "953.7Mi");
        for bad in ["", "m", "1.2.3", "1mi", "Mi", "1 Mi", "abc", "1e99", "1.5x"] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
