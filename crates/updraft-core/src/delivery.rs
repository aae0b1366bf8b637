//! How stored bytes reach a device: which objects get compressed copies at publish, which representation a request
//! gets (`Accept-Encoding` with q-values), when a bsdiff patch is worth sending instead of the full file, and which
//! Capgo plugins decode brotli files in a delta manifest.
//!
//! Every representation is made once, when an object is published (or by `updraft storage encode` for objects
//! stored before), never while a request waits: the gateway only picks among stored files.

use crate::{ManifestEntry, PluginVersion};

/// A stored representation of an object's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encoding {
    /// The bytes as published.
    Identity,
    /// gzip (RFC 1952), level 9.
    Gzip,
    /// brotli (RFC 7932), quality 11.
    Brotli,
}

impl Encoding {
    /// The stored encodings, besides the original.
    pub const STORED: [Encoding; 2] = [Encoding::Brotli, Encoding::Gzip];

    /// The `Content-Encoding` token (`None` for identity, which is never sent).
    pub fn token(self) -> Option<&'static str> {
        match self {
            Self::Identity => None,
            Self::Gzip => Some("gzip"),
            Self::Brotli => Some("br"),
        }
    }

    /// What follows the original's object key in the encoded copy's key (`files/<app>/<sha256>.br`), and the strong
    /// validator's suffix of that representation.
    pub fn key_suffix(self) -> &'static str {
        match self {
            Self::Identity => "",
            Self::Gzip => ".gz",
            Self::Brotli => ".br",
        }
    }

    /// The label `/metrics` counts served bytes under.
    pub fn label(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Brotli => "br",
        }
    }
}

/// The representation to send for a request's `Accept-Encoding` (RFC 9110 §12.5.3), among brotli, gzip and identity,
/// all three being stored: the highest q-value wins (identity, when not named, only as a last resort), brotli before gzip before identity on a tie (brotli is the
/// smaller). No header means identity (a client that says nothing may not decode anything). `*` stands for every
/// coding not named; `identity;q=0` (or `*;q=0` without identity) forbids identity, but identity is still sent
/// when nothing else is acceptable, as RFC 9110 allows instead of a 406 (a device must always get its update).
pub fn negotiate_encoding(accept_encoding: Option<&str>) -> Encoding {
    let Some(header) = accept_encoding else { return Encoding::Identity };
    let (mut br, mut gzip, mut identity, mut star) = (None, None, None, None);
    for item in header.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0_f32;
        for param in parts {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if name.trim().eq_ignore_ascii_case("q") {
                q = value.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0);
            }
        }
        let slot = match coding.as_str() {
            "br" => &mut br,
            "gzip" | "x-gzip" => &mut gzip,
            "identity" => &mut identity,
            "*" => &mut star,
            _ => continue,
        };
        // A coding named twice keeps its best q-value.
        *slot = Some(slot.map_or(q, |old: f32| old.max(q)));
    }
    let br = br.or(star).unwrap_or(0.0);
    let gzip = gzip.or(star).unwrap_or(0.0);
    // Identity not named is acceptable, but as a last resort: a client that lists a coding at all decodes it.
    let identity = identity.or(star).unwrap_or(0.001);
    let best = [(Encoding::Brotli, br), (Encoding::Gzip, gzip), (Encoding::Identity, identity)]
        .into_iter()
        .filter(|(_, q)| *q > 0.0)
        .fold(None::<(Encoding, f32)>, |best, (encoding, q)| match best {
            Some((_, best_q)) if best_q >= q => best,
            _ => Some((encoding, q)),
        });
    best.map_or(Encoding::Identity, |(encoding, _)| encoding)
}

