//! Capacitor bundle zips: checking an uploaded zip against the layout the plugin can unpack, and zipping a web
//! build folder the way `@capgo/cli bundle zip` does (the folder's contents at the zip root).
//!
//! The layout rules themselves are `updraft_core::check_bundle_entries`; this module reads and writes zip files.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use updraft_core::{BundleLayout, BundleLayoutError, check_bundle_entries};
use zip::write::SimpleFileOptions;

use crate::zip_entries::{RawZipError, read_raw_entries};

/// Why an upload is not a usable bundle zip.
#[derive(Debug, thiserror::Error)]
pub enum BundleZipError {
    /// Not a zip archive at all.
    #[error("the file is not a zip archive ({0}); upload the zip made by `npx @capgo/cli bundle zip`")]
    NotAZip(String),
    /// A zip, but not a bundle layout the plugin can use.
    #[error(transparent)]
    Layout(#[from] BundleLayoutError),
    /// An entry's names (central directory, local header, Unicode Path fields) differ, so two readers would unpack
    /// it to different paths.
    #[error(
        "zip entry {0:?} has different names in its central directory, local header or Unicode Path field; re-create the zip with `npx @capgo/cli bundle zip`"
    )]
    NamesDisagree(String),
    /// A symlink, device, FIFO or socket entry.
    #[error("zip entry {0:?} is not a regular file or folder (a symlink or device); bundles hold plain files only")]
    NotAPlainFile(String),
    /// More entries than a bundle may hold.
    #[error("the zip has {count} entries, more than the {max} a bundle may hold")]
    TooManyEntries {
        /// Entries in the zip.
        count: u64,
        /// The cap.
        max: u64,
    },
    /// The entries declare more uncompressed bytes than the upload limit.
    #[error(
        "the zip declares {declared} uncompressed bytes, more than the {max}-byte limit (UPDRAFT_MAX_UPLOAD_BYTES); upload a smaller bundle"
    )]
    TooLarge {
        /// Declared uncompressed total.
        declared: u64,
        /// The cap.
        max: u64,
    },
}

/// The most entries a bundle zip may have; a larger count is almost certainly not a web build.
pub const MAX_ENTRIES: u64 = 100_000;

/// Reads a zip's central directory and local headers and checks every entry: each name a reader could use (they
/// must agree, and pass the layout rules), its type (plain files and folders only), the entry count, and the
/// declared uncompressed total, at most `max_unpacked_bytes`. Nothing is decompressed.
///
/// # Errors
/// [`BundleZipError`] saying what to fix.
pub fn inspect_bundle_zip(
    mut reader: impl Read + Seek,
    max_unpacked_bytes: u64,
) -> Result<BundleLayout, BundleZipError> {
    let entries = read_raw_entries(&mut reader, MAX_ENTRIES).map_err(|error| match error {
        RawZipError::TooManyEntries { count, max } => BundleZipError::TooManyEntries { count, max },
        other => BundleZipError::NotAZip(other.to_string()),
    })?;
    // The reader the gateway unpacks with must see the same entries.
    let archive = zip::ZipArchive::new(reader).map_err(|e| BundleZipError::NotAZip(e.to_string()))?;
    if archive.len() as u64 != entries.len() as u64 {
        return Err(BundleZipError::NotAZip("its entry count is inconsistent".to_owned()));
    }
    let mut declared = 0u64;
    for entry in &entries {
        let name = String::from_utf8_lossy(&entry.central_name).into_owned();
        if !entry.names_agree() {
            return Err(BundleZipError::NamesDisagree(name));
        }
        if !entry.is_file_or_folder() {
            return Err(BundleZipError::NotAPlainFile(name));
        }
        declared = declared.saturating_add(entry.uncompressed_size);
    }
    if declared > max_unpacked_bytes {
        return Err(BundleZipError::TooLarge { declared, max: max_unpacked_bytes });
    }
    // The raw bytes, not a sanitised name: a `..` must be seen to be refused.
    let names: Vec<String> = entries.iter().map(|e| String::from_utf8_lossy(&e.central_name).into_owned()).collect();
    Ok(check_bundle_entries(names.iter().map(String::as_str))?)
}

/// What `@capgo/cli bundle zip` looks for in a build: a bundle whose code never calls `notifyAppReady()` is rolled
/// back by the plugin on every launch (`update_fail` after `appReadyTimeout`).
pub const NOTIFY_APP_READY: &str = "notifyAppReady";

