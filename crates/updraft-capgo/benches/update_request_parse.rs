//! The time to parse one update check body, the largest piece of the Capgo check's own work
//! (`cargo bench -p updraft-capgo --bench update_request_parse`; docs/benchmarks.md). A loop on one core, steadier
//! than the HTTP benchmark's CPU ratios; other work on a shared machine still slows some rounds, which the fastest
//! round of seven is least affected by (compare builds back to back).

use std::hint::black_box;
use std::time::Instant;

use updraft_capgo::updates::parse_update_request;

/// What an 8.51 Android plugin sends (the body of `bench/wrk/capgo.lua`).
const BODY: &[u8] = br#"{"platform":"android","device_id":"00000000-0000-4000-8000-000000012345","app_id":"com.bench.app0","custom_id":"","version_build":"1.0.0","version_code":"100","version_os":"14","version_name":"1.0.0","plugin_version":"8.51.14","is_emulator":false,"is_prod":true,"install_source":"google_play","defaultChannel":""}"#;

/// The same fields in another order, with a `key_id`: bodies whose fields are not in the reader's order.
const SHUFFLED: &[u8] = br#"{"key_id":"MIIBCgKCAQEAx8Q3rT2b","version_name":"1.0.0","app_id":"com.bench.app0","is_prod":true,"device_id":"00000000-0000-4000-8000-000000012345","defaultChannel":"","platform":"android","version_os":"14","custom_id":"","plugin_version":"8.51.14","version_code":"100","is_emulator":false,"version_build":"1.0.0","install_source":"google_play"}"#;

fn main() {
    let now = chrono::Utc::now();
    for (name, body) in [("plugin order", BODY), ("shuffled", SHUFFLED)] {
        let mut rounds: Vec<f64> = (0..7)
            .map(|_| {
                const N: u32 = 500_000;
                let started = Instant::now();
                for _ in 0..N {
                    let parsed = parse_update_request(black_box(body), now).expect("the bench body parses");
                    black_box(parsed);
                }
                started.elapsed().as_nanos() as f64 / f64::from(N)
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        let (fastest, median) = (rounds[0], rounds[3]);
        println!(
            "parse_update_request, {name}: {fastest:.0} ns per body in the fastest of 7 rounds of 500 000, median {median:.0} ns"
        );
    }
}