/// Whether an object of this content type gets compressed copies, by its type: text, JavaScript and Hermes bundles,
/// JSON, XML and SVG, WebAssembly, uncompressed fonts and bitmaps. `None` for formats that are compressed already
/// (images, audio, video, zip, woff/woff2) and for types that say nothing (`application/octet-stream`): for those,
/// [`compressible_bytes`] decides from the first bytes.
pub fn compressible_type(content_type: &str) -> Option<bool> {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;
    let yes = kind == "text"
        || subtype.ends_with("+json")
        || subtype.ends_with("+xml")
        || matches!(
            (kind, subtype),
            ("application", "javascript" | "x-javascript" | "ecmascript" | "json" | "xml" | "wasm" | "manifest+json")
                | ("application", "vnd.ms-fontobject" | "x-font-ttf" | "x-font-otf")
                | ("font", "ttf" | "otf" | "sfnt" | "collection")
                | ("image", "svg+xml" | "bmp" | "x-icon" | "vnd.microsoft.icon")
        );
    if yes {
        return Some(true);
    }
    match (kind, subtype) {
        ("application", "octet-stream") => None,
        ("image" | "audio" | "video", _) | ("font", "woff" | "woff2") => Some(false),
        ("application", "zip" | "gzip" | "x-gzip" | "zstd" | "x-brotli" | "pdf") => Some(false),
        _ => None,
    }
}

/// For bytes of unknown type (an Expo asset is uploaded before any release names its extension; a delta file is
/// stored by content): `false` when the first bytes are the signature of an already-compressed format (PNG, JPEG,
/// GIF, WebP, zip, gzip, bzip2, zstd, woff/woff2, MP4/HEIF, Ogg, MP3), else `true` (the copy is then kept only if it
/// is [`worth_keeping`]).
pub fn compressible_bytes(head: &[u8]) -> bool {
    const SIGNATURES: [&[u8]; 14] = [
        b"\x89PNG",
        b"\xff\xd8\xff",
        b"GIF8",
        b"PK\x03\x04",
        b"\x1f\x8b",
        b"BZh",
        b"\x28\xb5\x2f\xfd",
        b"wOFF",
        b"wOF2",
        b"OggS",
        b"ID3",
        b"\xff\xfb",
        b"fLaC",
        b"%PDF",
    ];
    if SIGNATURES.iter().any(|signature| head.starts_with(signature)) {
        return false;
    }
    // RIFF....WEBP (and WAVE is raw audio, which compresses); ....ftyp is MP4, MOV, HEIF, AVIF.
    let webp = head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP";
    let iso_media = head.len() >= 8 && &head[4..8] == b"ftyp";
    !(webp || iso_media)
}

/// Whether an encoded copy is worth storing and serving: at least 5 % and 64 bytes smaller than the original
/// (smaller gains cost a decode on the device for nothing).
pub fn worth_keeping(original_size: u64, encoded_size: u64) -> bool {
    encoded_size.saturating_add(64) <= original_size && encoded_size.saturating_mul(100) <= original_size * 95
}

/// Whether a bsdiff patch is sent instead of the full file: only when it is at most 80 % of the smallest full
/// representation the device could get (the brotli copy, when there is one). A patch costs the device a bspatch
/// run and a re-hash, and a failed patch a second download, so a small gain is not worth it.
pub fn patch_worthwhile(patch_size: u64, smallest_full_size: u64) -> bool {
    patch_size.saturating_mul(10) <= smallest_full_size.saturating_mul(8)
}

/// How a Capgo plugin reads the files of a delta (`manifest`) update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaBrotli {
    /// It brotli-decodes every file it downloads and writes it under its `file_name`: Android and iOS before
    /// 5.50.1 / 6.14.28 / 7.0.38 (`DownloadService.java` and `CapacitorUpdater.swift` decompressed every manifest
    /// file until Cap-go/capacitor-updater 4e7a95e9, "brotli issue allow ignore for certain files"). Such a plugin
    /// can only install files sent brotli-encoded, under their own names.
    EveryFile,
    /// It brotli-decodes a file whose `file_name` ends in `.br` and writes it without the suffix, and writes any
    /// other file as downloaded; either way the SHA-256 `file_hash` is checked on what it writes (the decoded
    /// bytes): 5.50.1+, 6.14.28+, 7.0.38+ and 8.x (`DownloadService.java` `downloadAndVerify`,
    /// `CapgoUpdater.swift` `downloadManifest`).
    SuffixedFiles,
}

