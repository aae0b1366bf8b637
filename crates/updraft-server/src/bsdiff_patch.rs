//! bsdiff patches in Colin Percival's BSDIFF40 format (bzip2-compressed control, diff and extra blocks), the format
//! `expo-updates` applies with its bundled `bspatch.c` (`vendor/bspatch` in the npm package; Android
//! `BSPatch.applyPatch`, iOS `BSPatch.swift`). Blocking, single-threaded work: the background patch worker runs it
//! in `spawn_blocking`, one patch at a time, so it takes at most one core.

use std::io;

use qbsdiff::{Bsdiff, Bspatch, ParallelScheme};
use sha2::{Digest, Sha256};

/// The largest launch asset a patch is computed for: the suffix array of the base costs about 8 bytes a byte (a
/// 32 MiB bundle: about 256 MiB), so larger bundles always get the full file.
pub(crate) const MAX_PATCH_INPUT: u64 = 32 * 1024 * 1024;

/// A patch that turns `base` into `target`, checked by applying it: `Err` unless the result hashes to
/// `target_sha256` (lowercase hex), so a patch that is returned is one a device can apply.
pub(crate) fn make_verified_patch(base: &[u8], target: &[u8], target_sha256: &str) -> io::Result<Vec<u8>> {
    if hex::encode(Sha256::digest(target)) != target_sha256 {
        return Err(io::Error::other("the target bytes do not hash to the target's address"));
    }
    let mut patch = Vec::new();
    Bsdiff::new(base, target).parallel_scheme(ParallelScheme::Never).compare(io::Cursor::new(&mut patch))?;
    let applied = apply(base, &patch)?;
    if hex::encode(Sha256::digest(&applied)) != target_sha256 {
        return Err(io::Error::other("the patch does not reproduce the target"));
    }
    Ok(patch)
}

/// Applies a BSDIFF40 patch.
pub(crate) fn apply(base: &[u8], patch: &[u8]) -> io::Result<Vec<u8>> {
    let patcher = Bspatch::new(patch)?;
    let mut out = Vec::with_capacity(usize::try_from(patcher.hint_target_size()).unwrap_or(0).min(1 << 30));
    patcher.apply(base, io::Cursor::new(&mut out))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_are_bsdiff40_and_reproduce_the_target() {
        let base: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let mut target = base.clone();
        target[1000..1010].copy_from_slice(b"0123456789");
        target.extend_from_slice(b"appended");
        let sha = hex::encode(Sha256::digest(&target));
        let patch = make_verified_patch(&base, &target, &sha).unwrap();
        assert_eq!(&patch[..8], b"BSDIFF40");
        assert!(patch.len() < target.len() / 100, "{} bytes", patch.len());
        assert_eq!(apply(&base, &patch).unwrap(), target);
        assert!(make_verified_patch(&base, &target, &"0".repeat(64)).is_err());
    }
}
