//! A device report packed into one allocation: the form in which a report travels from the update check to the
//! write-behind queue and waits there. A [`DeviceReport`] holds a dozen strings (a dozen allocations and about 700
//! bytes per waiting device); packed, the same report is one buffer of about 200 bytes, built from borrowed fields
//! without copying any of them first.
//!
//! The buffer keeps the device's identity ([`PackedReport::key`]) and what it reported ([`PackedReport::content`],
//! everything but the time) in two contiguous slices, so the queue can hash them directly to coalesce reports per
//! device and to skip reports that change nothing. What a device may report, and how it is normalised, is the
//! protocol crates' business; this module only stores it.

use chrono::{DateTime, Utc};

use crate::device::DeviceReport;
use crate::ids::{AppId, DeviceId, Platform};

/// The fields of a device report, borrowed; `I` and `D` are how the app and the device are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceReportFields<'a, I, D> {
    /// App.
    pub app_id: I,
    /// Device.
    pub device_id: D,
    /// Platform.
    pub platform: Platform,
    /// Current bundle name.
    pub version_name: &'a str,
    /// Native version as sent.
    pub version_build: &'a str,
    /// Native build number.
    pub version_code: &'a str,
    /// OS version.
    pub version_os: &'a str,
    /// Plugin version.
    pub plugin_version: &'a str,
    /// Operator-set custom id.
    pub custom_id: &'a str,
    /// Production build.
    pub is_prod: bool,
    /// Emulator or simulator.
    pub is_emulator: bool,
    /// Store the app came from.
    pub install_source: &'a str,
    /// Channel the device asked for.
    pub default_channel: &'a str,
    /// Encryption key id.
    pub key_id: &'a str,
    /// When the report was received.
    pub seen_at: DateTime<Utc>,
}

/// A report's fields borrowed from a request body, typically, ready to be packed: the ids are parsed ids, so they
/// are within the lengths the packed layout holds.
pub type DeviceReportRef<'a> = DeviceReportFields<'a, &'a AppId, &'a DeviceId>;

/// A report's fields borrowed from a [`PackedReport`]'s buffer or a [`DeviceReport`]: what the store writes, so the
/// writer copies no field of the reports it writes (the ids are valid ids: both sources hold only those).
pub type DeviceReportView<'a> = DeviceReportFields<'a, &'a str, &'a str>;

impl DeviceReport {
    /// The report's fields, borrowed.
    #[must_use]
    pub fn view(&self) -> DeviceReportView<'_> {
        DeviceReportView {
            app_id: self.app_id.as_str(),
            device_id: self.device_id.as_str(),
            platform: self.platform,
            version_name: &self.version_name,
            version_build: &self.version_build,
            version_code: &self.version_code,
            version_os: &self.version_os,
            plugin_version: &self.plugin_version,
            custom_id: &self.custom_id,
            is_prod: self.is_prod,
            is_emulator: self.is_emulator,
            install_source: &self.install_source,
            default_channel: &self.default_channel,
            key_id: &self.key_id,
            seen_at: self.seen_at,
        }
    }
}

/// A device report in one buffer.
///
/// Layout: the time (8 bytes, milliseconds since the Unix epoch, little endian), the key length (2 bytes), the key
/// (the app id's length in one byte, the app id, the device id), then the content (platform, flags, and nine
/// length-prefixed strings). Built only by [`PackedReport::new`], so the layout always holds.
#[derive(Clone, PartialEq, Eq)]
pub struct PackedReport(Box<[u8]>);

const TIME: usize = 8;
const KEY_START: usize = TIME + 2;
const PROD: u8 = 1;
const EMULATOR: u8 = 2;

