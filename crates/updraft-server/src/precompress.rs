//! Making the compressed copies of a stored object, once, at publish (or in `updraft storage encode` for objects
//! stored before): brotli at quality 11 and gzip at level 9, each written to a temporary file beside the staged
//! original. Blocking work: callers run it in `spawn_blocking`. Memory stays bounded whatever the file size (the
//! encoders stream, with a 4 MiB brotli window).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use tempfile::NamedTempFile;
use updraft_core::Encoding;

/// brotli's window (2^22 bytes): the quality-11 encoder's memory grows with it, and a JavaScript bundle gains
/// little from a larger one.
const BROTLI_WINDOW_BITS: u32 = 22;

/// How hard to compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effort {
    /// Text and code: the best ratio (brotli 11, gzip 9); once per published object.
    Best,
    /// Bytes that are compressed already (a PNG in a delta bundle): a copy is still needed for plugins that decode
    /// every delta file, but trying hard would only burn CPU.
    Fast,
}

/// One compressed copy.
pub(crate) struct Encoded {
    pub(crate) encoding: Encoding,
    pub(crate) file: NamedTempFile,
    pub(crate) size: u64,
}

/// Compresses `original` with `encoding` into a new temporary file in `dir`.
pub(crate) fn encode_file(original: &Path, dir: &Path, encoding: Encoding, effort: Effort) -> io::Result<Encoded> {
    let input = File::open(original)?;
    let size_hint = input.metadata()?.len();
    let mut reader = BufReader::with_capacity(256 * 1024, input);
    let file = NamedTempFile::new_in(dir)?;
    let writer = BufWriter::with_capacity(256 * 1024, file.reopen()?);
    match encoding {
        Encoding::Identity => return Err(io::Error::other("identity is not an encoded copy")),
        Encoding::Brotli => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: if effort == Effort::Best { 11 } else { 2 },
                lgwin: BROTLI_WINDOW_BITS as i32,
                size_hint: usize::try_from(size_hint).unwrap_or(usize::MAX),
                ..Default::default()
            };
            let mut encoder = brotli::CompressorWriter::with_params(writer, 64 * 1024, &params);
            io::copy(&mut reader, &mut encoder)?;
            encoder.flush()?;
            encoder.into_inner().into_inner().map_err(io::IntoInnerError::into_error)?.sync_all()?;
        }
        Encoding::Gzip => {
            let level = if effort == Effort::Best { 9 } else { 1 };
            let mut encoder = flate2::write::GzEncoder::new(writer, flate2::Compression::new(level));
            io::copy(&mut reader, &mut encoder)?;
            encoder.finish()?.into_inner().map_err(io::IntoInnerError::into_error)?.sync_all()?;
        }
    }
    let size = file.as_file().metadata()?.len();
    Ok(Encoded { encoding, file, size })
}

/// The first bytes of a file (for [`updraft_core::compressible_bytes`]).
pub(crate) fn head(path: &Path) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(16);
    File::open(path)?.take(16).read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_decode_to_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("bundle.js");
        let text: String = (0..20_000).map(|i| format!("function f{i}(a) {{ return a + {i}; }}\n")).collect();
        std::fs::write(&original, &text).unwrap();
        for effort in [Effort::Best, Effort::Fast] {
            let br = encode_file(&original, dir.path(), Encoding::Brotli, effort).unwrap();
            let mut decoded = Vec::new();
            brotli::Decompressor::new(File::open(br.file.path()).unwrap(), 4096).read_to_end(&mut decoded).unwrap();
            assert_eq!(decoded, text.as_bytes());
            assert!(br.size * 5 < text.len() as u64, "{} of {}", br.size, text.len());
            let gz = encode_file(&original, dir.path(), Encoding::Gzip, effort).unwrap();
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(File::open(gz.file.path()).unwrap()).read_to_end(&mut decoded).unwrap();
            assert_eq!(decoded, text.as_bytes());
        }
    }
}
