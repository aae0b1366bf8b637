//! The layout rules of a Capacitor bundle zip, as the real plugin unpacks it: `index.html` at the root or inside
//! exactly one top folder, nothing at the root that iOS would count as a second entry (`__MACOSX/`, dot-files), and
//! no entry name that could escape the bundle directory on the device.
//!
//! This module judges entry names only; reading the zip is the caller's business.

/// Why a zip is not a valid bundle. Messages say what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleLayoutError {
    /// The zip has no entries.
    #[error("the zip is empty; zip the contents of your web build folder (the one with index.html)")]
    Empty,
    /// An entry name could escape the bundle directory.
    #[error(
        "zip entry {0:?} has an unsafe path ('..', an absolute path, a backslash or a control character); re-create the zip with relative paths only"
    )]
    UnsafePath(String),
    /// A `__MACOSX/` folder is in the zip.
    #[error(
        "zip contains {0:?} (macOS Finder metadata), which breaks bundle unpacking on iOS; zip with `npx @capgo/cli bundle zip` or `zip -r -X`"
    )]
    MacOsMetadata(String),
    /// A dot-file or dot-folder sits at the zip root.
    #[error(
        "zip has the hidden entry {0:?} at its root, which iOS counts as a second root entry; remove it from the zip"
    )]
    HiddenRootEntry(String),
    /// No `index.html` at the root or in a single top folder.
    #[error(
        "zip has no index.html at its root or inside one single top folder; zip the contents of your web build folder (e.g. dist/)"
    )]
    MissingIndexHtml,
}

/// Where the bundle's root is inside the zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleLayout {
    /// `index.html` is at the zip root.
    Root,
    /// Everything sits in this one top folder, which holds `index.html`.
    TopFolder(String),
}

/// Checks a zip's entry names against the bundle layout rules.
///
/// # Errors
/// The first rule an entry breaks, see [`BundleLayoutError`].
pub fn check_bundle_entries<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<BundleLayout, BundleLayoutError> {
    let mut root_entries: Vec<&str> = Vec::new();
    let mut has_root_index = false;
    let mut n_entries = 0usize;
    let names: Vec<&str> = names.into_iter().collect();
    for &name in &names {
        n_entries += 1;
        if !is_safe_entry_name(name) {
            return Err(BundleLayoutError::UnsafePath(name.to_owned()));
        }
        let first = name.split('/').next().unwrap_or_default();
        if first == "__MACOSX" {
            return Err(BundleLayoutError::MacOsMetadata(name.to_owned()));
        }
        if first.starts_with('.') {
            return Err(BundleLayoutError::HiddenRootEntry(name.to_owned()));
        }
        if name == "index.html" {
            has_root_index = true;
        }
        if !root_entries.contains(&first) {
            root_entries.push(first);
        }
    }
    if n_entries == 0 {
        return Err(BundleLayoutError::Empty);
    }
    if has_root_index {
        return Ok(BundleLayout::Root);
    }
    if let [only] = root_entries.as_slice() {
        let index = format!("{only}/index.html");
        if names.iter().any(|n| *n == index) {
            return Ok(BundleLayout::TopFolder((*only).to_owned()));
        }
    }
    Err(BundleLayoutError::MissingIndexHtml)
}

/// A zip entry name is safe when it is relative, uses `/` only, and has no `..` or empty middle segments.
fn is_safe_entry_name(name: &str) -> bool {
    if name.is_empty() || name.starts_with('/') || name.contains('\\') || name.chars().any(char::is_control) {
        return false;
    }
    // A Windows drive prefix such as `C:` is absolute too.
    if name.len() >= 2 && name.as_bytes()[1] == b':' {
        return false;
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    trimmed.split('/').all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

/// Why a bundle's files cannot be served as a delta manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaManifestError {
    /// Two zip entries have the same name.
    #[error("the zip holds {0:?} twice; re-create the zip so that every file is in it once")]
    DuplicateFile(String),
    /// A `.br` file without the uncompressed file next to it.
    #[error(
        "the bundle holds {name:?} but not {target:?}: devices brotli-decode every delta file whose name ends in .br and install it as {target:?}, so {name:?} itself could never be installed; keep the uncompressed {target:?} in the build (vite-plugin-compression: deleteOriginFile: false), remove {name:?}, or upload without delta"
    )]
    PrecompressedWithoutOriginal {
        /// The `.br` file.
        name: String,
        /// The path the device would write it to.
        target: String,
    },
}

