//! `StoreCalls`: how many reads and writes a [`super::SqlStore`] has served, in total and by method.
//!
//! `/metrics` exports the totals (`updraft_store_reads_total`, `updraft_store_writes_total`), which makes "an update
//! check does no database round-trip" observable: checks must leave the read count unchanged. The store story reads
//! the per-method tallies to prove it called every trait method on each database.
//!
//! The counts live in the store rather than in a wrapper that re-declares the trait, so a new method cannot be
//! forgotten by a twin: `metadata_store.rs` names each method's kind in the line that dispatches it. What is a read
//! and what is a write is decided there; this module only keeps the numbers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Call counts of a store, shared by all its clones.
#[derive(Debug, Default)]
pub struct StoreCalls {
    reads: AtomicU64,
    writes: AtomicU64,
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
}
