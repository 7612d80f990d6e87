//! A pre-scan of a DICOM file's element lengths before dicom-rs parses it. dicom-parser reserves
//! the declared length of a value before reading it, so a corrupt or hostile length (4 GB in a
//! 1 kB file) would allocate and zero gigabytes. Here every defined length must fit in what is left
//! of the file; undefined lengths (sequences, items, encapsulated pixel data) are walked into.
//! A binary value (US, FD, AT...) must also hold a whole number of values: dicom-parser reads only
//! whole ones and goes on from the middle of the value, so the next "header" it reads is made of
//! value bytes and can claim any length (a 2-byte FD in a 107 kB file made it zero 4 GB).
//! For the same reason an element must end within the defined-length sequence or item that holds
//! it.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::VR;
use dicom_dictionary_std::StandardDataDictionary;

use crate::error::{Result, StudyError};

const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

/// The most a deflated data set may inflate to (a deflate bomb is refused, not inflated).
const MAX_INFLATED: u64 = 4 << 30;

/// Checks the file at `path`, reading element headers only and seeking over values.
pub fn check_lengths(path: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| StudyError::io(path, e))?;
    let len = file.metadata().map_err(|e| StudyError::io(path, e))?.len();
    let mut reader = BufReader::with_capacity(16 << 10, file);
    match walk(&mut reader, len).map_err(|message| StudyError::dicom(path, message))? {
        Walked::Done => Ok(()),
        Walked::Deflated { data_set_start } => check_deflated(path, data_set_start),
    }
}

enum Walked {
    Done,
    /// The data set from this offset is a raw deflate stream.
    Deflated {
        data_set_start: u64,
    },
}

/// Something to walk: a file (seekable) or an inflated stream (skipped by reading).
trait Source: Read {
    fn skip(&mut self, n: u64) -> std::io::Result<()>;
}

impl Source for BufReader<File> {
    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        self.seek_relative(n as i64)
    }
}

