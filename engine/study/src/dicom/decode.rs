//! One frame of pixel data: decoded by dicom-pixeldata when encapsulated, taken as stored when
//! native, then written into the volume's element type with BitsStored masking and sign extension.

use std::borrow::Cow;

use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::header::DicomHeader;
use crate::pixel::Rescale;
use crate::volume::VoxelSliceMut;

/// Name of a transfer syntax UID, for messages.
pub fn syntax_name(uid: &str) -> String {
    TransferSyntaxRegistry
        .get(uid)
        .map(|ts| ts.name().to_string())
        .unwrap_or_else(|| "unknown transfer syntax".to_string())
}

/// Whether this build can decode the pixel data of a transfer syntax.
pub fn can_decode(uid: &str) -> bool {
    TransferSyntaxRegistry
        .get(uid)
        .map(|ts| ts.can_decode_all())
        .unwrap_or(false)
}

pub fn is_encapsulated_uid(uid: &str) -> bool {
    TransferSyntaxRegistry
        .get(uid)
        .map(|ts| ts.is_encapsulated_pixel_data())
        .unwrap_or(true)
}

/// Where a file's pixels are, once opened: the whole native Pixel Data value, or a parsed object
/// for the codecs.
pub enum PixelSource {
    Native(super::native::NativePixels),
    Object(Box<DefaultDicomObject>),
}

/// Opens a file for its pixels.
pub fn open_pixels(h: &DicomHeader) -> Result<PixelSource, String> {
    if super::native::handles(&h.transfer_syntax) {
        return super::native::read_pixel_bytes(&h.path).map(PixelSource::Native);
    }
    super::without_panic("the DICOM parser", || {
        OpenFileOptions::new()
            .read_to(tags::PIXEL_DATA)
            .open_file(&h.path)
            .map(|o| PixelSource::Object(Box::new(o)))
            .map_err(|e| e.to_string())
    })
}

/// Bytes of one frame, samples interleaved, native endianness.
pub fn frame_bytes<'a>(
    source: &'a PixelSource,
    h: &DicomHeader,
    frame: u32,
) -> Result<Cow<'a, [u8]>, String> {
    let all: Cow<'a, [u8]> = match source {
        PixelSource::Native(pixels) => Cow::Borrowed(pixels.as_bytes()),
        PixelSource::Object(obj) => {
            if is_encapsulated_uid(&h.transfer_syntax) {
                check_frame_header(obj, h, frame)?;
            }
            if h.transfer_syntax == JPEG_EXTENDED && h.bits_stored > 8 {
                return super::without_panic("the 12-bit JPEG decoder", || {
                    jpeg12_frame(obj, h, frame)
                })
                .map(Cow::Owned);
            }
            if is_encapsulated_uid(&h.transfer_syntax) {
                return super::without_panic("the pixel data decoder", || {
                    obj.decode_pixel_data_frame(frame)
                        .map(|decoded| Cow::Owned(decoded.data().to_vec()))
                        .map_err(|e| e.to_string())
                });
            }
            let element = obj
                .get(tags::PIXEL_DATA)
                .ok_or_else(|| "the file has no Pixel Data".to_string())?;
            element.value().to_bytes().map_err(|e| e.to_string())?
        }
    };
    let pixels = h.rows as usize * h.cols as usize * h.samples_per_pixel as usize;
    if h.bits_allocated == 1 {
        // Bit-packed frames run on without byte alignment.
        let first_bit = pixels * frame as usize;
        let bits: Vec<u8> = (first_bit..first_bit + pixels)
            .map(|b| {
                all.get(b / 8)
                    .map(|byte| (byte >> (b % 8)) & 1)
                    .unwrap_or(0)
            })
            .collect();
        if (first_bit + pixels).div_ceil(8) > all.len() {
            return Err(format!(
                "Pixel Data is truncated: {} bytes for frame {}",
                all.len(),
                frame + 1
            ));
        }
        return Ok(Cow::Owned(bits));
    }
    let frame_len = pixels * (h.bits_allocated as usize / 8);
    let start = frame_len * frame as usize;
    if all.len() < start + frame_len {
        return Err(format!(
            "Pixel Data is truncated: {} bytes, frame {} needs bytes {}..{}",
            all.len(),
            frame + 1,
            start,
            start + frame_len
        ));
    }
    Ok(match all {
        Cow::Borrowed(b) => Cow::Borrowed(&b[start..start + frame_len]),
        Cow::Owned(mut v) => {
            if start == 0 {
                v.truncate(frame_len);
                Cow::Owned(v)
            } else {
                Cow::Owned(v[start..start + frame_len].to_vec())
            }
        }
    })
}

