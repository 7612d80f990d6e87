//! Loading a planned DICOM stack into a [`Volume`]: every slice decoded straight into its place in
//! one buffer, in parallel, middle slice first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use rayon::prelude::*;

use super::decode::{can_decode, frame_bytes, open_pixels, store_frame, syntax_name, PixelSource};
use super::header::DicomHeader;
use super::series::DicomSeriesPlan;
use crate::error::{check_alloc, Result, StudyError};
use crate::pixel::{Photometric, Rescale};
use crate::volume::{
    LoadObserver, ModalityTransform, Volume, VolumeLayout, VoxelData, VoxelKind, VoxelSliceMut,
};

/// The element type that holds this stack without losing values, and whether a per-slice rescale
/// forces modality values to be stored as floats.
fn voxel_kind(plan: &DicomSeriesPlan) -> (VoxelKind, bool) {
    let h = plan.first();
    if h.samples_per_pixel == 3 || h.palette.is_some() {
        return (VoxelKind::Rgb8, false);
    }
    let first = h.rescale.first().copied().unwrap_or(Rescale::IDENTITY);
    let varies = plan.slices.iter().any(|s| {
        let r = s
            .header
            .rescale
            .get(s.frame as usize)
            .copied()
            .unwrap_or(Rescale::IDENTITY);
        r != first
    });
    if varies && h.modality_lut.is_none() {
        return (VoxelKind::F32, true);
    }
    let kind = match (h.bits_allocated, h.pixel_signed) {
        (1, _) | (8, false) => VoxelKind::U8,
        (8, true) => VoxelKind::I16,
        (16, true) => VoxelKind::I16,
        (16, false) => VoxelKind::U16,
        (_, true) => VoxelKind::I32,
        (_, false) => VoxelKind::U32,
    };
    (kind, false)
}

/// Geometry and pixel pipeline of the stack, from its first header.
fn layout_of(
    plan: &DicomSeriesPlan,
    h0: &DicomHeader,
    kind: VoxelKind,
    rescale_per_slice: bool,
) -> VolumeLayout {
    let colour = kind == VoxelKind::Rgb8;
    let modality = match (&h0.modality_lut, rescale_per_slice || colour) {
        (Some(lut), false) => ModalityTransform::Lut(lut.clone()),
        (_, true) => ModalityTransform::Rescale(Rescale::IDENTITY),
        (None, false) => {
            ModalityTransform::Rescale(h0.rescale.first().copied().unwrap_or(Rescale::IDENTITY))
        }
    };
    let photometric = match (kind, h0.photometric.as_str()) {
        (VoxelKind::Rgb8, _) => Photometric::Rgb,
        (_, "MONOCHROME1") => Photometric::Monochrome1,
        _ => Photometric::Monochrome2,
    };
    VolumeLayout {
        dims: plan.dims,
        affine: plan.affine,
        kind,
        modality,
        photometric,
        windows: if colour {
            Vec::new()
        } else {
            h0.windows.clone()
        },
        voi_function: h0.voi_function,
        voi_lut: h0.voi_lut.clone(),
        padding: if rescale_per_slice { None } else { h0.padding },
    }
}

/// Refuses a multi-frame file of compressed frames that declares more frames than its pixel
/// data holds fragments: each frame is encoded in one or more fragments of its own (PS3.5
/// A.4). Checked before the volume is allocated: a fuzzed 9.8 kB file declared 8,241 frames of
/// 1024 x 256 (4.3 GB) in one fragment.
fn check_fragments(
    h: &DicomHeader,
    pixels: &std::result::Result<PixelSource, String>,
) -> Result<()> {
    let Ok(PixelSource::Object(obj)) = pixels else {
        // Not readable: the frames' decoding says why, frame by frame.
        return Ok(());
    };
    let fragments = obj
        .get(dicom_dictionary_std::tags::PIXEL_DATA)
        .and_then(|e| e.value().fragments())
        .map_or(0, |f| f.len());
    if (fragments as u64) < u64::from(h.frames) {
        return Err(StudyError::invalid(
            &h.path,
            format!(
                "it declares {} frames of compressed pixel data but holds {fragments} \
                 fragment(s); each frame needs one of its own",
                h.frames
            ),
        ));
    }
    Ok(())
}