impl<R: Read> Source for flate2::read::DeflateDecoder<R> {
    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        let copied = std::io::copy(&mut self.take(n), &mut std::io::sink())?;
        if copied < n {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

/// Deflated explicit VR little endian: measure the inflated size (bounded), then walk it.
fn check_deflated(path: &Path, start: u64) -> Result<()> {
    let open = || -> std::io::Result<flate2::read::DeflateDecoder<BufReader<File>>> {
        let mut f = BufReader::new(File::open(path)?);
        f.seek(SeekFrom::Start(start))?;
        Ok(flate2::read::DeflateDecoder::new(f))
    };
    let inflated = open()
        .and_then(|d| std::io::copy(&mut d.take(MAX_INFLATED + 1), &mut std::io::sink()))
        .map_err(|e| {
            StudyError::dicom(path, format!("deflated data set cannot be inflated: {e}"))
        })?;
    if inflated > MAX_INFLATED {
        return Err(StudyError::dicom(
            path,
            format!("deflated data set inflates to more than {MAX_INFLATED} bytes; refusing"),
        ));
    }
    let mut d = open().map_err(|e| StudyError::io(path, e))?;
    walk_data_set(
        &mut d,
        0,
        inflated,
        Syntax {
            explicit: true,
            big: false,
        },
    )
    .map_err(|m| StudyError::dicom(path, m))
}

#[derive(Clone, Copy)]
struct Syntax {
    explicit: bool,
    big: bool,
}

fn walk(r: &mut BufReader<File>, file_len: u64) -> std::result::Result<Walked, String> {
    let io = |e: std::io::Error| e.to_string();
    let mut head = [0u8; 132];
    let got = read_up_to(r, &mut head).map_err(io)?;
    let mut pos: u64 = if got >= 132 && &head[128..132] == b"DICM" {
        132
    } else if got >= 4 && &head[..4] == b"DICM" {
        4
    } else {
        // Not our business: dicom-rs reports a missing magic code itself.
        return Ok(Walked::Done);
    };
    r.seek(SeekFrom::Start(pos)).map_err(io)?;
    // The meta group as dicom-object reads it (explicit VR little endian): (0002,0000) first,
    // its 4-byte value the group's length, then elements of any group until that many bytes
    // have been read; the data set starts there, whatever group comes next. (Scanning to the end
    // of group 0002 instead, a fuzzed group length made the two start the data set at different
    // bytes, and dicom-parser read a meta element's VR as an implicit-VR length: 1.9 GB.)
    let mut h = [0u8; 12];
    if file_len - pos < 12 {
        return Ok(Walked::Done);
    }
    r.read_exact(&mut h).map_err(io)?;
    let first = (
        u16::from_le_bytes([h[0], h[1]]),
        u16::from_le_bytes([h[2], h[3]]),
    );
    if first != (0x0002, 0x0000) || u16::from_le_bytes([h[6], h[7]]) != 4 {
        // Not our business: dicom-object refuses a meta group that does not open so.
        return Ok(Walked::Done);
    }
    let group_length = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    pos += 12;
    let mut transfer_syntax = String::new();
    let mut read: u32 = 0;
    while read < group_length {
        if file_len - pos < 8 {
            return Ok(Walked::Done);
        }
        r.read_exact(&mut h[..8]).map_err(io)?;
        let (group, element) = (
            u16::from_le_bytes([h[0], h[1]]),
            u16::from_le_bytes([h[2], h[3]]),
        );
        let (len, header) = if group == 0xFFFE {
            (u32::from_le_bytes([h[4], h[5], h[6], h[7]]), 8)
        } else if is_long_vr([h[4], h[5]]) {
            if file_len - pos < 12 {
                return Ok(Walked::Done);
            }
            r.read_exact(&mut h[8..12]).map_err(io)?;
            (u32::from_le_bytes([h[8], h[9], h[10], h[11]]), 12)
        } else {
            (u32::from(u16::from_le_bytes([h[6], h[7]])), 8)
        };
        if len == u32::MAX {
            // dicom-object refuses an undefined length in the meta group.
            return Ok(Walked::Done);
        }
        pos += header;
        if u64::from(len) > file_len - pos {
            return Err(format!("meta element ({group:04X},{element:04X}) claims {len} bytes but only {} remain: corrupt or truncated file", file_len - pos));
        }
        if (group, element) == (0x0002, 0x0010) && len <= 64 {
            let mut uid = vec![0u8; len as usize];
            r.read_exact(&mut uid).map_err(io)?;
            transfer_syntax = String::from_utf8_lossy(&uid)
                .trim_end_matches(['\0', ' '])
                .to_string();
        } else {
            r.seek_relative(i64::from(len)).map_err(io)?;
        }
        pos += u64::from(len);
        read = read
            .saturating_add(u32::try_from(header).unwrap_or(u32::MAX))
            .saturating_add(len);
    }
    let syntax = match transfer_syntax.as_str() {
        DEFLATED => {
            return Ok(Walked::Deflated {
                data_set_start: pos,
            })
        }
        "1.2.840.10008.1.2" => Syntax {
            explicit: false,
            big: false,
        },
        "1.2.840.10008.1.2.2" => Syntax {
            explicit: true,
            big: true,
        },
        _ => Syntax {
            explicit: true,
            big: false,
        },
    };
    walk_data_set(r, pos, file_len, syntax)?;
    Ok(Walked::Done)
}

/// VRs with a 4-byte length in explicit VR. An unknown VR counts too: dicom-parser reads it as UN,
/// which has a 4-byte length.
fn is_long_vr(vr: [u8; 2]) -> bool {
    !matches!(
        &vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

/// Walks a data set from `pos` to `end`: every defined length must fit before `end`.
fn walk_data_set(
    r: &mut impl Source,
    mut pos: u64,
    end: u64,
    syntax: Syntax,
) -> std::result::Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    // Inside encapsulated pixel data, items are raw fragments, skipped by their length.
    let mut in_pixel_sequence = false;
    let mut h = [0u8; 12];
    // Where each defined-length sequence and item we are inside ends: dicom-parser reads an
    // element that straddles that end from the wrong place, so one must end within it.
    let mut ends: Vec<u64> = Vec::new();
    let straddles = |pos: u64, limit: u64| {
        format!("bytes {pos}..{limit} end a sequence or item without holding a whole element: corrupt file")
    };
    loop {
        while ends.last().is_some_and(|&e| pos >= e) {
            ends.pop();
        }
        let inside = !ends.is_empty();
        let limit = ends.last().copied().unwrap_or(end);
        if limit - pos < 8 {
            if inside {
                return Err(straddles(pos, limit));
            }
            break;
        }
        r.read_exact(&mut h[..8]).map_err(io)?;
        let be = syntax.big;
        let u16_at = |b: &[u8], p: usize| {
            if be {
                u16::from_be_bytes([b[p], b[p + 1]])
            } else {
                u16::from_le_bytes([b[p], b[p + 1]])
            }
        };
        let u32_at = |b: &[u8], p: usize| {
            let x = [b[p], b[p + 1], b[p + 2], b[p + 3]];
            if be {
                u32::from_be_bytes(x)
            } else {
                u32::from_le_bytes(x)
            }
        };
        let (group, element) = (u16_at(&h, 0), u16_at(&h, 2));
        let tag = (group, element);
        let vr = [h[4], h[5]];
        let (len, header) = if group == 0xFFFE || !syntax.explicit {
            // Items and delimiters carry no VR in any syntax; implicit VR has none either.
            (u32_at(&h, 4), 8u64)
        } else if is_long_vr(vr) {
            if limit - pos < 12 {
                return if inside {
                    Err(straddles(pos, limit))
                } else {
                    Ok(())
                };
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
        let remaining = limit - pos;
        if u64::from(len) > remaining {
            let what = if inside {
                "in its sequence or item"
            } else {
                "in the file"
            };
            return Err(format!(
                "element ({group:04X},{element:04X}) at byte {} claims {len} bytes but only {remaining} remain {what}: corrupt or truncated file",
                pos - header
            ));
        }
        let vr = if group == 0xFFFE {
            None
        } else if syntax.explicit {
            VR::from_binary(vr)
        } else {
            Some(implicit_vr(tag))
        };
        // Unpadded native pixel data that ends the file (some writers leave an odd byte count)
        // leaves nothing after it to misread, so it passes.
        let ends_the_file = tag == (0x7FE0, 0x0010) && !inside && u64::from(len) == remaining;
        if let Some(size) = vr
            .and_then(binary_value_size)
            .filter(|size| len % size != 0 && !ends_the_file)
        {
            return Err(format!(
                "element ({group:04X},{element:04X}) at byte {} is {} with {len} bytes, not a whole number of {size}-byte values: corrupt file",
                pos - header,
                vr.map_or("?", VR::to_string)
            ));
        }
        // Defined-length sequences and items hold elements: walk into them too. Fragments of
        // encapsulated pixel data are skipped.
        let is_item = tag == (0xFFFE, 0xE000);
        let is_sequence = vr == Some(VR::SQ);
        if is_sequence || (is_item && !in_pixel_sequence) {
            ends.push(pos + u64::from(len));
        } else {
            r.skip(u64::from(len)).map_err(io)?;
            pos += u64::from(len);
        }
    }
    Ok(())
}

/// The VR dicom-parser gives an element in implicit VR: from the dictionary, OW for pixel and
/// overlay data, UN when unknown (as `dicom_encoding::decode::implicit_le` does).
fn implicit_vr((group, element): (u16, u16)) -> VR {
    if (group, element) == (0x7FE0, 0x0010) || (group >> 8 == 0x60 && element == 0x3000) {
        return VR::OW;
    }
    StandardDataDictionary
        .by_tag(dicom_core::Tag(group, element))
        .map_or(VR::UN, |entry| entry.vr().relaxed())
}

/// The size of one value of a binary VR, which dicom-parser reads a whole number of.
fn binary_value_size(vr: VR) -> Option<u32> {
    match vr {
        VR::US | VR::SS | VR::OW => Some(2),
        VR::UL | VR::SL | VR::OL | VR::FL | VR::OF | VR::AT => Some(4),
        VR::FD | VR::OD | VR::SV | VR::UV | VR::OV => Some(8),
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Preamble, magic and a meta group declaring implicit VR little endian, then `body`.
    fn implicit_file(name: &str, body: &[u8]) -> std::path::PathBuf {
        let ts = b"1.2.840.10008.1.2\0";
        let mut meta = vec![0x02, 0x00, 0x10, 0x00, b'U', b'I'];
        meta.extend_from_slice(&(ts.len() as u16).to_le_bytes());
        meta.extend_from_slice(ts);
        let mut out = vec![0u8; 128];
        out.extend_from_slice(b"DICM");
        out.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
        out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        out.extend_from_slice(&meta);
        out.extend_from_slice(body);
        let path = std::env::temp_dir().join(format!("gg-guard-{}-{name}", std::process::id()));
        std::fs::write(&path, out).expect("write");
        path
    }

    #[test]
    fn odd_pixel_data_passes_only_where_it_ends_the_file() {
        // Implicit VR pixel data is OW; 9 bytes are four and a half values.
        let mut body = vec![0xE0, 0x7F, 0x10, 0x00, 9, 0, 0, 0];
        body.extend_from_slice(&[7u8; 9]);
        let last = implicit_file("odd-last.dcm", &body);
        assert!(check_lengths(&last).is_ok());
        // Followed by an element, the parser would read that from the wrong byte.
        body.extend_from_slice(&[0xFC, 0xFF, 0xFC, 0xFF, 2, 0, 0, 0, 0, 0]);
        let followed = implicit_file("odd-followed.dcm", &body);
        let err = check_lengths(&followed).expect_err("refused").to_string();
        assert!(
            err.contains("(7FE0,0010)") && err.contains("OW with 9 bytes"),
            "{err}"
        );
        let _ = std::fs::remove_file(last);
        let _ = std::fs::remove_file(followed);
    }

    #[test]
    fn the_data_set_starts_where_the_meta_groups_length_says() {
        // The group length covers the transfer syntax only: dicom-object then reads the next
        // meta element, (0002,0012) UI, as the first element of the implicit-VR data set, whose
        // 4-byte length is made of the bytes "UI" and the explicit length.
        let uid = b"1.2.3.4\0";
        let mut body = vec![0x02, 0x00, 0x12, 0x00, b'U', b'I'];
        body.extend_from_slice(&(uid.len() as u16).to_le_bytes());
        body.extend_from_slice(uid);
        let path = implicit_file("short-group.dcm", &body);
        let err = check_lengths(&path).expect_err("refused").to_string();
        let claimed = u32::from_le_bytes([b'U', b'I', uid.len() as u8, 0]);
        assert!(
            err.contains("(0002,0012)") && err.contains(&format!("claims {claimed} bytes")),
            "{err}"
        );
        let _ = std::fs::remove_file(path);
    }
}
