//! The image size a compressed frame declares, read from its codestream's header before a codec
//! sees it. A fuzzed JPEG 2000 frame whose SIZ marker said 512 x 16,384,512 made openjp2 ask for
//! 32 GB: refused here where malloc says no, but on a machine with that much memory to promise
//! the codec would go on to fill it. A frame may not declare more columns, rows or components
//! than the DICOM header's Columns, Rows and Samples per Pixel (with room for 4 components).

/// What a codestream's header declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Declared {
    pub width: u64,
    pub height: u64,
    pub components: u32,
}

/// The size declared by a JPEG 2000 codestream (its SIZ marker, also inside a JP2 file) or a
/// JPEG / JPEG-LS stream (its start-of-frame marker); `None` when `stream` is neither or its
/// header is cut short (the codec then reports what is wrong).
pub fn declared_size(stream: &[u8]) -> Option<Declared> {
    if stream.starts_with(&[0xFF, 0xD8]) {
        return jpeg_frame_header(stream);
    }
    // SOC then SIZ open every JPEG 2000 codestream; a JP2 file has its header boxes before it.
    const SOC_SIZ: [u8; 4] = [0xFF, 0x4F, 0xFF, 0x51];
    if stream.starts_with(&SOC_SIZ) {
        return jpeg2000_siz(&stream[4..]);
    }
    if stream.starts_with(b"\0\0\0\x0cjP  ") {
        let head = &stream[..stream.len().min(64 * 1024)];
        let at = head.windows(4).position(|w| w == SOC_SIZ)?;
        return jpeg2000_siz(&stream[at + 4..]);
    }
    None
}

/// SIZ after its marker: Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, the tile sizes and offsets, Csiz.
fn jpeg2000_siz(s: &[u8]) -> Option<Declared> {
    let u32_at = |at: usize| -> Option<u64> {
        Some(u64::from(u32::from_be_bytes(
            s.get(at..at + 4)?.try_into().ok()?,
        )))
    };
    let (x, y, x0, y0) = (u32_at(4)?, u32_at(8)?, u32_at(12)?, u32_at(16)?);
    let components = u16::from_be_bytes(s.get(36..38)?.try_into().ok()?);
    Some(Declared {
        width: x.saturating_sub(x0),
        height: y.saturating_sub(y0),
        components: u32::from(components),
    })
}

/// The first start-of-frame segment of a JPEG (SOF0-SOF15) or JPEG-LS (SOF55) stream.
fn jpeg_frame_header(s: &[u8]) -> Option<Declared> {
    let mut at = 2;
    loop {
        if *s.get(at)? != 0xFF {
            return None;
        }
        // Fill bytes before a marker.
        while *s.get(at + 1)? == 0xFF {
            at += 1;
        }
        let marker = *s.get(at + 1)?;
        let is_frame = matches!(marker, 0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC))
            || marker == 0xF7;
        match marker {
            _ if is_frame => {
                let f = s.get(at + 4..at + 10)?;
                return Some(Declared {
                    height: u64::from(u16::from_be_bytes([f[1], f[2]])),
                    width: u64::from(u16::from_be_bytes([f[3], f[4]])),
                    components: u32::from(f[5]),
                });
            }
            // Scan data or the end before any frame header: nothing declared.
            0xDA | 0xD9 => return None,
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => at += 2,
            _ => {
                let len = u16::from_be_bytes([*s.get(at + 2)?, *s.get(at + 3)?]);
                at += 2 + usize::from(len);
            }
        }
    }
}

/// Refuses a frame whose codestream declares more than the DICOM header allows.
pub fn check_declared(stream: &[u8], rows: u32, cols: u32, samples: u16) -> Result<(), String> {
    let Some(d) = declared_size(stream) else {
        return Ok(());
    };
    let components = u32::from(samples).max(4);
    if d.width > u64::from(cols) || d.height > u64::from(rows) || d.components > components {
        return Err(format!(
            "the compressed frame declares {} x {} pixels with {} component(s); the header says \
             {cols} x {rows} with {samples}",
            d.width, d.height, d.components
        ));
    }
    Ok(())
}

