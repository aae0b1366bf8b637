//! The coalescing map of the write-behind queue: per key (an app's device), the newest report waits in memory until
//! the writer takes it. Memory grows with the number of distinct keys waiting, not with the request rate, and an
//! update check never waits for anything but one short lock.
//!
//! Offering a report hashes its key and content and locks one of [`SHARDS`] shards for a few map operations. A
//! report whose content equals the one last accepted for its key, less than [`UNCHANGED_REWRITE`] ago, changes
//! nothing and is dropped (devices check in on every launch with the same facts); any other report becomes pending,
//! replacing the older pending report of its key if there is one. The writer takes a shard's whole pending list in
//! one swap, so it holds a shard's lock for O(1), whatever the number of reports.
//!
//! Bounds, and what happens past them (never a blocked request, never an uncounted loss):
//! - At most `capacity` keys are pending or being written. A report of a key that is not pending, offered while the
//!   map is full, is **shed**: counted (`/metrics`, `updraft_coalesced_reports_total{outcome="shed"}`), and its key is
//!   not remembered, so the device's next check-in is offered again and is kept once the writer has caught up. A
//!   report of a key that is already pending always replaces it (no growth).
//! - Fingerprints (to skip unchanged reports) are remembered for at most `max(capacity, REMEMBERED)` keys; past that
//!   a shard forgets the keys that are not pending, which costs rewrites, never reports.
//!
//! What a report is and how it is written is the caller's business ([`Coalesced`]): the write-behind queue keeps one
//! entry per (app, device) holding the device's report and its release-health signals
//! ([`crate::write_behind::CheckReport`]), so a check costs one hash, one lock and one fingerprint, whatever it
//! reports. A report that replaces a pending one may keep part of it ([`Coalesced::absorb`]: the signals the newer
//! check does not repeat), so replacing never loses a signal, and the entry stays bounded by what distinct things
//! the device said, not by how often it said them.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Shards of the map: enough that the request workers rarely want the same lock at once.
pub(crate) const SHARDS: usize = 64;

/// A report whose content has not changed is accepted again (to refresh the time it was last seen) at most this
/// often, which keeps the database's write load proportional to change, not to traffic
/// ([`updraft_core::LAST_SEEN_RESOLUTION`]).
pub(crate) const UNCHANGED_REWRITE: Duration = updraft_core::LAST_SEEN_RESOLUTION;

/// Keys whose last fingerprint is remembered (about 30 bytes each), unless `capacity` is larger.
const REMEMBERED: usize = 4_000_000;

/// A report that can wait in the map.
pub(crate) trait Coalesced: Send + 'static {
    /// What the report is about: reports with equal keys replace each other.
    fn key(&self) -> &[u8];
    /// What it says, without the time: a report with the same content as the last one accepted for its key is
    /// not written again (until [`UNCHANGED_REWRITE`] has passed).
    fn content(&self) -> &[u8];
    /// The hash of [`Self::content`] the map compares (a report whose content is in several slices combines them
    /// with [`fingerprint`]).
    fn fingerprint(&self) -> u64 {
        fingerprint(self.content())
    }
    /// Called when this report replaces the older pending report of its key: keeps what of the older one must not
    /// be lost (by default nothing: the newest report says everything).
    fn absorb(&mut self, older: Self)
    where
        Self: Sized,
    {
        let _ = older;
    }
}

/// What became of an offered report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered {
    /// Waiting to be written.
    Queued,
    /// Replaced its key's older pending report.
    Replaced,
    /// Same as the last report accepted for its key: nothing to write.
    Unchanged,
    /// The map was full: not kept (counted).
    Shed,
}

/// What happened to reports, by outcome (for `/metrics`). In a shard only the first four are counted (under its
/// lock, so a request touches no shared counter); the writer's two are atomics of the map.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) queued: u64,
    pub(crate) replaced: u64,
    pub(crate) unchanged: u64,
    pub(crate) shed: u64,
    pub(crate) written: u64,
    pub(crate) dropped: u64,
}

impl Counts {
    /// Reports that were acknowledged (or offered) and never reach the database.
    pub(crate) fn lost(&self) -> u64 {
        self.shed + self.dropped
    }
}

/// The map. `S` is the report type.
pub(crate) struct Coalescer<S> {
    shards: Box<[Padded<Mutex<Shard<S>>>]>,
    hasher: RandomState,
    capacity: usize,
    remembered_per_shard: usize,
    /// Keys pending or being written, across shards.
    pending: AtomicUsize,
    written: AtomicU64,
    dropped: AtomicU64,
    started: Instant,
}

