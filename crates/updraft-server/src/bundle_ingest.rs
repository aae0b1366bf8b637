//! The blocking work of ingesting a bundle, run on the blocking pool: checking a plain zip, decrypting and checking
//! an encrypted one, and unpacking a zip's files for delta updates. Each step reads the staged file from disk, so
//! memory stays flat whatever the bundle size.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use updraft_capgo::bundle_zip::inspect_bundle_zip;
use updraft_capgo::encryption::{AppPublicKey, ChecksumForm, EncryptionError, decrypt_stream};
use updraft_core::{BundleLayout, codes};

use crate::api_error::ApiError;

fn invalid_bundle(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(codes::INVALID_BUNDLE, message)
}

fn internal(context: &'static str) -> impl Fn(std::io::Error) -> ApiError {
    move |e| {
        if crate::api_error::out_of_space(&e) {
            return crate::api_error::out_of_space_error();
        }
        ApiError::Internal(anyhow::Error::new(e).context(context))
    }
}

/// Checks a plain zip's layout, every entry's names and type, its entry count, and that it declares at most
/// `max_unpacked_bytes` uncompressed.
pub(crate) fn check_plain_zip(path: &Path, max_unpacked_bytes: u64) -> Result<BundleLayout, ApiError> {
    let file = std::fs::File::open(path).map_err(internal("reopening a staged upload"))?;
    inspect_bundle_zip(std::io::BufReader::new(file), max_unpacked_bytes).map_err(|e| invalid_bundle(e.to_string()))
}

/// What an encrypted upload decrypts to.
pub(crate) struct DecryptedZip {
    pub(crate) plain: tempfile::NamedTempFile,
    pub(crate) plain_sha256: String,
    pub(crate) checksum_form: ChecksumForm,
}

/// Decrypts an encrypted upload with its session key, checks that the encrypted checksum decrypts to the plain
/// bytes' SHA-256, and checks the plain zip's layout.
pub(crate) fn decrypt_and_check(
    staged: &Path,
    staging_dir: &Path,
    key: &AppPublicKey,
    session_key: &str,
    encrypted_checksum: &str,
    max_unpacked_bytes: u64,
) -> Result<DecryptedZip, ApiError> {
    let encryption_error = |e: EncryptionError| ApiError::bad_request("invalid_encryption", e.to_string());
    let session = key.session_key(session_key).map_err(encryption_error)?;
    let input = std::fs::File::open(staged).map_err(internal("reopening a staged upload"))?;
    let plain = tempfile::NamedTempFile::new_in(staging_dir).map_err(internal("staging a decrypted upload"))?;
    let mut writer =
        HashingWriter { inner: plain.reopen().map_err(internal("staging a decrypted upload"))?, hasher: Sha256::new() };
    decrypt_stream(&session, std::io::BufReader::new(input), &mut writer).map_err(encryption_error)?;
    let plain_sha256 = hex::encode(writer.hasher.finalize());
    // The checksum first: bytes that are not this session key's ciphertext of the signed zip can still decrypt with
    // valid padding (about one time in 256), and they are an encryption problem, not a zip that is broken.
    let checksum_form = key.verify_checksum(encrypted_checksum, &plain_sha256).map_err(encryption_error)?;
    check_plain_zip(plain.path(), max_unpacked_bytes).map_err(|error| match error {
        ApiError::Client(mut refused) => {
            refused.message = format!("after decryption: {}", refused.message);
            ApiError::Client(refused)
        }
        other => other,
    })?;
    Ok(DecryptedZip { plain, plain_sha256, checksum_form })
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// One unpacked file of a bundle.
pub(crate) struct UnpackedFile {
    /// Path inside the bundle (relative to the folder holding `index.html`).
    pub(crate) file_name: String,
    pub(crate) sha256: String,
    pub(crate) size_bytes: u64,
    pub(crate) path: PathBuf,
}

/// Unpacks every file of a plain bundle zip into `into`, hashing each, with a cap on the total unpacked size (a zip
/// bomb stops there) and no entry allowed past the size it declared; writing stops before the byte that would cross
/// either cap.
pub(crate) fn unpack_files(
    zip_path: &Path,
    layout: &BundleLayout,
    into: &Path,
    max_total_bytes: u64,
) -> Result<Vec<UnpackedFile>, ApiError> {
    let file = std::fs::File::open(zip_path).map_err(internal("reopening a staged upload"))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| invalid_bundle(e.to_string()))?;
    let prefix = match layout {
        BundleLayout::Root => String::new(),
        BundleLayout::TopFolder(folder) => format!("{folder}/"),
    };
    let mut files = Vec::new();
    let mut total = 0u64;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| invalid_bundle(e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_owned();
        let declared = entry.size();
        let file_name = name.strip_prefix(&prefix).unwrap_or(&name).to_owned();
        let path = into.join(format!("{index}"));
        let mut out = std::fs::File::create(&path).map_err(internal("unpacking a bundle"))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut size_bytes = 0u64;
        loop {
            let n =
                entry.read(&mut buffer).map_err(|e| invalid_bundle(format!("zip entry {name:?} is corrupt: {e}")))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            size_bytes += n as u64;
            if total > max_total_bytes {
                return Err(invalid_bundle(format!("the zip unpacks to more than {max_total_bytes} bytes")));
            }
            if size_bytes > declared {
                return Err(invalid_bundle(format!(
                    "zip entry {name:?} unpacks to more than the {declared} bytes it declares; re-create the zip"
                )));
            }
            hasher.update(&buffer[..n]);
            out.write_all(&buffer[..n]).map_err(internal("unpacking a bundle"))?;
        }
        files.push(UnpackedFile { file_name, sha256: hex::encode(hasher.finalize()), size_bytes, path });
    }
    Ok(files)
}
