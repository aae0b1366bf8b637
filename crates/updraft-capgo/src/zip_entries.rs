//! Every name and type a zip reader could see for each entry, read from the raw bytes: the central directory's name
//! and Info-ZIP Unicode Path field (0x7075), the local header's name and Unicode Path field, the Unix file type, and
//! the declared sizes (zip64 included).
//!
//! The `zip` crate replaces an entry's name with its Unicode Path field when there is one, and reads the central
//! directory only, while the plugin's unzippers (`java.util.zip.ZipInputStream` on Android, SSZipArchive/minizip on
//! iOS) may use the raw name or the local header's. So a bundle is judged on every one of them here; the layout rules
//! themselves stay in `updraft_core::bundle_layout`.

use std::io::{Read, Seek, SeekFrom};

/// One entry as the raw bytes describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The central directory's name bytes.
    pub central_name: Vec<u8>,
    /// The central directory's Info-ZIP Unicode Path, if any.
    pub central_unicode_name: Option<Vec<u8>>,
    /// The local header's name bytes.
    pub local_name: Vec<u8>,
    /// The local header's Info-ZIP Unicode Path, if any.
    pub local_unicode_name: Option<Vec<u8>>,
    /// The Unix file type bits (`mode & 0o170000`) when the entry was made on Unix, else 0.
    pub unix_file_type: u32,
    /// The declared uncompressed size.
    pub uncompressed_size: u64,
}

impl RawEntry {
    /// Every distinct name a reader could use for this entry.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> {
        [
            Some(&self.central_name),
            self.central_unicode_name.as_ref(),
            Some(&self.local_name),
            self.local_unicode_name.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(Vec::as_slice)
    }

    /// Whether every name is the same bytes.
    pub fn names_agree(&self) -> bool {
        self.names().all(|name| name == self.central_name.as_slice())
    }

    /// Whether the entry is a regular file or a folder (or says nothing of its type): not a symlink, device, FIFO
    /// or socket.
    pub fn is_file_or_folder(&self) -> bool {
        matches!(self.unix_file_type, 0 | S_IFREG | S_IFDIR)
    }
}

const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;

/// Why the raw entries could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RawZipError {
    /// The structure is broken or truncated.
    #[error("the zip structure is broken ({0})")]
    Corrupt(&'static str),
    /// More entries than allowed.
    #[error("the zip has {count} entries, more than {max}")]
    TooManyEntries {
        /// Declared entries.
        count: u64,
        /// The cap.
        max: u64,
    },
    /// Reading failed.
    #[error("reading the zip: {0}")]
    Io(String),
}

const EOCD: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EOCD: u32 = 0x0606_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;
const UNICODE_PATH: u16 = 0x7075;
const ZIP64_EXTRA: u16 = 0x0001;