/// Refuses a frame whose codestream declares more pixels than the header before a codec
/// allocates them ([`super::codestream`]). The frame's first fragment holds its header: one
/// fragment a frame, or all fragments one frame; otherwise every fragment that opens a
/// codestream is checked.
fn check_frame_header(obj: &DefaultDicomObject, h: &DicomHeader, frame: u32) -> Result<(), String> {
    let Some(fragments) = obj
        .get(tags::PIXEL_DATA)
        .and_then(|e| e.value().fragments())
    else {
        return Ok(());
    };
    if h.transfer_syntax == RLE_LOSSLESS {
        // One fragment a frame, as the RLE decoder takes it.
        return fragments.get(frame as usize).map_or(Ok(()), |f| {
            super::codestream::check_rle_header(f).map_err(|e| format!("frame {}: {e}", frame + 1))
        });
    }
    let check = |f: &Vec<u8>| {
        super::codestream::check_declared(f, h.rows, h.cols, h.samples_per_pixel)
            .map_err(|e| format!("frame {}: {e}", frame + 1))
    };
    if fragments.len() == h.frames as usize {
        fragments.get(frame as usize).map_or(Ok(()), check)
    } else if h.frames <= 1 {
        fragments.first().map_or(Ok(()), check)
    } else {
        fragments.iter().try_for_each(check)
    }
}

/// RLE Lossless.
const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// JPEG Extended (process 2 & 4).
pub const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";

/// 12-bit JPEG Extended, which dicom-pixeldata's decoder (jpeg-decoder) cannot read: decoded with
/// libjpeg-turbo-rs. Returns little-endian 16-bit samples.
fn jpeg12_frame(obj: &DefaultDicomObject, h: &DicomHeader, frame: u32) -> Result<Vec<u8>, String> {
    let element = obj
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| "the file has no Pixel Data".to_string())?;
    let fragments = element
        .value()
        .fragments()
        .ok_or_else(|| "JPEG pixel data is not encapsulated".to_string())?;
    // One frame: every fragment belongs to it. Several: one fragment a frame.
    let stream: Vec<u8> = if h.frames == 1 {
        fragments.iter().flatten().copied().collect()
    } else if fragments.len() == h.frames as usize {
        fragments[frame as usize].clone()
    } else {
        return Err(format!(
            "{} fragments for {} frames",
            fragments.len(),
            h.frames
        ));
    };
    let image =
        libjpeg_turbo_rs::decompress_12bit(&stream).map_err(|e| format!("12-bit JPEG: {e}"))?;
    if image.width != h.cols as usize || image.height != h.rows as usize {
        return Err(format!(
            "JPEG is {}x{}, the header says {}x{}",
            image.width, image.height, h.cols, h.rows
        ));
    }
    Ok(image
        .data
        .iter()
        .flat_map(|v| (*v as u16).to_le_bytes())
        .collect())
}

/// How to interpret one stored sample.
#[derive(Clone, Copy)]
struct SampleFormat {
    bits_stored: u32,
    signed: bool,
}

impl SampleFormat {
    #[inline]
    fn value(self, raw: u32) -> i64 {
        let bits = self.bits_stored;
        if bits >= 32 {
            return if self.signed {
                i64::from(raw as i32)
            } else {
                i64::from(raw)
            };
        }
        let masked = raw & ((1u32 << bits) - 1);
        if self.signed && (masked >> (bits - 1)) & 1 == 1 {
            i64::from(masked) - (1i64 << bits)
        } else {
            i64::from(masked)
        }
    }
}

