//! `updraft`: the gateway server and the operator's command line, one binary.
//!
//! `main` parses the command line, sets up logging, runs the command, and turns any failure into one readable
//! `error: …` line with exit code 1.

/// The allocator: mimalloc rather than the C library's. An update check allocates a few small buffers (the parsed
/// ids, the packed report and its signals) that the background writer frees on another thread, and the writer
/// allocates and frees a batch's rows; with glibc's malloc that was about 5 % of the process's samples under load
/// (`_int_malloc`, `_int_free`, `malloc_consolidate`; docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod api_error;
mod api_keys;
mod auth;
mod background_priority;
mod bsdiff_patch;
mod bundle_ingest;
mod capgo_answers;
mod change_feed;
mod cli;
mod coalesce;
mod commands;
mod config;
mod console_sessions;
mod contract;
mod expo_cache;
mod metrics;
mod object_cache;
mod ops;
mod precompress;
mod release_health;
mod release_index;
mod routes;
mod state;
mod storage;
mod storage_layout;
mod telemetry;
mod upload;
mod webhooks;
mod write_behind;

// Bounds against hostile input and faults (issue #17).
mod limits;
mod rate_limit;
// Rows devices create, aged out and capped.
mod device_ageing;
#[cfg(test)]
mod test_store;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    telemetry::init_tracing();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if matches!(cli.command, cli::Command::Serve) {
        // The runtime's threads do the server's background work; the HTTP workers are started by this thread.
        runtime.thread_name(background_priority::THREAD_NAME).on_thread_start(background_priority::lower_this_thread);
    }
    let runtime = match runtime.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