/// Reads every entry's names, type and declared size, refusing more than `max_entries` entries before reading them.
///
/// # Errors
/// [`RawZipError`] for a structure that cannot be read, and for too many entries.
pub fn read_raw_entries(mut reader: impl Read + Seek, max_entries: u64) -> Result<Vec<RawEntry>, RawZipError> {
    let io = |e: std::io::Error| RawZipError::Io(e.to_string());
    let length = reader.seek(SeekFrom::End(0)).map_err(io)?;
    let tail_length = length.min(22 + 65_535);
    reader.seek(SeekFrom::Start(length - tail_length)).map_err(io)?;
    let mut tail = vec![0u8; tail_length as usize];
    reader.read_exact(&mut tail).map_err(io)?;
    let eocd_at = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&at| u32_at(&tail, at) == Some(EOCD))
        .ok_or(RawZipError::Corrupt("no end of central directory"))?;
    let eocd = &tail[eocd_at..];
    let mut count = u64::from(u16_at(eocd, 10).ok_or(RawZipError::Corrupt("short end record"))?);
    let mut directory_offset = u64::from(u32_at(eocd, 16).ok_or(RawZipError::Corrupt("short end record"))?);
    if count == 0xFFFF || directory_offset == 0xFFFF_FFFF {
        // Zip64: the locator sits just before the end record and points at the zip64 end record.
        let locator = eocd_at.checked_sub(20).ok_or(RawZipError::Corrupt("no zip64 locator"))?;
        if u32_at(&tail, locator) != Some(ZIP64_LOCATOR) {
            return Err(RawZipError::Corrupt("no zip64 locator"));
        }
        let record_offset = u64_at(&tail, locator + 8).ok_or(RawZipError::Corrupt("short zip64 locator"))?;
        let record = read_at(&mut reader, record_offset, 56)?;
        if u32_at(&record, 0) != Some(ZIP64_EOCD) {
            return Err(RawZipError::Corrupt("no zip64 end record"));
        }
        count = u64_at(&record, 32).ok_or(RawZipError::Corrupt("short zip64 end record"))?;
        directory_offset = u64_at(&record, 48).ok_or(RawZipError::Corrupt("short zip64 end record"))?;
    }
    if count > max_entries {
        return Err(RawZipError::TooManyEntries { count, max: max_entries });
    }
    let mut entries = Vec::with_capacity(count as usize);
    let mut at = directory_offset;
    for _ in 0..count {
        let fixed = read_at(&mut reader, at, 46)?;
        if u32_at(&fixed, 0) != Some(CENTRAL) {
            return Err(RawZipError::Corrupt("a central directory header is missing"));
        }
        let field = |offset| u16_at(&fixed, offset).ok_or(RawZipError::Corrupt("short central header"));
        let long = |offset| u32_at(&fixed, offset).ok_or(RawZipError::Corrupt("short central header"));
        let made_on_unix = fixed[5] == 3;
        let (name_length, extra_length, comment_length) = (field(28)?, field(30)?, field(32)?);
        let external = long(38)?;
        let mut uncompressed_size = u64::from(long(24)?);
        let compressed_is_64 = long(20)? == 0xFFFF_FFFF;
        let mut local_offset = u64::from(long(42)?);
        let variable = read_at(&mut reader, at + 46, usize::from(name_length) + usize::from(extra_length))?;
        let (central_name, extra) = variable.split_at(usize::from(name_length));
        let central_unicode_name = unicode_path(extra);
        if let Some(zip64) = extra_field(extra, ZIP64_EXTRA) {
            // The zip64 field holds, in order, only the values whose 32-bit field is saturated.
            let mut cursor = 0;
            if uncompressed_size == 0xFFFF_FFFF {
                uncompressed_size = u64_at(zip64, cursor).ok_or(RawZipError::Corrupt("short zip64 field"))?;
                cursor += 8;
            }
            if compressed_is_64 {
                cursor += 8;
            }
            if local_offset == 0xFFFF_FFFF {
                local_offset = u64_at(zip64, cursor).ok_or(RawZipError::Corrupt("short zip64 field"))?;
            }
        }
        let local = read_at(&mut reader, local_offset, 30)?;
        if u32_at(&local, 0) != Some(LOCAL) {
            return Err(RawZipError::Corrupt("a local file header is missing"));
        }
        let local_name_length = usize::from(u16_at(&local, 26).ok_or(RawZipError::Corrupt("short local header"))?);
        let local_extra_length = usize::from(u16_at(&local, 28).ok_or(RawZipError::Corrupt("short local header"))?);
        let local_variable = read_at(&mut reader, local_offset + 30, local_name_length + local_extra_length)?;
        let (local_name, local_extra) = local_variable.split_at(local_name_length);
        entries.push(RawEntry {
            central_name: central_name.to_vec(),
            central_unicode_name,
            local_name: local_name.to_vec(),
            local_unicode_name: unicode_path(local_extra),
            unix_file_type: if made_on_unix { (external >> 16) & 0o170_000 } else { 0 },
            uncompressed_size,
        });
        at += 46 + u64::from(name_length) + u64::from(extra_length) + u64::from(comment_length);
    }
    Ok(entries)
}

fn read_at(reader: &mut (impl Read + Seek), offset: u64, length: usize) -> Result<Vec<u8>, RawZipError> {
    reader.seek(SeekFrom::Start(offset)).map_err(|e| RawZipError::Io(e.to_string()))?;
    let mut bytes = vec![0u8; length];
    reader.read_exact(&mut bytes).map_err(|_| RawZipError::Corrupt("truncated"))?;
    Ok(bytes)
}

/// The data of the first extra field with this id.
fn extra_field(mut extra: &[u8], id: u16) -> Option<&[u8]> {
    while extra.len() >= 4 {
        let (field_id, length) = (u16_at(extra, 0)?, usize::from(u16_at(extra, 2)?));
        let data = extra.get(4..4 + length)?;
        if field_id == id {
            return Some(data);
        }
        extra = &extra[4 + length..];
    }
    None
}

