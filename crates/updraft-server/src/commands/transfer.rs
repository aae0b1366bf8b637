//! `updraft export` / `updraft import`: move an installation's metadata between databases (SQLite → PostgreSQL when
//! one machine is no longer enough, or back). Objects stay where they are: point both installations at the same
//! storage, or copy it with `updraft storage migrate`.

use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use updraft_store::TableCount;

use crate::commands::open_store;
use crate::config::Settings;

pub(crate) async fn export(settings: &Settings, out: &Path) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    // Written next to the target and renamed at the end, so a failed export never leaves a plausible file.
    let partial = out.with_extension("partial");
    let file = owner_only(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut writer = BufWriter::new(file);
    let exported = store.export(&mut writer).await;
    let flushed = writer.flush();
    store.close().await;
    let dump = match (exported, flushed) {
        (Ok(dump), Ok(())) => dump,
        (Err(error), _) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error).context("exporting the metadata");
        }
        (_, Err(error)) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error).with_context(|| format!("writing {}", partial.display()));
        }
    };
    std::fs::rename(&partial, out).with_context(|| format!("renaming {} to {}", partial.display(), out.display()))?;
    print_counts(&dump.counts);
    eprintln!(
        "exported {} rows from the {} database to {} (it holds signing keys: keep it private)",
        total(&dump.counts),
        settings.database_backend().name(),
        out.display()
    );
    Ok(())
}

pub(crate) async fn import(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    let input = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let store = open_store(settings).await?;
    let imported = store.import(&mut BufReader::new(input)).await;
    store.close().await;
    let dump = imported.with_context(|| format!("importing {}", file.display()))?;
    print_counts(&dump.counts);
    eprintln!(
        "imported {} rows into the {} database; every table's count matches the file",
        total(&dump.counts),
        settings.database_backend().name()
    );
    Ok(())
}

fn print_counts(counts: &[TableCount]) {
    for count in counts {
        println!("{:<24} {:>10}", count.table, count.rows);
    }
}

fn total(counts: &[TableCount]) -> u64 {
    counts.iter().map(|c| c.rows).sum()
}

fn owner_only(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}
