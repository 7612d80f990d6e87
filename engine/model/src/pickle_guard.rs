//! A check of a PyTorch checkpoint's pickle before Candle reads it. Candle's reader allocates
//! every length the pickle stream declares (a string's, a byte string's) before reading the
//! bytes: a 270 KB file declaring 3.2 GB made it allocate 3.2 GB (found by `fuzz/`
//! `checkpoint_file`), and a larger lie kills the process. Here every opcode is walked and every
//! declared length must fit in what is left of the stream, so a damaged or hostile file is
//! refused with a message instead. Written by hand: no crate checks a pickle without running it.

use std::io::Read;
use std::path::Path;

/// The pickle of a torch.save zip may be this large (the tensors' data is stored beside it; a
/// 3B checkpoint's pickle is a few hundred kB).
const MAX_PICKLE: u64 = 256 << 20;

/// Checks every `*data.pkl` in the zip at `path`; the message says what is wrong and where.
pub fn check(path: &Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| format!("not a zip archive: {e}"))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| format!("zip entry {i}: {e}"))?;
        let name = entry
            .name()
            .map_err(|e| format!("zip entry {i}: {e}"))?
            .into_owned();
        if !name.ends_with("data.pkl") {
            continue;
        }
        if entry.size() > MAX_PICKLE {
            return Err(format!(
                "{name}: {} bytes of pickle, more than a checkpoint's ({MAX_PICKLE})",
                entry.size()
            ));
        }
        let mut bytes = Vec::new();
        (&mut entry)
            .take(MAX_PICKLE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{name}: {e}"))?;
        walk(&bytes).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// Walks the opcodes of a pickle stream up to STOP, checking each argument's length.
pub fn walk(p: &[u8]) -> Result<(), String> {
    let mut at = 0usize;
    let need = |at: usize, n: u64, what: &str| -> Result<usize, String> {
        let left = (p.len() - at) as u64;
        if n > left {
            Err(format!(
                "{what} at byte {at} declares {n} bytes where {left} remain"
            ))
        } else {
            Ok(n as usize)
        }
    };
    let int = |at: usize, width: usize| -> Result<u64, String> {
        let b = p
            .get(at..at + width)
            .ok_or_else(|| format!("a length at byte {at} runs past the end"))?;
        let mut v = [0u8; 8];
        v[..width].copy_from_slice(b);
        Ok(u64::from_le_bytes(v))
    };
    while at < p.len() {
        let op = p[at];
        at += 1;
        match op {
            b'.' => return Ok(()),
            // No argument.
            b'('
            | b'0'
            | b'1'
            | b'2'
            | b'N'
            | b')'
            | b']'
            | b'}'
            | b'a'
            | b'e'
            | b'b'
            | b'l'
            | b't'
            | b'd'
            | b's'
            | b'u'
            | b'R'
            | b'o'
            | b'Q'
            | 0x81
            | 0x85..=0x89
            | 0x8f..=0x94
            | 0x97
            | 0x98 => {}
            // Fixed-width arguments.
            0x80 | b'K' | b'q' | b'h' | 0x82 => at += need(at, 1, "an argument")?,
            b'M' | 0x83 => at += need(at, 2, "an argument")?,
            b'J' | b'r' | b'j' | 0x84 => at += need(at, 4, "an argument")?,
            b'G' => at += need(at, 8, "a float")?,
            // Length-prefixed data.
            b'U' | b'C' | 0x8c | 0x8a => {
                let n = int(at, 1)?;
                at += 1;
                at += need(at, n, "a short string")?;
            }
            b'T' | b'B' | b'X' | 0x8b => {
                let n = int(at, 4)?;
                at += 4;
                at += need(at, n, "a string")?;
            }
            0x8d | 0x8e | 0x96 => {
                let n = int(at, 8)?;
                at += 8;
                at += need(at, n, "a long string")?;
            }
            // A frame announces the length of the opcodes that follow; they are walked.
            0x95 => {
                let n = int(at, 8)?;
                at += 8;
                need(at, n, "a frame")?;
            }
            // Arguments ended by a newline (two for GLOBAL and INST).
            b'I' | b'L' | b'F' | b'S' | b'V' | b'P' | b'p' | b'g' | b'c' | b'i' => {
                let lines = if matches!(op, b'c' | b'i') { 2 } else { 1 };
                for _ in 0..lines {
                    let end = p[at..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .ok_or_else(|| format!("a line at byte {at} has no end"))?;
                    at += end + 1;
                }
            }
            other => {
                return Err(format!(
                    "opcode {other:#04x} at byte {} is not one of pickle's",
                    at - 1
                ))
            }
        }
    }
    Err("the pickle ends without STOP".into())
}

#[cfg(test)]
mod tests {
    use super::walk;

    #[test]
    fn a_pickle_walks_and_a_lying_length_is_refused() {
        // protocol 2: EMPTY_DICT, BINUNICODE "ab", BININT1 7, SETITEM, STOP.
        let good = [
            0x80, 2, b'}', b'X', 2, 0, 0, 0, b'a', b'b', b'K', 7, b's', b'.',
        ];
        assert_eq!(walk(&good), Ok(()));
        // The string declares 3.2 GB.
        let lying = [0x80, 2, b'X', 0x33, 0x33, 0x00, 0xbf, b'a', b'.'];
        let e = walk(&lying).expect_err("a lie");
        assert!(
            e.contains("declares 3204461363 bytes where 2 remain"),
            "{e}"
        );
        assert!(walk(&[0x80, 2, b'N'])
            .expect_err("no stop")
            .contains("STOP"));
        assert!(walk(&[0xff]).expect_err("junk").contains("0xff"));
        let global = *b"cfoo\nbar\n.";
        assert_eq!(walk(&global), Ok(()));
    }
}