impl PackedReport {
    /// Packs a report (one allocation of exactly its size).
    pub fn new(report: &DeviceReportRef<'_>) -> Self {
        let (app, device) = (report.app_id.as_str(), report.device_id.as_str());
        let texts = [
            report.version_name,
            report.version_build,
            report.version_code,
            report.version_os,
            report.plugin_version,
            report.custom_id,
            report.install_source,
            report.default_channel,
            report.key_id,
        ];
        let key_len = 1 + app.len() + device.len();
        let size = KEY_START + key_len + 2 + texts.iter().map(|t| varint_len(t.len()) + t.len()).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&report.seen_at.timestamp_millis().to_le_bytes());
        // An app id is at most 128 bytes and a device id at most 64 (their invariants), so both lengths fit.
        out.extend_from_slice(&u16::try_from(key_len).unwrap_or(u16::MAX).to_le_bytes());
        out.push(u8::try_from(app.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(app.as_bytes());
        out.extend_from_slice(device.as_bytes());
        out.push(platform_code(report.platform));
        out.push(if report.is_prod { PROD } else { 0 } | if report.is_emulator { EMULATOR } else { 0 });
        for text in texts {
            push_varint(&mut out, text.len());
            out.extend_from_slice(text.as_bytes());
        }
        debug_assert_eq!(out.len(), size);
        Self(out.into_boxed_slice())
    }

    /// Who reported: the app and the device, as bytes that identify them (equal keys, same device).
    pub fn key(&self) -> &[u8] {
        &self.0[KEY_START..KEY_START + self.key_len()]
    }

    /// The app id and the device id, as bytes: ordered as the ids are (a `str`'s order is its bytes').
    pub fn app_and_device(&self) -> (&[u8], &[u8]) {
        let key = self.key();
        key[1..].split_at(usize::from(key[0]))
    }

    /// What was reported, without the time: two reports with equal content differ only in when they came.
    pub fn content(&self) -> &[u8] {
        &self.0[KEY_START + self.key_len()..]
    }

    /// When the report was received.
    pub fn seen_at(&self) -> DateTime<Utc> {
        let millis = i64::from_le_bytes(self.0[..TIME].try_into().unwrap_or_default());
        DateTime::from_timestamp_millis(millis).unwrap_or_default()
    }

    /// Bytes held (for memory accounting).
    pub fn size(&self) -> usize {
        self.0.len()
    }

    /// The report's fields, borrowed from the buffer.
    pub fn view(&self) -> DeviceReportView<'_> {
        let (app, device) = self.app_and_device();
        let content = self.content();
        let (platform, flags) = (platform_of(content[0]), content[1]);
        let mut rest = &content[2..];
        let mut next = || {
            let (len, used) = read_varint(rest);
            let value = text(&rest[used..used + len]);
            rest = &rest[used + len..];
            value
        };
        DeviceReportView {
            app_id: text(app),
            device_id: text(device),
            platform,
            version_name: next(),
            version_build: next(),
            version_code: next(),
            version_os: next(),
            plugin_version: next(),
            custom_id: next(),
            is_prod: flags & PROD != 0,
            is_emulator: flags & EMULATOR != 0,
            install_source: next(),
            default_channel: next(),
            key_id: next(),
            seen_at: self.seen_at(),
        }
    }

    /// The app and the device that reported (read from the key alone).
    pub fn ids(&self) -> (AppId, DeviceId) {
        let (app, device) = self.app_and_device();
        // Both were valid ids when packed, so parsing them again cannot fail.
        let app_id = AppId::parse(text(app)).expect("a packed app id is valid");
        let device_id = DeviceId::parse(text(device)).expect("a packed device id is valid");
        (app_id, device_id)
    }

    /// The report with owned fields.
    pub fn unpack(&self) -> DeviceReport {
        let view = self.view();
        let (app_id, device_id) = self.ids();
        DeviceReport {
            app_id,
            device_id,
            platform: view.platform,
            version_name: view.version_name.to_owned(),
            version_build: view.version_build.to_owned(),
            version_code: view.version_code.to_owned(),
            version_os: view.version_os.to_owned(),
            plugin_version: view.plugin_version.to_owned(),
            custom_id: view.custom_id.to_owned(),
            is_prod: view.is_prod,
            is_emulator: view.is_emulator,
            install_source: view.install_source.to_owned(),
            default_channel: view.default_channel.to_owned(),
            key_id: view.key_id.to_owned(),
            seen_at: view.seen_at,
        }
    }

    fn key_len(&self) -> usize {
        usize::from(u16::from_le_bytes([self.0[TIME], self.0[TIME + 1]]))
    }
}

impl From<&DeviceReport> for PackedReport {
    fn from(report: &DeviceReport) -> Self {
        Self::new(&DeviceReportRef {
            app_id: &report.app_id,
            device_id: &report.device_id,
            platform: report.platform,
            version_name: &report.version_name,
            version_build: &report.version_build,
            version_code: &report.version_code,
            version_os: &report.version_os,
            plugin_version: &report.plugin_version,
            custom_id: &report.custom_id,
            is_prod: report.is_prod,
            is_emulator: report.is_emulator,
            install_source: &report.install_source,
            default_channel: &report.default_channel,
            key_id: &report.key_id,
            seen_at: report.seen_at,
        })
    }
}