/// What [`Coalescer::take`] took: each shard's pending list as it was, not copied into one list (after a burst of
/// new devices that would be a second copy of hundreds of thousands of entries). Consumed in order, each shard's
/// list is freed once it has been read.
pub(crate) struct Taken<S>(Vec<Vec<(u64, S)>>);

#[cfg(test)]
impl<S> Taken<S> {
    /// Reports taken.
    pub(crate) fn len(&self) -> usize {
        self.0.iter().map(Vec::len).sum()
    }

    /// The taken reports with their keys.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(u64, S)> {
        self.0.iter().flatten()
    }
}

impl<S> IntoIterator for Taken<S> {
    type Item = (u64, S);
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Vec<(u64, S)>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().flatten()
    }
}

/// Keeps two shards' locks out of one cache line, so two cores locking different shards do not slow each other.
#[repr(align(128))]
struct Padded<T>(T);

struct Shard<S> {
    known: HashMap<u64, Known, BuildHasherDefault<KeyHash>>,
    pending: Vec<(u64, S)>,
    /// Bumped each time the writer takes `pending`: a `Known` slot of an older generation is not pending.
    generation: u32,
    counts: Counts,
}

/// What the map remembers of a key: 16 bytes, so a map entry (with its key) is 24, which matters at a million
/// devices (the map keeps twice as many slots as keys at worst).
#[derive(Clone, Copy)]
struct Known {
    /// The content's fingerprint folded to 32 bits ([`fold`]): two different reports of one device look alike
    /// with a chance of one in four billion, and then the newer is skipped for at most [`UNCHANGED_REWRITE`].
    fingerprint: u32,
    /// Seconds since the map was made.
    accepted_at: u32,
    generation: u32,
    /// Index in `pending`, valid when `generation` is the shard's.
    slot: u32,
}

/// The keys of the shard maps are already hashes.
#[derive(Default)]
struct KeyHash(u64);

impl Hasher for KeyHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl<S: Coalesced> Coalescer<S> {
    /// A map holding at most `capacity` pending keys.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let shards = (0..SHARDS)
            .map(|_| {
                Padded(Mutex::new(Shard {
                    known: HashMap::default(),
                    pending: Vec::new(),
                    generation: 0,
                    counts: Counts::default(),
                }))
            })
            .collect();
        Self {
            shards,
            hasher: RandomState::new(),
            capacity,
            remembered_per_shard: capacity.max(REMEMBERED).div_ceil(SHARDS),
            pending: AtomicUsize::new(0),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Offers a report; never waits for anything but one shard's lock, held for a few map operations.
    pub(crate) fn offer(&self, report: S) -> Offered {
        let key = self.hasher.hash_one(report.key());
        let fingerprint = fold(report.fingerprint());
        let now = u32::try_from(self.started.elapsed().as_secs()).unwrap_or(u32::MAX);
        let mut guard = self.shard(key);
        let shard = &mut *guard;
        let generation = shard.generation;
        let fresh = |known: &Known| {
            known.fingerprint == fingerprint
                && u64::from(now.saturating_sub(known.accepted_at)) < UNCHANGED_REWRITE.as_secs()
        };
        if let Some(known) = shard.known.get_mut(&key) {
            if fresh(known) {
                shard.counts.unchanged += 1;
                return Offered::Unchanged;
            }
            let slot = known.slot as usize;
            // (The key check also covers a generation counter that wrapped around, after 2^32 takes.)
            if known.generation == generation && shard.pending.get(slot).is_some_and(|(k, _)| *k == key) {
                known.fingerprint = fingerprint;
                known.accepted_at = now;
                let older = std::mem::replace(&mut shard.pending[slot].1, report);
                shard.pending[slot].1.absorb(older);
                shard.counts.replaced += 1;
                return Offered::Replaced;
            }
        }
        if self.pending.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            shard.counts.shed += 1;
            return Offered::Shed;
        }
        if shard.known.len() >= self.remembered_per_shard && !shard.known.contains_key(&key) {
            shard.known.retain(|_, known| known.generation == generation);
        }
        let slot = u32::try_from(shard.pending.len()).unwrap_or(u32::MAX);
        shard.known.insert(key, Known { fingerprint, accepted_at: now, generation, slot });
        shard.pending.push((key, report));
        shard.counts.queued += 1;
        Offered::Queued
    }