/// The files of a bundle (paths relative to its root) that make up its delta manifest, in the given order.
///
/// The plugin brotli-decodes every manifest entry whose `file_name` ends in `.br` and writes it without the suffix,
/// and fails the whole download when two entries land on the same path (`manifest_path_fail`;
/// `DownloadService.java` `resolveManifestTargetFile` / `rememberManifestTarget`, `CapgoUpdater.swift`
/// `downloadManifest`). Build tools such as vite's compression plugin put `app.js.br` next to `app.js`, so a
/// `.br` file whose uncompressed original is in the bundle is left out: the device gets that path from the
/// original, which is what its WebView reads (the `.br` copy only serves HTTP servers that negotiate
/// `Content-Encoding`). A `.br` file without its original cannot be delivered as itself and is refused.
///
/// # Errors
/// [`DeltaManifestError`] for the first file that cannot be served.
pub fn delta_manifest_files<'a>(files: &[&'a str]) -> Result<Vec<&'a str>, DeltaManifestError> {
    let mut seen = std::collections::HashSet::with_capacity(files.len());
    for &name in files {
        if !seen.insert(name) {
            return Err(DeltaManifestError::DuplicateFile(name.to_owned()));
        }
    }
    let mut kept = Vec::with_capacity(files.len());
    for &name in files {
        match name.strip_suffix(".br") {
            Some(target) if seen.contains(target) => {}
            Some(target) => {
                return Err(DeltaManifestError::PrecompressedWithoutOriginal {
                    name: name.to_owned(),
                    target: target.to_owned(),
                });
            }
            None => kept.push(name),
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(names: &[&str], expected: Result<BundleLayout, BundleLayoutError>) {
        assert_eq!(check_bundle_entries(names.iter().copied()), expected, "{names:?}");
    }

    #[test]
    fn index_at_root() {
        check(&["index.html", "app.js", "assets/", "assets/logo.png"], Ok(BundleLayout::Root));
    }

    #[test]
    fn index_in_single_top_folder() {
        check(&["dist/", "dist/index.html", "dist/app.js"], Ok(BundleLayout::TopFolder("dist".into())));
        check(&["dist/index.html"], Ok(BundleLayout::TopFolder("dist".into())));
    }

    #[test]
    fn index_missing_or_ambiguous() {
        check(&["app.js"], Err(BundleLayoutError::MissingIndexHtml));
        check(&["a/index.html", "b/index.html"], Err(BundleLayoutError::MissingIndexHtml));
        check(&["dist/sub/index.html"], Err(BundleLayoutError::MissingIndexHtml));
        check(&[], Err(BundleLayoutError::Empty));
    }

    #[test]
    fn macos_metadata_refused() {
        check(
            &["dist/index.html", "__MACOSX/dist/._index.html"],
            Err(BundleLayoutError::MacOsMetadata("__MACOSX/dist/._index.html".into())),
        );
    }

    #[test]
    fn dot_files_at_root_refused_but_allowed_deeper() {
        check(&["index.html", ".DS_Store"], Err(BundleLayoutError::HiddenRootEntry(".DS_Store".into())));
        check(&["index.html", "assets/.keep"], Ok(BundleLayout::Root));
    }

    #[test]
    fn unsafe_paths_refused() {
        for bad in ["../evil.js", "a/../../evil", "/etc/passwd", "a\\b", "C:/x", "a//b", "./index.html", "a\u{0}b"] {
            check(&["index.html", bad], Err(BundleLayoutError::UnsafePath(bad.into())));
        }
    }

    fn check_delta(files: &[&str], expected: Result<&[&str], DeltaManifestError>) {
        assert_eq!(delta_manifest_files(files), expected.map(<[&str]>::to_vec), "{files:?}");
    }

    #[test]
    fn delta_manifest_keeps_one_entry_per_device_path() {
        // What vite's compression plugin emits: the original and its .br copy.
        check_delta(
            &["index.html", "assets/app.js", "assets/app.js.br", "assets/app.css"],
            Ok(&["index.html", "assets/app.js", "assets/app.css"]),
        );
        check_delta(&["index.html", "app.js.br", "app.js"], Ok(&["index.html", "app.js"]));
        // app.js.br.br lands on app.js.br, which lands on app.js: both have originals.
        check_delta(&["index.html", "a.js", "a.js.br", "a.js.br.br"], Ok(&["index.html", "a.js"]));
        // Names that merely contain .br are ordinary files.
        check_delta(&["index.html", "a.brx", "br", "x.br.js"], Ok(&["index.html", "a.brx", "br", "x.br.js"]));
    }

    #[test]
    fn delta_manifest_refuses_what_a_device_cannot_install() {
        check_delta(
            &["index.html", "assets/app.js.br"],
            Err(DeltaManifestError::PrecompressedWithoutOriginal {
                name: "assets/app.js.br".into(),
                target: "assets/app.js".into(),
            }),
        );
        // Matching is exact, as on the device: APP.js does not provide app.js.
        check_delta(
            &["index.html", "APP.js", "app.js.br"],
            Err(DeltaManifestError::PrecompressedWithoutOriginal { name: "app.js.br".into(), target: "app.js".into() }),
        );
        check_delta(&["index.html", "a.js", "a.js"], Err(DeltaManifestError::DuplicateFile("a.js".into())));
    }
}
