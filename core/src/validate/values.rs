//! Durations and percentages.

use crate::config::{Duration, Percent};

/// Whether `0s` is meaningful for a duration field (`timeout: 0s` disables the timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Zero {
    Disables,
    Invalid,
}

/// A duration: never negative, at least 1ms (Envoy's resolution), `0s` only where it
/// disables something.
pub(super) fn check_duration(duration: &Duration, zero: Zero) -> Result<(), String> {
    const MILLISECOND: i128 = 1_000_000;
    let nanos = duration.as_nanos();
    if nanos < 0 {
        return Err(format!(
            "duration {duration} is negative; write a positive duration such as 1s"
        ));
    }
    if nanos == 0 {
        return match zero {
            Zero::Disables => Ok(()),
            Zero::Invalid => Err("duration must be greater than 0; write e.g. 100ms".into()),
        };
    }
    if nanos < MILLISECOND {
        return Err(format!(
            "duration {duration} is below 1ms, the smallest duration mesh honours; use at least 1ms"
        ));
    }
    Ok(())
}

/// A fractional percentage: 0, or in [0.0001, 100] as Istio requires.
pub(super) fn check_percentage(percent: &Percent) -> Result<(), String> {
    let value = percent.value;
    if !(0.0..=100.0).contains(&value) {
        return Err(format!("percentage {value} is not in 0..100"));
    }
    if value > 0.0 && value < 0.0001 {
        return Err(format!(
            "percentage {value} is below 0.0001, the smallest fraction supported; use 0 or at least 0.0001"
        ));
    }
    Ok(())
}

/// A legacy integer percentage.
pub(super) fn check_percent(value: u32) -> Result<(), String> {
    if value <= 100 {
        Ok(())
    } else {
        Err(format!("percentage {value} is not in 0..100"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duration(text: &str) -> Duration {
        Duration::parse(text).expect(text)
    }

    #[test]
    fn durations() {
        assert!(check_duration(&duration("1ms"), Zero::Invalid).is_ok());
        assert!(check_duration(&duration("0s"), Zero::Disables).is_ok());
        let zero = check_duration(&duration("0s"), Zero::Invalid).expect_err("zero");
        assert!(zero.contains("greater than 0"), "{zero}");
        let negative = check_duration(&duration("-1s"), Zero::Disables).expect_err("negative");
        assert!(negative.contains("duration -1s is negative"), "{negative}");
        let tiny = check_duration(&duration("500us"), Zero::Invalid).expect_err("tiny");
        assert!(tiny.contains("below 1ms"), "{tiny}");
    }

    #[test]
    fn percentages() {
        for ok in [0.0, 0.0001, 50.5, 100.0] {
            assert!(check_percentage(&Percent { value: ok }).is_ok(), "{ok}");
        }
        for bad in [-1.0, 100.1, 0.00001, f64::NAN] {
            assert!(check_percentage(&Percent { value: bad }).is_err(), "{bad}");
        }
        assert!(check_percent(100).is_ok());
        assert_eq!(
            check_percent(101),
            Err("percentage 101 is not in 0..100".into())
        );
    }
}