/// Refuses an RLE Lossless frame whose header (PS3.5 G.5: 16 little-endian u32, the number of
/// segments, at most 15, then their offsets) is not one: dicom-rs's RLE decoder allocates the
/// offsets of as many segments as the first word says before it looks at the frame's length (a
/// fuzzed 2 kB file asked for 5.6 GB).
pub fn check_rle_header(frame: &[u8]) -> Result<(), String> {
    const HEADER: usize = 64;
    let word = |i: usize| {
        frame
            .get(4 * i..4 * i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let Some(segments) = word(0).filter(|_| frame.len() >= HEADER) else {
        return Err(format!(
            "the RLE frame is {} bytes, shorter than its 64-byte header",
            frame.len()
        ));
    };
    if !(1..=15).contains(&segments) {
        return Err(format!(
            "the RLE header declares {segments} segments; there are 1 to 15"
        ));
    }
    for i in 1..=segments as usize {
        let offset = word(i).unwrap_or(0) as usize;
        if offset < HEADER || offset > frame.len() {
            return Err(format!(
                "RLE segment {i} starts at byte {offset}, outside the {}-byte frame",
                frame.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rle_header_must_declare_1_to_15_segments_within_the_frame() {
        let header = |segments: u32, offsets: &[u32], len: usize| {
            let mut f = vec![0u8; len];
            f[0..4].copy_from_slice(&segments.to_le_bytes());
            for (i, o) in offsets.iter().enumerate() {
                f[4 + 4 * i..8 + 4 * i].copy_from_slice(&o.to_le_bytes());
            }
            f
        };
        assert_eq!(check_rle_header(&header(2, &[64, 80], 100)), Ok(()));
        let refused = |f: Vec<u8>, says: &str| {
            let e = check_rle_header(&f).expect_err("refused");
            assert!(e.contains(says), "{e}");
        };
        refused(vec![1, 0, 0, 0], "shorter than its 64-byte header");
        refused(
            header(1_392_508_931, &[], 2006),
            "declares 1392508931 segments",
        );
        refused(header(0, &[], 100), "declares 0 segments");
        refused(header(2, &[64, 500], 100), "segment 2 starts at byte 500");
        refused(header(1, &[12], 100), "segment 1 starts at byte 12");
    }

    fn siz(width: u32, height: u32, components: u16) -> Vec<u8> {
        let mut s = vec![0xFF, 0x4F, 0xFF, 0x51];
        s.extend_from_slice(&(38 + 3 * components).to_be_bytes());
        s.extend_from_slice(&0u16.to_be_bytes());
        for v in [width, height, 0, 0, width, height, 0, 0] {
            s.extend_from_slice(&v.to_be_bytes());
        }
        s.extend_from_slice(&components.to_be_bytes());
        s
    }

    #[test]
    fn a_jpeg2000_size_is_read_and_a_larger_one_refused() {
        let ok = siz(512, 512, 1);
        assert_eq!(
            declared_size(&ok),
            Some(Declared {
                width: 512,
                height: 512,
                components: 1
            })
        );
        assert!(check_declared(&ok, 512, 512, 1).is_ok());
        let huge = siz(512, 16_384_512, 1);
        let e = check_declared(&huge, 512, 512, 1).expect_err("refused");
        assert!(e.contains("512 x 16384512"), "{e}");
        // Behind JP2 boxes.
        let mut jp2 = b"\0\0\0\x0cjP  \r\n\x87\n".to_vec();
        jp2.extend_from_slice(&huge);
        assert!(check_declared(&jp2, 512, 512, 1).is_err());
        // Cut short: left to the codec.
        assert_eq!(declared_size(&ok[..20]), None);
    }

    #[test]
    fn a_jpeg_frame_header_is_found_past_other_segments() {
        // SOI, APP0 (length 16), DQT-like segment (length 4), SOF3 (lossless) 300 x 200, 1 comp.
        let mut s = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
        s.extend_from_slice(&[0; 14]);
        s.extend_from_slice(&[0xFF, 0xDB, 0, 4, 0, 0]);
        s.extend_from_slice(&[0xFF, 0xFF, 0xC3, 0, 11, 16, 0, 200, 1, 44, 1, 1, 0x11, 0]);
        assert_eq!(
            declared_size(&s),
            Some(Declared {
                width: 300,
                height: 200,
                components: 1
            })
        );
        assert!(check_declared(&s, 200, 300, 1).is_ok());
        assert!(check_declared(&s, 199, 300, 1).is_err());
        // JPEG-LS start of frame (SOF55).
        let ls = [
            0xFF, 0xD8, 0xFF, 0xF7, 0, 11, 16, 0xFF, 0xFF, 0, 64, 1, 1, 0x11, 0,
        ];
        assert_eq!(declared_size(&ls).map(|d| d.height), Some(65535));
        // Scan data before any frame header: nothing declared.
        assert_eq!(declared_size(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
    }
}