impl std::fmt::Debug for PackedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.unpack().fmt(f)
    }
}

/// A slice of the buffer as text: every slice was a `&str` when packed, cut at character boundaries, so it is UTF-8.
fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

fn platform_code(platform: Platform) -> u8 {
    match platform {
        Platform::Ios => 0,
        Platform::Android => 1,
        Platform::Electron => 2,
    }
}

fn platform_of(code: u8) -> Platform {
    match code {
        0 => Platform::Ios,
        1 => Platform::Android,
        _ => Platform::Electron,
    }
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn push_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a length written by [`push_varint`]: (value, bytes used).
fn read_varint(bytes: &[u8]) -> (usize, usize) {
    let (mut value, mut shift) = (0usize, 0);
    for (i, byte) in bytes.iter().enumerate() {
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return (value, i + 1);
        }
        shift += 7;
    }
    (value, bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(version_name: &str, custom_id: &str) -> DeviceReport {
        DeviceReport {
            app_id: AppId::parse("com.example.app").unwrap(),
            device_id: DeviceId::parse("0f6b3e1c-6c1e-4a55-9f3a-2f0c9a3b7d21").unwrap(),
            platform: Platform::Android,
            version_name: version_name.into(),
            version_build: "1.4".into(),
            version_code: "140".into(),
            version_os: "14".into(),
            plugin_version: "8.51.14".into(),
            custom_id: custom_id.into(),
            is_prod: true,
            is_emulator: false,
            install_source: "google_play".into(),
            default_channel: String::new(),
            key_id: "k".repeat(300),
            seen_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
        }
    }

    #[test]
    fn a_packed_report_unpacks_to_the_same_report() {
        for (name, custom) in [("1.0.0", ""), ("", "ünïcödé"), (&"x".repeat(20_000), "c")] {
            let original = report(name, custom);
            let packed = PackedReport::from(&original);
            assert_eq!(packed.unpack(), original);
            assert_eq!(packed.view(), original.view());
            assert_eq!(packed.seen_at(), original.seen_at);
            assert!(packed.size() < 120 + name.len() + custom.len() + 300, "{}", packed.size());
        }
    }

    #[test]
    fn key_names_the_device_and_content_ignores_the_time() {
        let a = PackedReport::from(&report("1.0.0", ""));
        let mut later = report("1.0.0", "");
        later.seen_at += chrono::Duration::seconds(5);
        let b = PackedReport::from(&later);
        assert_ne!(a, b);
        assert_eq!((a.key(), a.content()), (b.key(), b.content()));
        let changed = PackedReport::from(&report("1.0.1", ""));
        assert_eq!(a.key(), changed.key());
        assert_ne!(a.content(), changed.content());
        let mut other = report("1.0.0", "");
        other.device_id = DeviceId::parse("another").unwrap();
        assert_ne!(a.key(), PackedReport::from(&other).key());
        // The app/device boundary is part of the key: ("ab", "c") and ("a", "bc") differ.
        let mut shifted = report("1.0.0", "");
        shifted.app_id = AppId::parse("com.example.ap").unwrap();
        shifted.device_id = DeviceId::parse("p0f6b3e1c-6c1e-4a55-9f3a-2f0c9a3b7d21").unwrap();
        assert_ne!(a.key(), PackedReport::from(&shifted).key());
    }

    #[test]
    fn packed_reports_order_as_their_app_and_device_ids_do() {
        let ids = [("com.b", "a"), ("com.a", "zz"), ("com.a.b", "a"), ("com.a", "z"), ("com.ab", "0")];
        let mut packed: Vec<PackedReport> = ids
            .iter()
            .map(|(app, device)| {
                let mut r = report("1.0.0", "");
                (r.app_id, r.device_id) = (AppId::parse(app).unwrap(), DeviceId::parse(device).unwrap());
                PackedReport::from(&r)
            })
            .collect();
        packed.sort_by(|a, b| a.app_and_device().cmp(&b.app_and_device()));
        let mut expected = ids.to_vec();
        expected.sort();
        let sorted: Vec<(String, String)> =
            packed.iter().map(|p| p.unpack()).map(|r| (r.app_id.to_string(), r.device_id.to_string())).collect();
        let expected: Vec<(String, String)> = expected.iter().map(|(a, d)| (a.to_string(), d.to_string())).collect();
        assert_eq!(sorted, expected);
    }
}
