//! The push loop: waits for a source's changes to settle (a quiet period, capped so a
//! steady stream of changes still goes out), then builds one new generation and publishes
//! it to every stream at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::index::{Index, Settings};
use crate::metrics as m;
use crate::source::{Action, Source};
use crate::xds::Generation;

#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Debounce {
    /// Push once no change arrived for this long...
    #[serde(with = "crate::config::millis")]
    pub quiet: Duration,
    /// ...or this long after the first change, whichever comes first.
    #[serde(with = "crate::config::millis")]
    pub max: Duration,
}

/// Indexes the source's current inputs as generation `number`.
pub fn build(
    source: &dyn Source,
    settings: &Settings,
    number: u64,
    changed_at: Instant,
    previous: Option<&Generation>,
) -> Generation {
    let started = Instant::now();
    let inputs = source.inputs();
    for action in [Action::Skipped, Action::KeptPrevious, Action::Used] {
        let count = inputs
            .status
            .iter()
            .filter(|s| s.action == action && s.diagnostic.is_error())
            .count();
        let label = match action {
            Action::Skipped => "skipped",
            Action::KeptPrevious => "keptPrevious",
            Action::Used => "used",
        };
        metrics::gauge!(m::CONFIG_ERRORS, "action" => label).set(count as f64);
    }
    let index = Index::new(settings.clone(), inputs);
    let generation = Generation::new(number, index, changed_at, previous);
    metrics::histogram!(m::GENERATION_BUILD).record(started.elapsed().as_secs_f64());
    metrics::gauge!(m::GENERATION).set(number as f64);
    generation
}

/// Runs until the source's change channel closes.
pub async fn run(
    mut changes: watch::Receiver<u64>,
    source: Arc<dyn Source>,
    settings: Settings,
    debounce: Debounce,
    generations: watch::Sender<Arc<Generation>>,
) {
    // Fetched JWKS change what translation produces just as config does.
    let mut keys = crate::jwks::JwksResolver::global().updates();
    loop {
        tokio::select! {
            changed = changes.changed() => if changed.is_err() {
                return;
            },
            _ = keys.changed() => {}
        }
        // tokio's clock, so tests can pause it; std's for the generation's timestamp.
        let noticed = Instant::now();
        let first = tokio::time::Instant::now();
        let mut last = first;
        loop {
            let deadline = (last + debounce.quiet).min(first + debounce.max);
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    last = tokio::time::Instant::now();
                }
                _ = keys.changed() => last = tokio::time::Instant::now(),
            }
        }
        let previous = generations.borrow().clone();
        let number = previous.number + 1;
        let source = source.clone();
        let settings = settings.clone();
        // Indexing is CPU work: off the async workers, so streams keep answering meanwhile.
        let built = tokio::task::spawn_blocking(move || {
            build(source.as_ref(), &settings, number, noticed, Some(&previous))
        })
        .await;
        match built {
            Ok(generation) => {
                tracing::info!(
                    generation = number,
                    waited_ms = noticed.elapsed().as_millis() as u64,
                    "pushing a new config generation"
                );
                generations.send_replace(Arc::new(generation));
            }
            Err(error) => tracing::error!(%error, "building a generation failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Changes, Inputs};

    struct Fixed(Arc<Inputs>);
    impl Source for Fixed {
        fn inputs(&self) -> Arc<Inputs> {
            self.0.clone()
        }
    }

    fn start(debounce: Debounce) -> (Changes, watch::Receiver<Arc<Generation>>) {
        let source: Arc<dyn Source> = Arc::new(Fixed(Arc::default()));
        let settings = Settings::default();
        let first = build(source.as_ref(), &settings, 0, Instant::now(), None);
        let (sender, receiver) = watch::channel(Arc::new(first));
        let (changes, changed) = Changes::new();
        tokio::spawn(run(changed, source, settings, debounce, sender));
        (changes, receiver)
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_changes_makes_one_generation_after_the_quiet_period() {
        let quiet = Duration::from_millis(100);
        let (changes, mut generations) = start(Debounce {
            quiet,
            max: Duration::from_secs(1),
        });
        let started = tokio::time::Instant::now();
        for _ in 0..5 {
            changes.mark();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        generations.changed().await.expect("a generation");
        assert_eq!(generations.borrow_and_update().number, 1);
        // The last mark came at 200ms; the push waits 100ms of quiet after it.
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_millis(400), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_of_changes_still_pushes_at_the_cap() {
        let (changes, mut generations) = start(Debounce {
            quiet: Duration::from_millis(100),
            max: Duration::from_millis(500),
        });
        let started = tokio::time::Instant::now();
        let marker = tokio::spawn(async move {
            loop {
                changes.mark();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        generations.changed().await.expect("a generation");
        let waited = started.elapsed();
        marker.abort();
        assert!(waited >= Duration::from_millis(500), "{waited:?}");
        assert!(waited < Duration::from_millis(600), "{waited:?}");
    }
}
