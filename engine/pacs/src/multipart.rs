//! A streaming reader of `multipart/related` bodies (WADO-RS answers): each part is handed over
//! as soon as its closing delimiter arrives, so the first instance of a series is on disk long
//! before the last has come. Hand-written: the maintained multipart crates parse form data
//! (`multipart/form-data`) or need an async runtime.

use std::io::Read;

/// The `boundary` parameter of a `Content-Type: multipart/related; ...` header.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let kind = parts.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/related") {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// One part: its headers (lower-cased names) and its bytes (borrowed from the reader's buffer
/// until the next part).
#[derive(Debug)]
pub struct Part<'a> {
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl Part<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a body is not a well-formed multipart.
#[derive(Debug)]
pub enum MultipartError {
    Io(std::io::Error),
    Malformed(String),
}

impl std::fmt::Display for MultipartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MultipartError::Io(e) => write!(f, "reading the body: {e}"),
            MultipartError::Malformed(why) => write!(f, "{why}"),
        }
    }
}

/// Bytes read at least per read from the body.
const CHUNK: usize = 1 << 18;

/// The unconsumed bytes of a body, `buf[start..end]`, read straight into the buffer's free tail:
/// a part is copied once, from the reader, not again into a part of its own.
struct Window<R> {
    body: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    ended: bool,
}

impl<R: Read> Window<R> {
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// One read into the free tail, which is made at least [`CHUNK`] long first: the
    /// unconsumed bytes move to the front, and the buffer doubles when they fill it.
    fn fill(&mut self) -> Result<(), MultipartError> {
        if self.buf.len() - self.end < CHUNK {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < CHUNK {
                let grown = (2 * self.buf.len()).max(self.end + CHUNK);
                self.buf.resize(grown, 0);
            }
        }
        let n = self
            .body
            .read(&mut self.buf[self.end..])
            .map_err(MultipartError::Io)?;
        self.ended = n == 0;
        self.end += n;
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }
}

/// Reads `body` part by part, calling `each` with every complete part in order; returns how
/// many there were. Stops at the closing delimiter; a body that ends before it is an error (a
/// transfer cut short), as is a part without its header block.
pub fn for_each_part(
    body: impl Read,
    boundary: &str,
    mut each: impl FnMut(Part<'_>) -> Result<(), String>,
) -> Result<usize, MultipartError> {
    let first = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let mut w = Window {
        body,
        buf: vec![0; 4 * CHUNK],
        start: 0,
        end: 0,
        ended: false,
    };
    // The preamble, then the first delimiter.
    loop {
        if let Some(at) = find(w.data(), first.as_bytes(), 0) {
            w.consume(at + first.len());
            break;
        }
        if w.ended {
            return Err(MultipartError::Malformed(format!(
                "no part begins (no `--{boundary}` in {} bytes)",
                w.data().len()
            )));
        }
        w.fill()?;
    }
    let mut count = 0;
    loop {
        // After a delimiter: `--` closes the body, else a line break and the next part.
        while w.data().len() < 2 && !w.ended {
            w.fill()?;
        }
        if w.data().starts_with(b"--") {
            return Ok(count);
        }
        let mut searched = 0;
        let end = loop {
            if let Some(at) = find(w.data(), delimiter.as_bytes(), searched) {
                break at;
            }
            if w.ended {
                return Err(MultipartError::Malformed(format!(
                    "the body ends inside part {} (after {} bytes of it): the transfer was cut \
                     short",
                    count + 1,
                    w.data().len()
                )));
            }
            searched = w.data().len().saturating_sub(delimiter.len());
            w.fill()?;
        };
        let part = parse_part(&w.data()[..end])
            .map_err(|why| MultipartError::Malformed(format!("part {}: {why}", count + 1)))?;
        each(part).map_err(MultipartError::Malformed)?;
        count += 1;
        // What follows this part's delimiter stays.
        w.consume(end + delimiter.len());
    }
}

/// `\r\n` headers `\r\n\r\n` body, the leading line break of the part included.
fn parse_part(raw: &[u8]) -> Result<Part<'_>, String> {
    let raw = raw
        .strip_prefix(b"\r\n")
        .ok_or("no line break after the delimiter")?;
    let split = find(raw, b"\r\n\r\n", 0)
        .map(|at| (at, 4))
        .or_else(|| raw.starts_with(b"\r\n").then_some((0, 2)))
        .ok_or("no blank line after the part's headers")?;
    let head = std::str::from_utf8(&raw[..split.0]).map_err(|_| "headers are not text")?;
    let headers = head
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l
                .split_once(':')
                .ok_or(format!("header line `{l}` has no colon"))?;
            Ok((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Part {
        headers,
        body: &raw[split.0 + split.1..],
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= haystack.len() || needle.is_empty() {
        return None;
    }
    memchr::memmem::find(&haystack[from..], needle).map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out a few bytes at a time, as a slow network does.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(self.0.len()).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn body(parts: &[&[u8]], close: bool) -> Vec<u8> {
        let mut b = b"preamble\r\n".to_vec();
        for p in parts {
            b.extend_from_slice(b"--XyZ\r\nContent-Type: application/dicom\r\n\r\n");
            b.extend_from_slice(p);
            b.extend_from_slice(b"\r\n");
        }
        if close {
            b.extend_from_slice(b"--XyZ--\r\n");
        }
        b
    }

    #[test]
    fn parts_arrive_whole_whatever_the_chunking() {
        // A part that holds the boundary's text without the line break before it stays whole.
        let parts: [&[u8]; 3] = [b"first", b"has --XyZ inside", &[0u8, 13, 10, 45, 45, 1]];
        let b = body(&parts, true);
        for step in [1, 3, 7, 64, 1 << 20] {
            let mut got = Vec::new();
            let n = for_each_part(Trickle(&b, step), "XyZ", |p| {
                assert_eq!(p.header("content-type"), Some("application/dicom"));
                got.push(p.body.to_vec());
                Ok(())
            });
            assert_eq!(n.ok(), Some(3), "step {step}");
            assert_eq!(got, parts.map(|p| p.to_vec()), "step {step}");
        }
    }

    #[test]
    fn parts_larger_than_the_buffer_arrive_whole() {
        // 3 MB, and a part after it: the buffer (1 MB) moves its unconsumed bytes to the front
        // and grows, whatever the reads hand out.
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let parts: [&[u8]; 3] = [b"small", &big, b"after"];
        let b = body(&parts, true);
        for step in [1000, 65_536, 300_001, 1 << 22] {
            let mut got = Vec::new();
            let n = for_each_part(Trickle(&b, step), "XyZ", |p| {
                got.push(p.body.to_vec());
                Ok(())
            });
            assert_eq!(n.ok(), Some(3), "step {step}");
            assert!(got == parts.map(|p| p.to_vec()), "step {step}");
        }
    }

    #[test]
    fn a_cut_body_and_a_wrong_boundary_are_errors() {
        let b = body(&[b"one", b"two"], false);
        let mut seen = 0;
        let e = for_each_part(&b[..b.len() - 3], "XyZ", |_| {
            seen += 1;
            Ok(())
        });
        assert!(matches!(e, Err(MultipartError::Malformed(ref w)) if w.contains("cut short")));
        assert_eq!(seen, 1, "the complete first part still came");
        let e = for_each_part(&b[..], "other", |_| Ok(()));
        assert!(matches!(e, Err(MultipartError::Malformed(_))));
        assert_eq!(
            boundary("multipart/related; type=\"application/dicom\"; boundary=\"a b\""),
            Some("a b".into())
        );
        assert_eq!(boundary("application/json"), None);
    }
}
