//! `StoreCalls`: how many reads and writes a [`super::SqlStore`] has served, in total and by method.
//!
//! `/metrics` exports the totals (`updraft_store_reads_total`, `updraft_store_writes_total`), which makes "an update
//! check does no database round-trip" observable: checks must leave the read count unchanged. The store story reads
//! the per-method tallies to prove it called every trait method on each database.
//!
//! Calls made while answering an update check (inside [`answering_a_check`]) are also counted apart
//! (`updraft_store_calls_during_checks_total`): a check answers from memory, so that count stays 0 whatever the
//! background tasks (writer, health decider, patch worker, ageing) read and write meanwhile.
//!
//! The counts live in the store rather than in a wrapper that re-declares the trait, so a new method cannot be
//! forgotten by a twin: `metadata_store.rs` names each method's kind in the line that dispatches it. What is a read
//! and what is a write is decided there; this module only keeps the numbers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

tokio::task_local! {
    static ANSWERING_A_CHECK: ();
}

/// Runs `answer` (the answer to one update check) so that store calls it makes count in
/// [`StoreCalls::during_checks`]. Only calls made on `answer`'s own task: a task it spawned is not in the scope.
pub async fn answering_a_check<F: std::future::Future>(answer: F) -> F::Output {
    ANSWERING_A_CHECK.scope((), answer).await
}

/// Call counts of a store, shared by all its clones.
#[derive(Debug, Default)]
pub struct StoreCalls {
    reads: AtomicU64,
    writes: AtomicU64,
    /// Reads and writes made inside [`answering_a_check`].
    during_checks: AtomicU64,
    /// Cold-path only (update checks never reach the store), so one lock per call costs nothing that matters next
    /// to the database round-trip it counts.
    by_method: Mutex<BTreeMap<&'static str, u64>>,
}

/// Whether a store method only reads or may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    Read,
    Write,
}

impl StoreCalls {
    /// Calls that read.
    #[must_use]
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Calls that write.
    #[must_use]
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Calls (reads and writes) made while answering an update check.
    #[must_use]
    pub fn during_checks(&self) -> u64 {
        self.during_checks.load(Ordering::Relaxed)
    }

    /// How many times each `MetadataStore` method was called, by method name (methods never called are absent).
    #[must_use]
    pub fn by_method(&self) -> BTreeMap<&'static str, u64> {
        self.by_method.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Counts one call of `method`.
    pub(crate) fn count(&self, kind: CallKind, method: &'static str) {
        let total = match kind {
            CallKind::Read => &self.reads,
            CallKind::Write => &self.writes,
        };
        total.fetch_add(1, Ordering::Relaxed);
        if ANSWERING_A_CHECK.try_with(|_| ()).is_ok() {
            self.during_checks.fetch_add(1, Ordering::Relaxed);
        }
        *self.by_method.lock().unwrap_or_else(PoisonError::into_inner).entry(method).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_are_counted_apart_and_by_method() {
        let calls = StoreCalls::default();
        calls.count(CallKind::Read, "load_catalog");
        calls.count(CallKind::Read, "load_catalog");
        calls.count(CallKind::Write, "create_app");
        assert_eq!((calls.reads(), calls.writes()), (2, 1));
        assert_eq!(calls.by_method(), BTreeMap::from([("create_app", 1), ("load_catalog", 2)]));
    }

    #[tokio::test]
    async fn calls_made_while_answering_a_check_are_counted_apart() {
        let calls = StoreCalls::default();
        calls.count(CallKind::Read, "before");
        answering_a_check(async {
            calls.count(CallKind::Read, "inside");
            calls.count(CallKind::Write, "inside");
        })
        .await;
        calls.count(CallKind::Write, "after");
        assert_eq!((calls.reads(), calls.writes(), calls.during_checks()), (2, 2, 2));
        assert_eq!(calls.by_method()["inside"], 2);
    }
}
