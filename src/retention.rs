//! History retention: a task that removes, every so often, the messages
//! older than `history.max_age` (`max_per_target` is kept at each append).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bavard_core::store::HistoryStore;

/// How often the retention runs: a tenth of the age kept, between a second
/// and an hour (a message outlives `max_age` by at most that).
pub fn period(max_age: Duration) -> Duration {
    (max_age / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Prunes `history` of what is older than `max_age`, at once and then every
/// [`period`], until the task is aborted.
pub async fn run(history: Arc<dyn HistoryStore>, max_age: Duration) {
    let mut every = tokio::time::interval(period(max_age));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let before = now.saturating_sub(max_age).as_millis();
        let before = u64::try_from(before).unwrap_or(u64::MAX);
        if let Err(e) = history.prune(before).get().await {
            tracing::warn!(error = %e, "history retention failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::period;
    use std::time::Duration;

    #[test]
    fn the_period_is_a_tenth_of_the_age_between_a_second_and_an_hour() {
        let s = Duration::from_secs;
        assert_eq!(period(s(30 * 86_400)), s(3600));
        assert_eq!(period(s(100)), s(10));
        assert_eq!(period(s(5)), s(1));
    }
}