    /// Takes every pending report (each key once, its newest report), shard by shard. They count against the
    /// capacity until [`Self::written`] or [`Self::dropped`] says what became of them.
    pub(crate) fn take(&self) -> Taken<S> {
        let mut taken = Vec::new();
        for index in 0..SHARDS {
            let mut shard = lock(&self.shards[index].0);
            if shard.pending.is_empty() {
                continue;
            }
            shard.generation = shard.generation.wrapping_add(1);
            let pending = std::mem::take(&mut shard.pending);
            drop(shard);
            taken.push(pending);
        }
        Taken(taken)
    }

    /// Taken reports that are now in the database.
    pub(crate) fn written(&self, n: usize) {
        self.pending.fetch_sub(n, Ordering::Relaxed);
        self.written.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Taken reports the database refused for good: counted as lost, and their keys forgotten (unless a newer
    /// report is pending), so the devices' next reports are written even if they are unchanged.
    pub(crate) fn dropped(&self, keys: impl IntoIterator<Item = u64>) {
        let mut n = 0;
        for key in keys {
            n += 1;
            let mut shard = self.shard(key);
            let generation = shard.generation;
            if shard.known.get(&key).is_some_and(|known| known.generation != generation) {
                shard.known.remove(&key);
            }
        }
        self.pending.fetch_sub(n, Ordering::Relaxed);
        self.dropped.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Keys pending or being written.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Keys pending and not yet taken by the writer (tests wait on it to know the writer holds what it took).
    #[cfg(test)]
    pub(crate) fn untaken(&self) -> usize {
        self.shards.iter().map(|shard| lock(&shard.0).pending.len()).sum()
    }

    /// Keys whose last fingerprint is remembered.
    pub(crate) fn remembered(&self) -> usize {
        self.shards.iter().map(|shard| lock(&shard.0).known.len()).sum()
    }

    /// What happened to reports so far.
    pub(crate) fn counts(&self) -> Counts {
        let mut total = Counts {
            written: self.written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            ..Counts::default()
        };
        for shard in &self.shards {
            let counts = lock(&shard.0).counts;
            total.queued += counts.queued;
            total.replaced += counts.replaced;
            total.unchanged += counts.unchanged;
            total.shed += counts.shed;
        }
        total
    }

    fn shard(&self, key: u64) -> MutexGuard<'_, Shard<S>> {
        // Bits 32..38 pick the shard; the shard's map uses the low bits (bucket) and the top 7 (tag), so keys of
        // one shard still spread over its whole table.
        lock(&self.shards[(key >> 32) as usize % SHARDS].0)
    }
}

/// A report's content, hashed eight bytes at a time (MurmurHash64A's mixing: a SipHash of the same bytes cost more
/// than the rest of the offer). It is not keyed: a crafted collision can only make a changed report of the
/// sender's own device look unchanged, for at most [`UNCHANGED_REWRITE`]. Keys use the keyed SipHash, since
/// whoever sends device ids could otherwise pick ids that collide in the map.
pub(crate) fn fingerprint(content: &[u8]) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    let mut hash = 0x8445_d61a_4e77_4912 ^ (content.len() as u64).wrapping_mul(M);
    let mut chunks = content.chunks_exact(8);
    let mut mix = |word: u64| {
        let mut k = word.wrapping_mul(M);
        k ^= k >> 47;
        hash = (hash ^ k.wrapping_mul(M)).wrapping_mul(M);
    };
    for chunk in chunks.by_ref() {
        mix(u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    mix(u64::from_le_bytes(last));
    hash ^= hash >> 47;
    hash = hash.wrapping_mul(M);
    hash ^ (hash >> 47)
}

/// A 64-bit fingerprint in the 32 bits [`Known`] keeps.
fn fold(fingerprint: u64) -> u32 {
    (fingerprint ^ (fingerprint >> 32)) as u32
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report of `device` saying `says`.
    #[derive(Debug, Clone, PartialEq)]
    struct Report {
        device: String,
        says: String,
        n: u32,
    }

    impl Coalesced for Report {
        fn key(&self) -> &[u8] {
            self.device.as_bytes()
        }

        fn content(&self) -> &[u8] {
            self.says.as_bytes()
        }
    }

    #[test]
    fn a_remembered_key_costs_24_bytes_of_map_slot() {
        assert_eq!(std::mem::size_of::<(u64, Known)>(), 24);
    }

    fn report(device: impl Into<String>, says: &str, n: u32) -> Report {
        Report { device: device.into(), says: says.into(), n }
    }

    fn take_reports(map: &Coalescer<Report>) -> Vec<Report> {
        let taken = map.take();
        map.written(taken.len());
        let mut reports: Vec<Report> = taken.into_iter().map(|(_, r)| r).collect();
        reports.sort_by(|a, b| a.device.cmp(&b.device));
        reports
    }

    #[test]
    fn a_device_that_reports_many_times_waits_once_with_its_newest_report() {
        let map = Coalescer::new(100);
        for n in 0..1000 {
            map.offer(report("a", &format!("version {n}"), n));
            map.offer(report("b", "same", n));
        }
        assert_eq!(map.pending(), 2);
        assert_eq!(take_reports(&map), vec![report("a", "version 999", 999), report("b", "same", 0)]);
        let counts = map.counts();
        assert_eq!((counts.queued, counts.replaced, counts.unchanged, counts.written), (2, 999, 999, 2));
        assert_eq!(map.pending(), 0);
    }

    #[test]
    fn an_unchanged_report_is_not_written_again_but_a_changed_one_is() {
        let map = Coalescer::new(100);
        assert_eq!(map.offer(report("a", "1.0.0", 0)), Offered::Queued);
        take_reports(&map);
        assert_eq!(map.offer(report("a", "1.0.0", 1)), Offered::Unchanged);
        assert_eq!(map.offer(report("a", "1.0.1", 2)), Offered::Queued);
        assert_eq!(take_reports(&map), vec![report("a", "1.0.1", 2)]);
        assert!(take_reports(&map).is_empty());
    }

    #[test]
    fn the_map_is_bounded_by_distinct_devices_and_by_its_capacity() {
        let map = Coalescer::new(1000);
        for round in 0..50 {
            for device in 0..300 {
                map.offer(report(format!("d{device}"), &format!("r{round}"), round));
            }
        }
        assert_eq!(map.pending(), 300, "one entry per distinct device, whatever the number of reports");
        assert_eq!(map.remembered(), 300);
        for device in 300..2000 {
            map.offer(report(format!("d{device}"), "x", 0));
        }
        assert_eq!(map.pending(), 1000, "never more than the capacity");
        let counts = map.counts();
        assert_eq!(counts.shed, 1000, "every report past the capacity is counted");
        // A device already pending still gets its newest report in, even when the map is full.
        assert_eq!(map.offer(report("d0", "newest", 99)), Offered::Replaced);
        // Reports being written still count: the map does not grow while the database is slow.
        let taken = map.take();
        assert_eq!(map.offer(report("d5000", "x", 0)), Offered::Shed);
        map.written(taken.len());
        // A shed device is not remembered: its next report is kept once there is room.
        assert_eq!(map.offer(report("d1999", "x", 0)), Offered::Queued);
    }

    #[test]
    fn dropped_reports_are_counted_and_their_devices_written_again() {
        let map = Coalescer::new(10);
        map.offer(report("a", "1.0.0", 0));
        map.offer(report("b", "1.0.0", 0));
        let taken = map.take();
        map.offer(report("b", "1.0.1", 1));
        map.dropped(taken.iter().map(|(key, _)| *key));
        assert_eq!(map.counts().dropped, 2);
        assert_eq!(map.counts().lost(), 2);
        // "a" was forgotten, so the same report is written again; "b" keeps its newer pending report.
        assert_eq!(map.offer(report("a", "1.0.0", 2)), Offered::Queued);
        assert_eq!(take_reports(&map), vec![report("a", "1.0.0", 2), report("b", "1.0.1", 1)]);
    }

    #[test]
    fn a_content_that_differs_anywhere_has_another_fingerprint() {
        let base: Vec<u8> = (0..77u8).collect();
        let mut seen = std::collections::HashSet::new();
        assert!(seen.insert(fingerprint(&base)));
        for at in 0..base.len() {
            for bit in 0..8 {
                let mut changed = base.clone();
                changed[at] ^= 1 << bit;
                assert!(seen.insert(fingerprint(&changed)), "byte {at} bit {bit}");
            }
        }
        for len in 0..base.len() {
            assert!(seen.insert(fingerprint(&base[..len])), "prefix of {len} bytes");
        }
        assert_ne!(fingerprint(b"ab"), fingerprint(b"ab\0"));
    }

    #[test]
    fn concurrent_offers_keep_each_devices_newest_report() {
        let map = std::sync::Arc::new(Coalescer::new(100_000));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let map = map.clone();
                std::thread::spawn(move || {
                    for n in 0..5000u32 {
                        let device = format!("t{t}-d{}", n % 500);
                        map.offer(report(device, &n.to_string(), n));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let reports = take_reports(&map);
        assert_eq!(reports.len(), 2000);
        assert!(reports.iter().all(|r| r.n >= 4500), "each device's last report wins");
    }
}