/// The name of an Info-ZIP Unicode Path field: a version byte, the CRC-32 of the raw name, then UTF-8.
fn unicode_path(extra: &[u8]) -> Option<Vec<u8>> {
    // A field too short to hold a name still names something a reader may use: keep it (empty), so it is judged.
    extra_field(extra, UNICODE_PATH).map(|data| data.get(5..).unwrap_or_default().to_vec())
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
pub(crate) mod forge {
    //! Zips built byte by byte, to say what no honest zip writer would.

    /// One entry to forge.
    #[derive(Default, Clone)]
    pub(crate) struct Forged<'a> {
        pub(crate) central_name: &'a str,
        pub(crate) local_name: Option<&'a str>,
        pub(crate) central_unicode: Option<&'a str>,
        pub(crate) local_unicode: Option<&'a str>,
        pub(crate) unix_mode: Option<u32>,
        pub(crate) declared_size: Option<u32>,
        pub(crate) data: &'a [u8],
    }

    /// A Unicode Path field as Info-ZIP writes it: with the CRC-32 of the raw name it stands for (readers that
    /// check it, such as the `zip` crate, then use it).
    fn unicode_extra(name: Option<&str>, raw_name: &str) -> Vec<u8> {
        let Some(name) = name else { return Vec::new() };
        let mut extra = 0x7075u16.to_le_bytes().to_vec();
        extra.extend_from_slice(&((5 + name.len()) as u16).to_le_bytes());
        extra.push(1);
        extra.extend_from_slice(&crc32(raw_name.as_bytes()).to_le_bytes());
        extra.extend_from_slice(name.as_bytes());
        extra
    }

    /// A stored (uncompressed) zip of these entries.
    pub(crate) fn zip_of(entries: &[Forged<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for entry in entries {
            let offset = out.len() as u32;
            let crc = crc32(entry.data);
            let size = entry.data.len() as u32;
            let declared = entry.declared_size.unwrap_or(size);
            let local_name = entry.local_name.unwrap_or(entry.central_name);
            let local_extra = unicode_extra(entry.local_unicode, local_name);
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&declared.to_le_bytes());
            out.extend_from_slice(&(local_name.len() as u16).to_le_bytes());
            out.extend_from_slice(&(local_extra.len() as u16).to_le_bytes());
            out.extend_from_slice(local_name.as_bytes());
            out.extend_from_slice(&local_extra);
            out.extend_from_slice(entry.data);
            let central_extra = unicode_extra(entry.central_unicode, entry.central_name);
            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&[
                20,
                if entry.unix_mode.is_some() { 3 } else { 0 },
                20,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ]);
            central.extend_from_slice(&crc.to_le_bytes());
            central.extend_from_slice(&size.to_le_bytes());
            central.extend_from_slice(&declared.to_le_bytes());
            central.extend_from_slice(&(entry.central_name.len() as u16).to_le_bytes());
            central.extend_from_slice(&(central_extra.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&(entry.unix_mode.unwrap_or(0) << 16).to_le_bytes());
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(entry.central_name.as_bytes());
            central.extend_from_slice(&central_extra);
        }
        let directory_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&directory_offset.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::forge::{Forged, zip_of};
    use super::*;

    fn entries(forged: &[Forged<'_>]) -> Vec<RawEntry> {
        read_raw_entries(Cursor::new(zip_of(forged)), 100).unwrap()
    }

    #[test]
    fn every_name_of_an_entry_is_read() {
        let [entry] = &entries(&[Forged {
            central_name: "../../x.js",
            central_unicode: Some("ok.js"),
            local_name: Some("local.js"),
            local_unicode: Some("other.js"),
            data: b"x",
            ..Forged::default()
        }])[..] else {
            panic!("one entry")
        };
        let names: Vec<&[u8]> = entry.names().collect();
        assert_eq!(names, [&b"../../x.js"[..], b"ok.js", b"local.js", b"other.js"]);
        assert!(!entry.names_agree());
        let plain = &entries(&[Forged { central_name: "index.html", data: b"<html>", ..Forged::default() }])[0];
        assert!(plain.names_agree());
        assert_eq!(plain.uncompressed_size, 6);
    }

    #[test]
    fn file_types_come_from_unix_modes() {
        let modes = [(0o100_644, true), (0o040_755, true), (0o120_777, false), (0o020_644, false), (0o010_644, false)];
        for (mode, allowed) in modes {
            let entry =
                &entries(&[Forged { central_name: "a", unix_mode: Some(mode), data: b"", ..Forged::default() }])[0];
            assert_eq!(entry.is_file_or_folder(), allowed, "{mode:o}");
        }
    }

    #[test]
    fn counts_and_sizes_are_read_before_any_data() {
        let many: Vec<Forged<'_>> = (0..5).map(|_| Forged { central_name: "a", ..Forged::default() }).collect();
        assert_eq!(
            read_raw_entries(Cursor::new(zip_of(&many)), 4).unwrap_err(),
            RawZipError::TooManyEntries { count: 5, max: 4 }
        );
        let bomb = &entries(&[Forged { central_name: "a", declared_size: Some(u32::MAX - 1), ..Forged::default() }])[0];
        assert_eq!(bomb.uncompressed_size, u64::from(u32::MAX - 1));
    }

    #[test]
    fn broken_structures_are_errors() {
        for bytes in [&b""[..], b"PK\x05\x06", b"not a zip at all, just some text that is long enough"] {
            assert!(read_raw_entries(Cursor::new(bytes.to_vec()), 10).is_err());
        }
        let mut truncated = zip_of(&[Forged { central_name: "index.html", data: b"<html>", ..Forged::default() }]);
        truncated.drain(..10);
        assert!(read_raw_entries(Cursor::new(truncated), 10).is_err());
    }
}
