//! Envoy's percentages: `FractionalPercent` (`numerator` over `HUNDRED`,
//! `TEN_THOUSAND` or `MILLION`), `RuntimeFractionalPercent` (a
//! `default_value` and a `runtime_key`) and `Percent` (a double from 0 to
//! 100). One implementation, shared by every filter that samples requests.

use crate::decode::{Result, Val};

/// `envoy.type.v3.FractionalPercent.DenominatorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Denominator {
    /// `HUNDRED` (the default).
    #[default]
    Hundred,
    /// `TEN_THOUSAND`.
    TenThousand,
    /// `MILLION`.
    Million,
}

impl Denominator {
    /// The denominator as a number.
    pub fn value(self) -> u64 {
        match self {
            Denominator::Hundred => 100,
            Denominator::TenThousand => 10_000,
            Denominator::Million => 1_000_000,
        }
    }
}

/// `envoy.type.v3.FractionalPercent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FractionalPercent {
    /// The numerator (a numerator above the denominator is always true).
    pub numerator: u32,
    /// The denominator.
    pub denominator: Denominator,
}

impl FractionalPercent {
    /// `numerator` percent.
    pub fn hundred(numerator: u32) -> Self {
        FractionalPercent {
            numerator,
            denominator: Denominator::Hundred,
        }
    }

    /// Whether a request drawn with `random` falls in the fraction, as
    /// Envoy's `evaluateFractionalPercent`: `random % denominator < numerator`.
    pub fn hit(&self, random: u64) -> bool {
        random % self.denominator.value() < u64::from(self.numerator)
    }
}

/// `envoy.config.core.v3.RuntimeFractionalPercent`. nuncio has no runtime
/// layer, so the value is always `default_value` (as in Envoy when the key
/// is not set in any runtime layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeFractionalPercent {
    /// The fraction used.
    pub default_value: FractionalPercent,
    /// The runtime key (recorded for `/config_dump`; never looked up).
    pub runtime_key: Option<String>,
}

/// Decodes a `FractionalPercent`.
pub(crate) fn decode_fractional_percent(v: &Val) -> Result<FractionalPercent> {
    let o = v.obj()?;
    let numerator = o
        .get("numerator")
        .map(|n| n.u32())
        .transpose()?
        .unwrap_or(0);
    let denominator = match o.get("denominator") {
        None => Denominator::Hundred,
        Some(d) => d.enumeration(&[
            ("HUNDRED", Denominator::Hundred),
            ("TEN_THOUSAND", Denominator::TenThousand),
            ("MILLION", Denominator::Million),
        ])?,
    };
    o.finish()?;
    Ok(FractionalPercent {
        numerator,
        denominator,
    })
}

/// Decodes a `RuntimeFractionalPercent` (`default_value` is required).
pub(crate) fn decode_runtime_fractional_percent(v: &Val) -> Result<RuntimeFractionalPercent> {
    let o = v.obj()?;
    let default_value = decode_fractional_percent(&o.req("default_value")?)?;
    let runtime_key = o.get("runtime_key").map(|k| k.str()).transpose()?;
    o.finish()?;
    Ok(RuntimeFractionalPercent {
        default_value,
        runtime_key,
    })
}

/// Decodes an `envoy.type.v3.Percent` (`{value: 0..100}`).
pub(crate) fn decode_percent(v: &Val) -> Result<f64> {
    let o = v.obj()?;
    let value = match o.get("value") {
        None => 0.0,
        Some(p) => {
            let x = p.f64()?;
            if !(0.0..=100.0).contains(&x) {
                return Err(p.err(format!("a percentage must be from 0 to 100, got {x}")));
            }
            x
        }
    };
    o.finish()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_str;

    #[test]
    fn fractional_percent() {
        let p = decode_str("t", "numerator: 5\ndenominator: ten_thousand\n", |v| {
            decode_fractional_percent(v)
        })
        .unwrap();
        assert_eq!(p.numerator, 5);
        assert_eq!(p.denominator, Denominator::TenThousand);
        assert!(p.hit(10_004));
        assert!(!p.hit(10_005));
        let d = decode_str("t", "{}", decode_fractional_percent).unwrap();
        assert_eq!(d, FractionalPercent::hundred(0));
        assert!(!d.hit(0));
        assert!(FractionalPercent::hundred(200).hit(99));
        let e = decode_str("t", "denominator: THOUSAND\n", |v| {
            decode_fractional_percent(v)
        })
        .unwrap_err();
        assert!(e.message.contains("TEN_THOUSAND"), "{e}");
        let e = decode_str("t", "numerator: 1\nnumerater: 2\n", |v| {
            decode_fractional_percent(v)
        })
        .unwrap_err();
        assert!(e.message.contains("did you mean 'numerator'"), "{e}");
    }

    #[test]
    fn runtime_fractional_percent() {
        let r = decode_str(
            "t",
            "default_value: {numerator: 50}\nruntime_key: a.b\n",
            decode_runtime_fractional_percent,
        )
        .unwrap();
        assert_eq!(r.default_value, FractionalPercent::hundred(50));
        assert_eq!(r.runtime_key.as_deref(), Some("a.b"));
        let e = decode_str("t", "runtime_key: a\n", |v| {
            decode_runtime_fractional_percent(v)
        })
        .unwrap_err();
        assert!(e.message.contains("default_value"), "{e}");
    }

    #[test]
    fn percent() {
        assert_eq!(
            decode_str("t", "value: 12.5", decode_percent).unwrap(),
            12.5
        );
        assert!(decode_str("t", "value: 101", decode_percent).is_err());
        assert!(decode_str("t", "value: x", decode_percent).is_err());
    }
}
