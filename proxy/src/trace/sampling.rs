//! Whether a request's span is recorded: the caller's decision when it made one, else
//! `sampling_percentage` of new decisions.

/// `roll` is uniform in `[0, 1)`.
pub fn decide(incoming: Option<bool>, percentage: f64, roll: f64) -> bool {
    match incoming {
        Some(decision) => decision,
        None => roll * 100.0 < percentage,
    }
}

#[cfg(test)]
mod tests {
    use super::decide;

    #[test]
    fn an_incoming_decision_wins_over_the_percentage() {
        assert!(decide(Some(true), 0.0, 0.5));
        assert!(!decide(Some(false), 100.0, 0.0));
    }

    #[test]
    fn the_percentage_applies_to_new_decisions() {
        assert!(decide(None, 100.0, 0.999_999));
        assert!(!decide(None, 0.0, 0.0));
        assert!(decide(None, 25.0, 0.249));
        assert!(!decide(None, 25.0, 0.25));
        let sampled = (0..10_000)
            .filter(|i| decide(None, 10.0, f64::from(*i) / 10_000.0))
            .count();
        assert_eq!(sampled, 1000);
    }
}
