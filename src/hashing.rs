//! Where password hashing runs: a few threads of its own, at a lower
//! scheduling priority than the workers, taking jobs in order.
//!
//! argon2 costs tens of milliseconds of CPU and 19 MiB of memory per
//! check. On tokio's blocking pool, fifty logins at once were fifty
//! threads hashing beside the workers: the workers got a small share of
//! the CPUs, and a chatting pair's messages waited seconds
//! (docs/accounts.md, "The cost of a password"). Here at most
//! `accounts.password_threads` hash at once (so at most that many times
//! 19 MiB), and they run at nice [`NICE`], so a worker that has something
//! to do takes the CPU from them. Logins queue instead: each waits for the
//! ones before it. The queue holds at most one job per connection (a
//! connection waits for its effect before sending another), so the
//! connection limits bound it.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

/// The threads' nice value: a worker (nice 0) weighs ten times as much as
/// a hashing thread in the kernel's fair scheduler, so it takes the CPU
/// back at once when it has work, and the hashes use what is left.
pub const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of hashing threads and their queue.
pub struct Pool {
    jobs: mpsc::Sender<Job>,
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// Starts the pool with `threads` threads (0: one per CPU but one, at least
/// one), if it is not running yet; the process keeps it until it exits.
/// The first call decides: a later one with another count changes nothing.
pub fn start(threads: usize) -> &'static Pool {
    POOL.get_or_init(|| Pool::new(threads))
}

/// The threads `threads` asks for.
pub fn thread_count(threads: usize) -> usize {
    if threads > 0 {
        return threads;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

impl Pool {
    fn new(threads: usize) -> Pool {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..thread_count(threads) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only while waiting for a job.
                        let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        };
                        // A job that panics loses its answer (its caller sees
                        // `None`), not the thread.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Pool { jobs: tx }
    }

    /// Runs `f` on a hashing thread; `None` if no thread could run it.
    /// A job whose caller has gone (its connection closed while it
    /// waited) is skipped.
    pub async fn run<T, F>(&self, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if !tx.is_closed() {
                let _ = tx.send(f());
            }
        });
        self.jobs.send(job).ok()?;
        rx.await.ok()
    }
}

/// Runs `f` on the hashing threads started by [`start`] (or, if none were,
/// on a default pool).
pub async fn run<T, F>(f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    start(0).run(f).await
}

/// Lowers the calling thread's priority to [`NICE`]. Linux keeps a nice
/// value per thread, so the workers keep theirs.
fn lower_priority() {
    // SAFETY: setpriority(2) on the calling thread's own id; no memory is
    // shared with the kernel.
    let r = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE)
    };
    if r != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "cannot lower the priority of a password hashing thread"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_count_defaults_to_one_per_cpu_but_one() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(thread_count(0), cpus.saturating_sub(1).max(1));
        assert_eq!(thread_count(1), 1);
        assert_eq!(thread_count(3), 3);
        let cfg = crate::config::Config::parse("[accounts]\npassword_threads = 2").unwrap();
        assert_eq!(cfg.accounts.password_threads, 2);
    }

    #[tokio::test]
    async fn jobs_run_in_order_on_a_lower_priority() {
        let pool = Pool::new(1);
        let nice = pool
            .run(|| {
                // SAFETY: getpriority(2) on the calling thread.
                unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
            })
            .await;
        assert_eq!(nice, Some(NICE));
        let order = Arc::new(Mutex::new(Vec::new()));
        let runs = (0..5).map(|i| {
            let order = order.clone();
            pool.run(move || order.lock().unwrap().push(i))
        });
        futures_util::future::join_all(runs).await;
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_panicking_job_keeps_its_thread() {
        let pool = Pool::new(1);
        let panicked = pool.run(|| -> u8 { panic!("a bug in a job") }).await;
        assert_eq!(panicked, None);
        assert_eq!(pool.run(|| 3).await, Some(3));
    }

    #[tokio::test]
    async fn a_job_whose_caller_left_is_skipped() {
        // 'static: the first job runs in a task of its own.
        let pool: &'static Pool = Box::leak(Box::new(Pool::new(1)));
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        // The thread waits in the first job while the second is queued.
        let first = tokio::spawn(pool.run(move || {
            let _ = started_tx.send(());
            gate_rx.recv().is_ok()
        }));
        started_rx.await.unwrap();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r2 = ran.clone();
        let second = pool.run(move || r2.store(true, std::sync::atomic::Ordering::SeqCst));
        // Queued, then dropped: its caller left.
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), second).await;
        assert!(waited.is_err(), "the thread is busy with the first job");
        gate_tx.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Some(true));
        // A third job runs after the skipped one.
        assert_eq!(pool.run(|| 7).await, Some(7));
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