/// Writes a decoded frame into `dst`. `to_float` applies a per-slice rescale when the volume had to
/// be stored as modality values (rescale varies between slices).
pub fn store_frame(
    bytes: &[u8],
    h: &DicomHeader,
    dst: VoxelSliceMut<'_>,
    to_float: Option<Rescale>,
    decoded_colour: bool,
) -> Result<(), String> {
    let pixels = h.rows as usize * h.cols as usize;
    if h.samples_per_pixel == 3 || h.palette.is_some() {
        let VoxelSliceMut::Rgb8(out) = dst else {
            return Err("colour frame in a greyscale volume".into());
        };
        return store_colour(bytes, h, out, pixels, decoded_colour);
    }
    let format = SampleFormat {
        bits_stored: u32::from(h.bits_stored),
        signed: h.pixel_signed,
    };
    let width = match h.bits_allocated {
        1 | 8 => 1,
        16 => 2,
        32 => 4,
        other => return Err(format!("BitsAllocated {other} is not supported")),
    };
    // Decoders may return 8-bit samples for 16-bit allocations (JPEG) or the reverse; trust the
    // byte count when it is unambiguous.
    let width = if bytes.len() == pixels * width || bytes.len() < pixels {
        width
    } else if bytes.len() == pixels * 2 {
        2
    } else if bytes.len() == pixels {
        1
    } else {
        width
    };
    if bytes.len() < pixels * width {
        return Err(format!(
            "decoded frame has {} bytes, {} expected",
            bytes.len(),
            pixels * width
        ));
    }
    let format = if width == 1 && h.bits_allocated != 8 && h.bits_allocated != 1 {
        SampleFormat {
            bits_stored: 8,
            ..format
        }
    } else {
        format
    };
    // One tight loop per (sample width, element type): this runs over every voxel of a series.
    macro_rules! fill {
        ($out:expr, $conv:expr) => {{
            let out = $out;
            if out.len() != pixels {
                return Err("frame size does not match the volume".into());
            }
            match width {
                1 => {
                    for (o, b) in out.iter_mut().zip(bytes) {
                        *o = $conv(format.value(u32::from(*b)));
                    }
                }
                2 => {
                    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                        *o = $conv(format.value(u32::from(u16::from_le_bytes([c[0], c[1]]))));
                    }
                }
                _ => {
                    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                        *o = $conv(format.value(u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
                    }
                }
            }
        }};
    }
    match dst {
        // The common CT/MR case: 16 bits stored in 16 bits, a straight copy.
        VoxelSliceMut::I16(out)
            if width == 2 && format.bits_stored == 16 && format.signed && out.len() == pixels =>
        {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = i16::from_le_bytes([c[0], c[1]]);
            }
        }
        VoxelSliceMut::U16(out)
            if width == 2 && format.bits_stored == 16 && !format.signed && out.len() == pixels =>
        {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = u16::from_le_bytes([c[0], c[1]]);
            }
        }
        VoxelSliceMut::F32(out) => {
            let r = to_float.unwrap_or(Rescale::IDENTITY);
            fill!(out, |v: i64| r.apply(v as f64) as f32)
        }
        VoxelSliceMut::U8(out) => fill!(out, |v: i64| v.clamp(0, 255) as u8),
        VoxelSliceMut::I16(out) => fill!(out, |v: i64| v.clamp(i16::MIN.into(), i16::MAX.into())
            as i16),
        VoxelSliceMut::U16(out) => fill!(out, |v: i64| v.clamp(0, u16::MAX.into()) as u16),
        VoxelSliceMut::I32(out) => fill!(out, |v: i64| v.clamp(i32::MIN.into(), i32::MAX.into())
            as i32),
        VoxelSliceMut::U32(out) => fill!(out, |v: i64| v.clamp(0, u32::MAX.into()) as u32),
        VoxelSliceMut::Rgb8(_) => return Err("greyscale frame in a colour volume".into()),
    }
    Ok(())
}

fn store_colour(
    bytes: &[u8],
    h: &DicomHeader,
    out: &mut [u8],
    pixels: usize,
    decoded: bool,
) -> Result<(), String> {
    if out.len() != pixels * 3 {
        return Err("frame size does not match the volume".into());
    }
    if let Some(palette) = &h.palette {
        let wide = h.bits_allocated > 8 && bytes.len() >= pixels * 2;
        if bytes.len() < pixels {
            return Err("palette frame is truncated".into());
        }
        for i in 0..pixels {
            let index = if wide {
                f64::from(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]))
            } else {
                f64::from(bytes[i])
            };
            for c in 0..3 {
                let lut = &palette[c];
                let v = lut.lookup(index);
                // 16-bit palette entries keep their top byte.
                out[3 * i + c] = if lut.bits > 8 {
                    (v / 256.0) as u8
                } else {
                    v as u8
                };
            }
        }
        return Ok(());
    }
    if bytes.len() < pixels * 3 {
        return Err(format!(
            "colour frame has {} bytes, {} expected",
            bytes.len(),
            pixels * 3
        ));
    }
    // Codecs hand back interleaved RGB; native data may be planar or YBR_FULL.
    let planar = !decoded && h.planar_configuration == 1;
    for i in 0..pixels {
        let (a, b, c) = if planar {
            (bytes[i], bytes[pixels + i], bytes[2 * pixels + i])
        } else {
            (bytes[3 * i], bytes[3 * i + 1], bytes[3 * i + 2])
        };
        let rgb = if !decoded && h.photometric.starts_with("YBR_FULL") {
            ybr_to_rgb(a, b, c)
        } else {
            [a, b, c]
        };
        out[3 * i..3 * i + 3].copy_from_slice(&rgb);
    }
    Ok(())
}

fn ybr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (f64::from(y), f64::from(cb) - 128.0, f64::from(cr) - 128.0);
    let c = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    [
        c(y + 1.402 * cr),
        c(y - 0.344_136 * cb - 0.714_136 * cr),
        c(y + 1.772 * cb),
    ]
}