/// The delta-file form a plugin version reads (see [`DeltaBrotli`]); only asked for plugins that get delta
/// manifests at all.
pub fn delta_brotli(plugin: &PluginVersion) -> DeltaBrotli {
    let v = plugin.semver();
    let suffixed = match v.major {
        0..=5 => (v.major, v.minor, v.patch) >= (5, 50, 1),
        6 => (v.minor, v.patch) >= (14, 28),
        7 => (v.minor, v.patch) >= (0, 38),
        _ => true,
    };
    if suffixed { DeltaBrotli::SuffixedFiles } else { DeltaBrotli::EveryFile }
}

/// How one delta file goes to a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaFileForm {
    /// As stored, under its own `file_name`.
    Plain,
    /// Its brotli copy (`<object key>.br`): as `<file_name>.br` to [`DeltaBrotli::SuffixedFiles`] plugins, under
    /// its own name to [`DeltaBrotli::EveryFile`] ones.
    Brotli,
}

/// The form of each file of a delta manifest for a plugin that reads `reader`, in manifest order; `None` when the
/// plugin cannot install the manifest (an [`DeltaBrotli::EveryFile`] plugin and a file stored before brotli copies
/// existed): it then gets the zip alone. A [`DeltaBrotli::SuffixedFiles`] plugin gets the brotli copy of a file
/// only where it saves bytes ([`worth_keeping`]), like `@capgo/cli`, which keeps a file plain unless brotli makes
/// it smaller.
pub fn delta_file_forms(reader: DeltaBrotli, manifest: &[ManifestEntry]) -> Option<Vec<DeltaFileForm>> {
    manifest
        .iter()
        .map(|entry| match (reader, entry.br_size_bytes, entry.size_bytes) {
            (DeltaBrotli::EveryFile, Some(_), _) => Some(DeltaFileForm::Brotli),
            (DeltaBrotli::EveryFile, None, _) => None,
            (DeltaBrotli::SuffixedFiles, Some(br), Some(size)) if worth_keeping(size, br) => {
                Some(DeltaFileForm::Brotli)
            }
            (DeltaBrotli::SuffixedFiles, _, _) => Some(DeltaFileForm::Plain),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: Option<&str>, expected: Encoding) {
        assert_eq!(negotiate_encoding(header), expected, "Accept-Encoding: {header:?}");
    }

    #[test]
    fn accept_encoding_negotiation() {
        check(None, Encoding::Identity);
        check(Some(""), Encoding::Identity);
        check(Some("gzip"), Encoding::Gzip);
        check(Some("br"), Encoding::Brotli);
        // OkHttp / expo-updates' CompressionInterceptor, iOS URLSession.
        check(Some("zstd, br, gzip"), Encoding::Brotli);
        check(Some("gzip, deflate, br"), Encoding::Brotli);
        check(Some("br;q=0.5, gzip"), Encoding::Gzip);
        check(Some("br;q=0, gzip;q=0.1"), Encoding::Gzip);
        check(Some("gzip;q=0, br;q=0"), Encoding::Identity);
        check(Some("identity;q=0, gzip;q=0"), Encoding::Identity);
        check(Some("*"), Encoding::Brotli);
        check(Some("*;q=0.3, gzip"), Encoding::Gzip);
        check(Some("identity"), Encoding::Identity);
        check(Some("identity, gzip;q=0.9"), Encoding::Identity);
        check(Some("deflate, zstd"), Encoding::Identity);
        check(Some("GZIP;Q=1"), Encoding::Gzip);
        check(Some("x-gzip"), Encoding::Gzip);
        check(Some("br;q=nonsense, gzip"), Encoding::Gzip);
        check(Some("br;q=2, gzip"), Encoding::Gzip);
        check(Some("br ; q=0.8 , gzip ; q=0.8"), Encoding::Brotli);
    }

    #[test]
    fn compressible_by_content_type() {
        for yes in [
            "application/javascript",
            "application/json",
            "text/html; charset=utf-8",
            "text/css",
            "image/svg+xml",
            "application/wasm",
            "font/ttf",
            "font/otf",
            "application/manifest+json",
            "image/bmp",
        ] {
            assert_eq!(compressible_type(yes), Some(true), "{yes}");
        }
        for no in ["image/png", "image/jpeg", "image/webp", "font/woff2", "font/woff", "video/mp4", "application/zip"] {
            assert_eq!(compressible_type(no), Some(false), "{no}");
        }
        for unknown in ["application/octet-stream", "nonsense", "application/x-whatever"] {
            assert_eq!(compressible_type(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn compressible_by_first_bytes() {
        assert!(!compressible_bytes(b"\x89PNG\r\n\x1a\n...."));
        assert!(!compressible_bytes(b"\xff\xd8\xff\xe0"));
        assert!(!compressible_bytes(b"RIFF\0\0\0\0WEBPVP8 "));
        assert!(!compressible_bytes(b"\0\0\0\x18ftypmp42"));
        assert!(!compressible_bytes(b"wOF2\0\x01"));
        assert!(!compressible_bytes(b"PK\x03\x04"));
        assert!(compressible_bytes(b"var __BUNDLE_START_TIME__"));
        // A Hermes bytecode bundle compresses well.
        assert!(compressible_bytes(b"\xc6\x1f\xbc\x03\xc1\x03\x19\x1f"));
        assert!(compressible_bytes(b"RIFF\0\0\0\0WAVEfmt "));
        assert!(compressible_bytes(b""));
    }

    #[test]
    fn encoded_copies_are_kept_only_when_they_save_bytes() {
        assert!(worth_keeping(10_000, 3_000));
        assert!(worth_keeping(10_000, 9_500));
        assert!(!worth_keeping(10_000, 9_501));
        assert!(!worth_keeping(100, 40));
        assert!(!worth_keeping(0, 0));
    }

    #[test]
    fn patches_beat_the_compressed_file_by_a_margin() {
        assert!(patch_worthwhile(80, 100));
        assert!(!patch_worthwhile(81, 100));
        assert!(patch_worthwhile(0, 0));
        assert!(!patch_worthwhile(1, 0));
        assert!(patch_worthwhile(20_000, 700_000));
    }

    #[test]
    fn delta_files_go_brotli_where_the_plugin_decodes_them() {
        let entry = |size: Option<u64>, br: Option<u64>| ManifestEntry {
            file_name: "app.js".into(),
            file_hash: "ab".repeat(32),
            object_key: "files/x".into(),
            size_bytes: size,
            br_size_bytes: br,
        };
        let (js, png, old) =
            (entry(Some(10_000), Some(2_000)), entry(Some(10_000), Some(10_004)), entry(Some(9), None));
        use DeltaFileForm::{Brotli, Plain};
        let suffixed = delta_file_forms(DeltaBrotli::SuffixedFiles, &[js.clone(), png.clone(), old.clone()]);
        assert_eq!(suffixed, Some(vec![Brotli, Plain, Plain]));
        assert_eq!(delta_file_forms(DeltaBrotli::EveryFile, &[js.clone(), png.clone()]), Some(vec![Brotli, Brotli]));
        assert_eq!(delta_file_forms(DeltaBrotli::EveryFile, &[js, old]), None, "a file without a copy: the zip");
    }

    #[test]
    fn which_plugins_read_suffixed_brotli_files() {
        let check = |version: &str, expected: DeltaBrotli| {
            assert_eq!(delta_brotli(&PluginVersion::parse(version).unwrap()), expected, "{version}");
        };
        check("5.10.0", DeltaBrotli::EveryFile);
        check("5.50.0", DeltaBrotli::EveryFile);
        check("5.50.1", DeltaBrotli::SuffixedFiles);
        check("6.14.27", DeltaBrotli::EveryFile);
        check("6.14.28", DeltaBrotli::SuffixedFiles);
        check("6.25.0", DeltaBrotli::SuffixedFiles);
        check("7.0.35", DeltaBrotli::EveryFile);
        check("7.0.37", DeltaBrotli::EveryFile);
        check("7.0.38", DeltaBrotli::SuffixedFiles);
        check("7.1.0", DeltaBrotli::SuffixedFiles);
        check("8.0.0", DeltaBrotli::SuffixedFiles);
        check("10.0.0", DeltaBrotli::SuffixedFiles);
    }
}