/// Whether some `.js` file of the zip contains `notifyAppReady`: the check `@capgo/cli bundle zip` runs before it
/// zips a build (`searchInDirectory(path, 'notifyAppReady')` in the CLI's `src/bundle/check.ts`, which reads every
/// file whose extension is exactly `.js`, at any depth).
///
/// # Errors
/// [`BundleZipError::NotAZip`] when the zip or an entry cannot be read.
pub fn calls_notify_app_ready(reader: impl Read + Seek) -> Result<bool, BundleZipError> {
    let unreadable = |e: &dyn std::fmt::Display| BundleZipError::NotAZip(e.to_string());
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| unreadable(&e))?;
    let needle = NOTIFY_APP_READY.as_bytes();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| unreadable(&e))?;
        if entry.is_dir() || !entry.name().ends_with(".js") {
            continue;
        }
        // Scan in chunks, keeping the tail of the previous one so a match across a boundary is found.
        let mut window: Vec<u8> = Vec::with_capacity(64 * 1024 + needle.len());
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = entry.read(&mut chunk).map_err(|e| unreadable(&e))?;
            if n == 0 {
                break;
            }
            window.extend_from_slice(&chunk[..n]);
            if window.windows(needle.len()).any(|w| w == needle) {
                return Ok(true);
            }
            let keep = window.len().min(needle.len() - 1);
            window.drain(..window.len() - keep);
        }
    }
    Ok(false)
}

/// Why a folder could not be zipped.
#[derive(Debug, thiserror::Error)]
pub enum ZipFolderError {
    /// Reading the folder or writing the zip failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The zip writer failed.
    #[error("writing the zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// The folder has no `index.html` at its root.
    #[error("{0} has no index.html; pass the web build folder (webDir, e.g. dist/)")]
    NoIndexHtml(PathBuf),
}

/// Zips the contents of `folder` (so `index.html` sits at the zip root), skipping root dot-files and `__MACOSX`,
/// in a stable order with fixed timestamps so the same folder gives the same bytes. Returns the number of files.
///
/// # Errors
/// [`ZipFolderError`].
pub fn zip_folder(folder: &Path, writer: impl Write + Seek) -> Result<usize, ZipFolderError> {
    if !folder.join("index.html").is_file() {
        return Err(ZipFolderError::NoIndexHtml(folder.to_path_buf()));
    }
    let mut files = Vec::new();
    collect_files(folder, folder, &mut files)?;
    files.sort();
    let mut zip = zip::ZipWriter::new(writer);
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for relative in &files {
        let path = folder.join(relative);
        zip.start_file(relative.as_str(), options)?;
        let mut file = File::open(&path).map_err(|source| ZipFolderError::Io { path: path.clone(), source })?;
        std::io::copy(&mut file, &mut zip).map_err(|source| ZipFolderError::Io { path: path.clone(), source })?;
    }
    zip.finish()?;
    Ok(files.len())
}

