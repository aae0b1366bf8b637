//! What the background worker spends on one bsdiff patch (the same calls as `src/bsdiff_patch.rs`: diff on one
//! thread, then apply to verify), and how the patch compares with the full file. Run under `/usr/bin/time -v` for
//! peak memory: `cargo run --release --example patch_cost -- BASE TARGET` (`bench/patch_sizes.sh` does, and
//! compares with the brotli-11 size from Node's zlib).

use std::io::Cursor;
use std::time::Instant;

use qbsdiff::{Bsdiff, Bspatch, ParallelScheme};
use sha2::{Digest, Sha256};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, target] = args.as_slice() else {
        eprintln!("usage: patch_cost BASE TARGET");
        std::process::exit(2);
    };
    let base = std::fs::read(base).expect("reading BASE");
    let target = std::fs::read(target).expect("reading TARGET");
    let started = Instant::now();
    let mut patch = Vec::new();
    Bsdiff::new(&base, &target).parallel_scheme(ParallelScheme::Never).compare(Cursor::new(&mut patch)).expect("diff");
    let diff_ms = started.elapsed().as_millis();
    let started = Instant::now();
    let mut applied = Vec::new();
    Bspatch::new(&patch).expect("patch header").apply(&base, Cursor::new(&mut applied)).expect("apply");
    assert_eq!(Sha256::digest(&applied), Sha256::digest(&target), "the patch reproduces the target");
    let apply_ms = started.elapsed().as_millis();
    println!(
        "base {} B, target {} B, patch {} B ({:.1} % of identity); diff {diff_ms} ms, verify {apply_ms} ms",
        base.len(),
        target.len(),
        patch.len(),
        100.0 * patch.len() as f64 / target.len() as f64,
    );
}
