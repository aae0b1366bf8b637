//! Reading what `npx expo export` writes: `metadata.json` names, per platform, the launch bundle and the assets
//! (`{path, ext}`), all relative to the output folder. Paths are checked so none can escape the folder.

use serde::Deserialize;
use updraft_core::Platform;

/// Why an export folder cannot be published. Messages say what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// `metadata.json` is not the JSON `expo export` writes.
    #[error("metadata.json is not valid: {0}; run `npx expo export` again")]
    Invalid(String),
    /// An unsupported format version or bundler.
    #[error("metadata.json has {0}; only version 0 from the metro bundler (`npx expo export`) is supported")]
    Unsupported(String),
    /// A path that could leave the folder.
    #[error("metadata.json names {0:?}, which is not a relative path inside the export folder")]
    UnsafePath(String),
    /// A file extension a device could not store the file under.
    #[error("metadata.json names {path:?}: {problem}")]
    UnsafeExtension {
        /// The file.
        path: String,
        /// What is wrong with its extension.
        problem: updraft_core::UnsafeAsset,
    },
    /// None of the requested platforms was exported.
    #[error("metadata.json has no {0} export; run `npx expo export --platform {0}` or pick another --platform")]
    MissingPlatform(&'static str),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetadataJson {
    version: u32,
    bundler: String,
    file_metadata: std::collections::BTreeMap<String, PlatformJson>,
}

#[derive(Deserialize)]
struct PlatformJson {
    bundle: String,
    #[serde(default)]
    assets: Vec<AssetJson>,
}

#[derive(Deserialize)]
struct AssetJson {
    path: String,
    ext: String,
}

/// One platform's files, as paths relative to the export folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformExport {
    /// The platform.
    pub platform: Platform,
    /// The launch bundle's path.
    pub bundle: String,
    /// The assets' paths and extensions (without the dot), in metadata order, deduplicated by path.
    pub assets: Vec<(String, String)>,
}

/// Parses `metadata.json`, keeping the requested platforms (all exported ones when `wanted` is empty).
///
/// # Errors
/// [`ExportError`].
pub fn parse_metadata(text: &str, wanted: &[Platform]) -> Result<Vec<PlatformExport>, ExportError> {
    let metadata: MetadataJson = serde_json::from_str(text).map_err(|e| ExportError::Invalid(e.to_string()))?;
    if metadata.version != 0 || metadata.bundler != "metro" {
        return Err(ExportError::Unsupported(format!(
            "version {} and bundler {:?}",
            metadata.version, metadata.bundler
        )));
    }
    let explicit = !wanted.is_empty();
    let wanted: Vec<Platform> = if explicit { wanted.to_vec() } else { vec![Platform::Ios, Platform::Android] };
    let mut exports = Vec::new();
    for platform in wanted {
        let Some(files) = metadata.file_metadata.get(platform.as_str()) else {
            // Asking for one platform explicitly and not finding it is an error; "all" takes what exists.
            if explicit {
                return Err(ExportError::MissingPlatform(platform.as_str()));
            }
            continue;
        };
        check_path(&files.bundle)?;
        check_extension(&files.bundle, &bundle_extension(&files.bundle))?;
        let mut assets: Vec<(String, String)> = Vec::new();
        for asset in &files.assets {
            check_path(&asset.path)?;
            let ext = asset.ext.strip_prefix('.').unwrap_or(&asset.ext);
            check_extension(&asset.path, ext)?;
            if !assets.iter().any(|(path, _)| *path == asset.path) {
                assets.push((asset.path.clone(), ext.to_owned()));
            }
        }
        exports.push(PlatformExport { platform, bundle: files.bundle.clone(), assets });
    }
    if exports.is_empty() {
        return Err(ExportError::MissingPlatform("ios or android"));
    }
    Ok(exports)
}

/// Rejects absolute paths, backslashes, `..`, empty segments and control characters.
fn check_path(path: &str) -> Result<(), ExportError> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && (path.len() < 2 || path.as_bytes()[1] != b':')
        && path.split('/').all(|s| !s.is_empty() && s != "..");
    if ok { Ok(()) } else { Err(ExportError::UnsafePath(path.to_owned())) }
}

fn check_extension(path: &str, ext: &str) -> Result<(), ExportError> {
    updraft_core::check_asset_extension(ext)
        .map_err(|problem| ExportError::UnsafeExtension { path: path.to_owned(), problem })
}

/// The launch bundle's extension (`hbc`, `js`), from its path.
pub fn bundle_extension(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rsplit_once('.').map(|(_, ext)| ext.to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = r#"{"version":0,"bundler":"metro","fileMetadata":{
        "ios":{"bundle":"_expo/static/js/ios/index-abc.hbc","assets":[{"path":"assets/aa","ext":"png"},{"path":"assets/aa","ext":"png"}]},
        "android":{"bundle":"_expo/static/js/android/index-def.hbc","assets":[{"path":"assets/aa","ext":"png"}]}}}"#;

    #[test]
    fn reads_both_platforms_and_dedupes() {
        let exports = parse_metadata(METADATA, &[]).unwrap();
        assert_eq!(exports.len(), 2);
        assert_eq!(exports[0].platform, Platform::Ios);
        assert_eq!(exports[0].assets, vec![("assets/aa".to_owned(), "png".to_owned())]);
        assert_eq!(bundle_extension(&exports[1].bundle), "hbc");
        assert_eq!(parse_metadata(METADATA, &[Platform::Android]).unwrap().len(), 1);
    }

    #[test]
    fn refuses_what_it_cannot_publish() {
        assert!(matches!(parse_metadata("{", &[]), Err(ExportError::Invalid(_))));
        let v1 = METADATA.replace("\"version\":0", "\"version\":1");
        assert!(matches!(parse_metadata(&v1, &[]), Err(ExportError::Unsupported(_))));
        let escape = METADATA.replace("assets/aa", "../../etc/passwd");
        assert!(matches!(parse_metadata(&escape, &[]), Err(ExportError::UnsafePath(_))));
        let absolute = METADATA.replace("_expo/static/js/ios/index-abc.hbc", "/etc/passwd");
        assert!(matches!(parse_metadata(&absolute, &[]), Err(ExportError::UnsafePath(_))));
        let separator = METADATA.replacen("\"ext\":\"png\"", "\"ext\":\"png/../../evil\"", 1);
        assert!(matches!(parse_metadata(&separator, &[]), Err(ExportError::UnsafeExtension { .. })));
        let dotted = METADATA.replace("\"ext\":\"png\"", "\"ext\":\".png\"");
        assert_eq!(parse_metadata(&dotted, &[]).unwrap()[0].assets[0].1, "png", "one leading dot is dropped");
        let ios_only = r#"{"version":0,"bundler":"metro","fileMetadata":{"ios":{"bundle":"a.js","assets":[]}}}"#;
        assert!(matches!(parse_metadata(ios_only, &[Platform::Android]), Err(ExportError::MissingPlatform("android"))));
    }
}