pub fn load(plan: &DicomSeriesPlan, observer: &dyn LoadObserver) -> Result<Volume> {
    let h0 = plan.first().clone();
    if !can_decode(&h0.transfer_syntax) {
        return Err(StudyError::UnsupportedTransferSyntax {
            path: h0.path.clone(),
            uid: h0.transfer_syntax.clone(),
            name: syntax_name(&h0.transfer_syntax),
        });
    }
    let (kind, rescale_per_slice) = voxel_kind(plan);
    let [cols, rows, count] = plan.dims;
    let slice_len = cols * rows;
    // Multi-frame objects are opened once and shared by the threads decoding their frames.
    let shared: OnceLock<std::result::Result<PixelSource, String>> = OnceLock::new();
    let multi_frame = h0.frames > 1;
    if multi_frame && super::decode::is_encapsulated_uid(&h0.transfer_syntax) {
        check_fragments(&h0, shared.get_or_init(|| open_pixels(&h0)))?;
    }
    let bytes = (slice_len as u64)
        .saturating_mul(count as u64)
        .saturating_mul(kind.bytes_per_voxel() as u64);
    check_alloc(&h0.path, "the volume", bytes)?;
    let layout = layout_of(plan, &h0, kind, rescale_per_slice);
    observer.started(&layout);
    let mut voxels = VoxelData::zeroed(kind, slice_len * count);

    // (slice, file, what went wrong)
    let failures: Mutex<Vec<(usize, String, String)>> = Mutex::new(Vec::new());
    let done = AtomicUsize::new(0);

    // Single-frame native files whose stored layout is the volume's element type are read
    // straight into place (the common CT/MR series).
    let direct = !multi_frame
        && !rescale_per_slice
        && super::native::handles(&h0.transfer_syntax)
        && h0.samples_per_pixel == 1
        && h0.palette.is_none()
        && matches!(
            (kind, h0.bits_allocated, h0.pixel_signed),
            (VoxelKind::I16, 16, true) | (VoxelKind::U16, 16, false) | (VoxelKind::U8, 8, false)
        );

    let decode_one = |k: usize, mut dst: crate::volume::VoxelSliceMut<'_>| {
        if observer.cancelled() {
            return;
        }
        let s = &plan.slices[k];
        let h = &s.header;
        let result = (|| -> std::result::Result<(), String> {
            if h.rows as usize != rows || h.cols as usize != cols {
                return Err(format!(
                    "{}x{} image in a {cols}x{rows} stack",
                    h.cols, h.rows
                ));
            }
            if direct {
                return read_direct(h, &mut dst);
            }
            let owned;
            let obj = if multi_frame {
                match shared.get_or_init(|| open_pixels(h)) {
                    Ok(o) => o,
                    Err(e) => return Err(e.clone()),
                }
            } else {
                owned = open_pixels(h)?;
                &owned
            };
            // Codecs return interleaved RGB whatever the stored photometric interpretation.
            let decoded_colour = super::decode::is_encapsulated_uid(&h.transfer_syntax);
            let bytes = frame_bytes(obj, h, s.frame)?;
            let rescale = rescale_per_slice.then(|| {
                h.rescale
                    .get(s.frame as usize)
                    .copied()
                    .unwrap_or(Rescale::IDENTITY)
            });
            store_frame(
                &bytes,
                h,
                crate::volume::reborrow(&mut dst),
                rescale,
                decoded_colour,
            )
        })();
        match result {
            Ok(()) => {
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                observer.slice_ready(k, n, count, dst.as_slice());
            }
            Err(message) => {
                let file = if multi_frame {
                    format!("{} frame {}", h.path.display(), s.frame + 1)
                } else {
                    h.path.display().to_string()
                };
                if let Ok(mut f) = failures.lock() {
                    f.push((k, file, message));
                }
            }
        }
    };

    let mut slices: Vec<_> = voxels
        .slices_mut(slice_len)
        .into_iter()
        .enumerate()
        .collect();
    // The middle slice first: it is what a viewer shows on open.
    let middle = count / 2;
    if let Some(pos) = slices.iter().position(|(k, _)| *k == middle) {
        let (k, dst) = slices.swap_remove(pos);
        decode_one(k, dst);
    }
    slices
        .into_par_iter()
        .for_each(|(k, dst)| decode_one(k, dst));

    if observer.cancelled() {
        return Err(StudyError::Cancelled);
    }
    let mut failures = failures.into_inner().unwrap_or_default();
    failures.sort_by_key(|f| f.0);
    if failures.len() == count {
        let (_, file, message) = failures.swap_remove(0);
        return Err(StudyError::Decode {
            path: file.into(),
            syntax: syntax_name(&h0.transfer_syntax),
            message,
        });
    }

    let missing = failures.iter().map(|f| f.0).collect();
    let warnings = failures
        .into_iter()
        .map(|(k, file, m)| format!("slice {k} ({file}) could not be decoded and is blank: {m}"))
        .collect();
    Ok(layout.into_volume(voxels, missing, warnings))
}

/// Reads a native single-frame file into its slice, then fixes byte order and BitsStored in place.
fn read_direct(h: &DicomHeader, dst: &mut VoxelSliceMut<'_>) -> std::result::Result<(), String> {
    let big_endian = super::native::read_pixels_into(&h.path, dst.bytes_mut())?;
    let bits = u32::from(h.bits_stored);
    match dst {
        VoxelSliceMut::I16(v) => {
            for x in v.iter_mut() {
                let raw = if big_endian { x.swap_bytes() } else { *x };
                // Sign-extend from the stored bit (also clears overlay bits above it).
                *x = if bits < 16 {
                    (raw << (16 - bits)) >> (16 - bits)
                } else {
                    raw
                };
            }
        }
        VoxelSliceMut::U16(v) => {
            let mask = if bits < 16 {
                (1u16 << bits) - 1
            } else {
                u16::MAX
            };
            for x in v.iter_mut() {
                let raw = if big_endian { x.swap_bytes() } else { *x };
                *x = raw & mask;
            }
        }
        VoxelSliceMut::U8(v) if bits < 8 => {
            let mask = (1u8 << bits) - 1;
            v.iter_mut().for_each(|x| *x &= mask);
        }
        _ => {}
    }
    Ok(())
}
