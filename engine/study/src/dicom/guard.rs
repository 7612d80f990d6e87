//! A pre-scan of a DICOM file's element lengths before dicom-rs parses it. dicom-parser reserves
//! the declared length of a value before reading it, so a corrupt or hostile length (4 GB in a
//! 1 kB file) would allocate and zero gigabytes. Here every defined length must fit in what is left
//! of the file; undefined lengths (sequences, items, encapsulated pixel data) are walked into.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Result, StudyError};

const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

/// Checks the file at `path`, reading element headers only and seeking over values.
pub fn check_lengths(path: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| StudyError::io(path, e))?;
    let len = file.metadata().map_err(|e| StudyError::io(path, e))?.len();
    let mut reader = BufReader::with_capacity(16 << 10, file);
    walk(&mut reader, len).map_err(|message| StudyError::dicom(path, message))
}

fn walk(r: &mut BufReader<File>, file_len: u64) -> std::result::Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let mut head = [0u8; 132];
    let got = read_up_to(r, &mut head).map_err(io)?;
    let mut pos: u64 = if got >= 132 && &head[128..132] == b"DICM" {
        132
    } else if got >= 4 && &head[..4] == b"DICM" {
        4
    } else {
        // Not our business: dicom-rs reports a missing magic code itself.
        return Ok(());
    };
    r.seek(SeekFrom::Start(pos)).map_err(io)?;
    let mut transfer_syntax = String::new();
    // The meta group is always explicit VR little endian.
    let mut explicit = true;
    let mut big = false;
    let mut in_meta = true;
    // Inside encapsulated pixel data, items are raw fragments, skipped by their length.
    let mut in_pixel_sequence = false;
    let mut h = [0u8; 12];
    while file_len - pos >= 8 {
        r.read_exact(&mut h[..8]).map_err(io)?;
        let group_le = u16::from_le_bytes([h[0], h[1]]);
        if in_meta && group_le != 0x0002 {
            in_meta = false;
            match transfer_syntax.as_str() {
                DEFLATED => return Ok(()), // the rest is a zlib stream
                "1.2.840.10008.1.2" => explicit = false,
                "1.2.840.10008.1.2.2" => big = true,
                _ => {}
            }
        }
        let be = big && !in_meta;
        let u16_at = |b: &[u8], p: usize| if be { u16::from_be_bytes([b[p], b[p + 1]]) } else { u16::from_le_bytes([b[p], b[p + 1]]) };
        let u32_at = |b: &[u8], p: usize| {
            let x = [b[p], b[p + 1], b[p + 2], b[p + 3]];
            if be { u32::from_be_bytes(x) } else { u32::from_le_bytes(x) }
        };
        let (group, element) = (u16_at(&h, 0), u16_at(&h, 2));
        let tag = (group, element);
        let vr = [h[4], h[5]];
        let (len, header) = if group == 0xFFFE || !explicit {
            // Items and delimiters carry no VR in any syntax; implicit VR has none either.
            (u32_at(&h, 4), 8u64)
        } else if matches!(&vr, b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN" | b"UR" | b"UT" | b"UV") {
            if file_len - pos < 12 {
                return Ok(());
            }
            r.read_exact(&mut h[8..12]).map_err(io)?;
            (u32_at(&h, 8), 12)
        } else {
            (u32::from(u16_at(&h, 6)), 8)
        };
        pos += header;
        if len == u32::MAX {
            // Undefined length: a sequence, an item, or encapsulated pixel data; walk into it.
            if tag == (0x7FE0, 0x0010) {
                in_pixel_sequence = true;
            }
            continue;
        }
        if tag == (0xFFFE, 0xE0DD) {
            in_pixel_sequence = false;
        }
        let remaining = file_len - pos;
        if u64::from(len) > remaining {
            // Native Pixel Data cut short gets a clearer message later; anything else claiming
            // more than the file holds is refused here.
            if tag == (0x7FE0, 0x0010) {
                return Ok(());
            }
            return Err(format!(
                "element ({group:04X},{element:04X}) at byte {} claims {len} bytes but only {remaining} remain: corrupt or truncated file",
                pos - header
            ));
        }
        if tag == (0x0002, 0x0010) && len <= 64 {
            let mut uid = vec![0u8; len as usize];
            r.read_exact(&mut uid).map_err(io)?;
            pos += u64::from(len);
            transfer_syntax = String::from_utf8_lossy(&uid).trim_end_matches(['\0', ' ']).to_string();
            continue;
        }
        // Defined-length sequences and items hold elements: walk into them too. Fragments of
        // encapsulated pixel data (and implicit-VR values, whose VR is unknown here) are skipped.
        let is_item = tag == (0xFFFE, 0xE000);
        let is_sequence = explicit && group != 0xFFFE && &vr == b"SQ";
        if !(is_sequence || (is_item && !in_pixel_sequence)) {
            r.seek_relative(i64::from(len)).map_err(io)?;
            pos += u64::from(len);
        }
    }
    Ok(())
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