fn collect_files(root: &Path, dir: &Path, files: &mut Vec<String>) -> Result<(), ZipFolderError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ZipFolderError::Io { path: dir.to_path_buf(), source })?;
    for entry in entries {
        let entry = entry.map_err(|source| ZipFolderError::Io { path: dir.to_path_buf(), source })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let at_root = dir == root;
        if at_root && (name.starts_with('.') || name == "__MACOSX") {
            continue;
        }
        let file_type = entry.file_type().map_err(|source| ZipFolderError::Io { path: path.clone(), source })?;
        if file_type.is_dir() {
            collect_files(root, &path, files)?;
        } else if file_type.is_file() {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let parts: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            files.push(parts.join("/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::zip_entries::forge::{self, Forged};

    const LIMIT: u64 = 1 << 30;

    #[test]
    fn every_name_and_type_of_an_entry_is_judged() {
        let index = Forged { central_name: "index.html", data: b"<html>", ..Forged::default() };
        let inspect =
            |extra: Forged<'_>| inspect_bundle_zip(Cursor::new(forge::zip_of(&[index.clone(), extra])), LIMIT);
        let ok = inspect(Forged { central_name: "ok.js", data: b"x", ..Forged::default() });
        assert_eq!(ok.unwrap(), BundleLayout::Root);
        for (case, entry) in [
            (
                "raw name escapes, Unicode Path looks fine",
                Forged { central_name: "../../x.js", central_unicode: Some("ok.js"), ..Forged::default() },
            ),
            (
                "Unicode Path escapes",
                Forged { central_name: "ok.js", central_unicode: Some("../../x.js"), ..Forged::default() },
            ),
            (
                "local header name differs",
                Forged { central_name: "ok.js", local_name: Some("../../x.js"), ..Forged::default() },
            ),
            (
                "local Unicode Path differs",
                Forged { central_name: "ok.js", local_unicode: Some("../x.js"), ..Forged::default() },
            ),
        ] {
            let error = inspect(entry).unwrap_err();
            assert!(
                matches!(
                    error,
                    BundleZipError::NamesDisagree(_) | BundleZipError::Layout(BundleLayoutError::UnsafePath(_))
                ),
                "{case}: {error}"
            );
        }
        for mode in [0o120_777, 0o020_644, 0o060_644, 0o010_644, 0o140_755] {
            let error = inspect(Forged {
                central_name: "link.js",
                unix_mode: Some(mode),
                data: b"/etc/passwd",
                ..Forged::default()
            })
            .unwrap_err();
            assert!(matches!(error, BundleZipError::NotAPlainFile(_)), "{mode:o}: {error}");
        }
    }

    #[test]
    fn declared_sizes_are_capped_before_anything_is_unpacked() {
        let bomb = forge::zip_of(&[
            Forged { central_name: "index.html", data: b"<html>", ..Forged::default() },
            Forged { central_name: "big.js", declared_size: Some(u32::MAX), data: b"x", ..Forged::default() },
        ]);
        let error = inspect_bundle_zip(Cursor::new(bomb), 1 << 20).unwrap_err();
        assert!(matches!(error, BundleZipError::TooLarge { max: 1_048_576, .. }), "{error}");
    }

    fn zip_of(entries: &[&str]) -> Vec<u8> {
        let mut buffer = Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buffer);
        for name in entries {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(b"x").unwrap();
        }
        zip.finish().unwrap();
        buffer.into_inner()
    }

    #[test]
    fn accepts_capgo_layout() {
        assert_eq!(
            inspect_bundle_zip(Cursor::new(zip_of(&["index.html", "app.js"])), LIMIT).unwrap(),
            BundleLayout::Root
        );
    }

    #[test]
    fn refuses_traversal_in_raw_names() {
        let error = inspect_bundle_zip(Cursor::new(zip_of(&["index.html", "../../evil.js"])), LIMIT).unwrap_err();
        assert!(matches!(error, BundleZipError::Layout(BundleLayoutError::UnsafePath(_))), "{error}");
    }

    #[test]
    fn refuses_non_zip() {
        let error = inspect_bundle_zip(Cursor::new(b"<html>not a zip</html>".to_vec()), LIMIT).unwrap_err();
        assert!(matches!(error, BundleZipError::NotAZip(_)), "{error}");
    }

    #[test]
    fn zip_folder_puts_contents_at_root_and_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<html></html>").unwrap();
        std::fs::create_dir(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("assets/app.js"), "notifyAppReady()").unwrap();
        std::fs::write(dir.path().join(".DS_Store"), "junk").unwrap();
        let mut first = Cursor::new(Vec::new());
        assert_eq!(zip_folder(dir.path(), &mut first).unwrap(), 2);
        let mut second = Cursor::new(Vec::new());
        zip_folder(dir.path(), &mut second).unwrap();
        assert_eq!(first.get_ref(), second.get_ref());
        assert_eq!(inspect_bundle_zip(Cursor::new(first.into_inner()), LIMIT).unwrap(), BundleLayout::Root);
    }

    #[test]
    fn notify_app_ready_is_found_in_js_files_only() {
        let zip_with = |entries: &[(&str, &[u8])]| {
            let mut buffer = Cursor::new(Vec::new());
            let mut zip = zip::ZipWriter::new(&mut buffer);
            for (name, body) in entries {
                zip.start_file(*name, SimpleFileOptions::default()).unwrap();
                zip.write_all(body).unwrap();
            }
            zip.finish().unwrap();
            buffer.into_inner()
        };
        let check = |entries: &[(&str, &[u8])]| calls_notify_app_ready(Cursor::new(zip_with(entries))).unwrap();
        assert!(check(&[("index.html", b"<html>"), ("assets/index-3f2a.js", b"x.notifyAppReady()")]));
        assert!(!check(&[("index.html", b"<script>notifyAppReady()</script>"), ("app.js", b"nothing")]));
        assert!(!check(&[("index.html", b""), ("app.mjs", b"notifyAppReady()"), ("app.js.map", b"notifyAppReady")]));
        // A match straddling the 64 KiB read boundary.
        let mut big = vec![b' '; 64 * 1024 - 5];
        big.extend_from_slice(b"CapacitorUpdater.notifyAppReady()");
        assert!(check(&[("index.html", b""), ("vendor.js", &big)]));
        assert!(calls_notify_app_ready(Cursor::new(b"not a zip".to_vec())).is_err());
    }

    #[test]
    fn zip_folder_needs_index_html() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(zip_folder(dir.path(), Cursor::new(Vec::new())), Err(ZipFolderError::NoIndexHtml(_))));
    }
}
