//! `updraft serve` runs its background work (the device writer, catalog reloads, the release-health decider, bsdiff
//! patches, ageing, the change feed) at a lower CPU priority than the HTTP workers that answer devices, so that on a
//! saturated machine a writer's batch or a reload waits for the workers instead of the workers waiting for it: a
//! check's tail latency then does not carry the background's bursts.
//!
//! On Linux the nice value belongs to a thread and a thread inherits its creator's, so the threads the background
//! runtime starts (SQLite's worker thread for the device writer's connection, which the writer opens) run niced too.
//! The HTTP workers are started by the main thread, which keeps the priority the process was started with.
//! Elsewhere (where the value belongs to the whole process) nothing changes.

/// How much nicer than the HTTP workers the background threads are (nice values run from -20 to 19; under
/// contention each step divides a thread's CPU share by about 1.25, so 10 steps leave it about a tenth of a worker's).
pub(crate) const BACKGROUND_NICENESS: i32 = 10;

/// The name of the background runtime's threads (`top -H` and `/proc/<pid>/task/*/comm` show it).
pub(crate) const THREAD_NAME: &str = "background";

/// The highest (nicest) nice value.
const NICEST: i32 = 19;

/// Lowers the calling thread's priority by [`BACKGROUND_NICENESS`], from whatever it is (at most to 19). Raising a
/// nice value needs no privilege; a failure leaves the thread as it was, which only costs tail latency.
pub(crate) fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        // `None` names the calling thread on Linux.
        let lowered = getpriority_process(None)
            .and_then(|current| setpriority_process(None, current.saturating_add(BACKGROUND_NICENESS).min(NICEST)));
        if let Err(error) = lowered {
            tracing::debug!(%error, "could not lower a background thread's priority");
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn own_niceness() -> i32 {
        rustix::process::getpriority_process(None).unwrap()
    }

    #[test]
    fn only_the_lowered_thread_and_the_threads_it_starts_are_nicer() {
        let before = own_niceness();
        let (lowered, inherited) = std::thread::spawn(|| {
            lower_this_thread();
            let inherited = std::thread::spawn(own_niceness).join().unwrap();
            (own_niceness(), inherited)
        })
        .join()
        .unwrap();
        assert_eq!(lowered, (before + BACKGROUND_NICENESS).min(NICEST));
        assert_eq!(inherited, lowered, "a thread started by a background thread inherits its priority");
        assert_eq!(own_niceness(), before, "the caller's own thread keeps its priority");
    }
}
