//! A deadline on blocking Kafka calls that may not honour their own timeout.
//!
//! Every transactional call takes a timeout, but librdkafka does not always keep it:
//! `rd_kafka_send_offsets_to_transaction` can block for ever when the group coordinator goes
//! away during the call (librdkafka issues #5456 and #5511, open in 2.12), which is what a
//! broker restart does. The engine's thread is then stuck inside librdkafka: it polls nothing,
//! logs nothing and never exits, and its partitions stay assigned to a member that counts
//! nothing.
//!
//! So the engine arms this watchdog around each such call with a limit a little above the
//! call's own timeout, and a separate thread checks the deadline. When it passes, the watchdog
//! says which call hung and the process exits non-zero, the same failure policy as any other
//! transaction error: the open transaction was never committed, a supervisor starts the
//! instance again, and it restores the committed state (its `init_transactions` with the same
//! `transactional.id` aborts what the hung instance left open).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the watchdog thread looks at the deadline.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// A call that ran past its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdue {
    /// What was called, e.g. `"send offsets to transaction"`.
    pub what: &'static str,
    /// The limit it was armed with.
    pub limit: Duration,
    /// How long it had been running when found overdue.
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Armed {
    what: &'static str,
    started: Instant,
    limit: Duration,
}

/// The deadline of the call in progress, if any. Cheap to arm: one uncontended lock.
#[derive(Debug, Default)]
pub struct Watchdog {
    armed: Mutex<Option<Armed>>,
}

/// Disarms (restores the previous deadline, for nested calls) when dropped.
#[must_use = "the watchdog is disarmed when this guard is dropped"]
#[derive(Debug)]
pub struct Guard<'a> {
    watchdog: &'a Watchdog,
    previous: Option<Armed>,
}

impl Watchdog {
    /// Arms the watchdog for a call named `what` that must return within `limit`.
    pub fn arm(&self, what: &'static str, limit: Duration) -> Guard<'_> {
        self.arm_at(what, limit, Instant::now())
    }

    fn arm_at(&self, what: &'static str, limit: Duration, now: Instant) -> Guard<'_> {
        let armed = Armed {
            what,
            started: now,
            limit,
        };
        let previous = self.slot().replace(armed);
        Guard {
            watchdog: self,
            previous,
        }
    }

    /// The call in progress if it has run past its limit at `now`.
    pub fn overdue(&self, now: Instant) -> Option<Overdue> {
        let armed = (*self.slot())?;
        let elapsed = now.saturating_duration_since(armed.started);
        (elapsed > armed.limit).then_some(Overdue {
            what: armed.what,
            limit: armed.limit,
            elapsed,
        })
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Armed>> {
        // The slot holds plain data; a panic while holding it cannot leave it inconsistent.
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the thread that calls `on_overdue` (once) when an armed call runs past its limit.
    /// The thread stops when the returned handle is dropped.
    pub fn watch(
        self: &Arc<Self>,
        on_overdue: impl FnOnce(Overdue) + Send + 'static,
    ) -> std::io::Result<Watching> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new().name("watchdog".into()).spawn({
            let (watchdog, stop) = (Arc::clone(self), Arc::clone(&stop));
            move || {
                while !stop.load(Ordering::Acquire) {
                    if let Some(overdue) = watchdog.overdue(Instant::now()) {
                        on_overdue(overdue);
                        return;
                    }
                    std::thread::park_timeout(CHECK_EVERY);
                }
            }
        })?;
        Ok(Watching {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        *self.watchdog.slot() = self.previous.take();
    }
}

/// The running watchdog thread; stopped and joined on drop.
#[derive(Debug)]
pub struct Watching {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// What the service does with an overdue call: say so, then exit 1 so that a supervisor
/// restarts the instance from its committed state. Nothing else can unstick the thread.
pub fn exit_on_overdue(overdue: Overdue) {
    tracing::error!(
        call = overdue.what,
        limit_ms = overdue.limit.as_millis() as u64,
        elapsed_ms = overdue.elapsed.as_millis() as u64,
        "a Kafka call did not return within its limit (librdkafka ignores the timeout in some coordinator failures); exiting so that a restart resumes from the committed state"
    );
    tracing::error!(
        "hashtag-aggregator stopped: hung Kafka call: {}",
        overdue.what
    );
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn nothing_is_overdue_when_nothing_is_armed() {
        let watchdog = Watchdog::default();
        assert_eq!(watchdog.overdue(Instant::now() + 1000 * SECOND), None);
    }

    #[test]
    fn an_armed_call_is_overdue_only_past_its_limit() {
        let watchdog = Watchdog::default();
        let t0 = Instant::now();
        let _guard = watchdog.arm_at("commit transaction", 60 * SECOND, t0);
        assert_eq!(watchdog.overdue(t0 + 60 * SECOND), None);
        assert_eq!(
            watchdog.overdue(t0 + 61 * SECOND),
            Some(Overdue {
                what: "commit transaction",
                limit: 60 * SECOND,
                elapsed: 61 * SECOND
            })
        );
    }

    #[test]
    fn dropping_the_guard_disarms_and_restores_an_outer_deadline() {
        let watchdog = Watchdog::default();
        let t0 = Instant::now();
        let outer = watchdog.arm_at("outer", 100 * SECOND, t0);
        {
            let _inner = watchdog.arm_at("inner", SECOND, t0);
            assert_eq!(
                watchdog.overdue(t0 + 2 * SECOND).map(|o| o.what),
                Some("inner")
            );
        }
        assert_eq!(watchdog.overdue(t0 + 2 * SECOND), None);
        assert_eq!(
            watchdog.overdue(t0 + 101 * SECOND).map(|o| o.what),
            Some("outer")
        );
        drop(outer);
        assert_eq!(watchdog.overdue(t0 + 1000 * SECOND), None);
    }

    #[test]
    fn the_thread_reports_a_call_that_hangs() {
        let watchdog = Arc::new(Watchdog::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let _watching = watchdog
            .watch(move |overdue| tx.send(overdue).expect("send"))
            .expect("spawn");
        let _guard = watchdog.arm("send offsets to transaction", Duration::from_millis(20));
        // The "hung call": nothing returns; the watchdog must notice on its own.
        let overdue = rx.recv_timeout(30 * SECOND).expect("reported");
        assert_eq!(overdue.what, "send offsets to transaction");
        assert!(overdue.elapsed > overdue.limit);
    }
}
