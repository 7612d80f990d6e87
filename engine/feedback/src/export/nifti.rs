//! A NIfTI-1 label map (`.nii.gz`, uint8, class ids as values) with the source volume's grid: same
//! dims, and the LPS affine turned into NIfTI's RAS sform and qform, so it overlays the source in
//! any viewer.

use std::io::Write;
use std::path::Path;

use groundglass_study::LabelVolume;

use super::{io_err, ExportError};

/// The 348-byte NIfTI-1 header and 4 bytes of extension flag for a uint8 volume.
pub fn header(labels: &LabelVolume, description: &str) -> Vec<u8> {
    let mut h = vec![0u8; 352];
    let put_i16 =
        |h: &mut Vec<u8>, at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 =
        |h: &mut Vec<u8>, at: usize, v: f32| h[at..at + 4].copy_from_slice(&v.to_le_bytes());
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    let [nx, ny, nz] = labels.dims;
    for (i, v) in [3, nx as i16, ny as i16, nz as i16, 1, 1, 1, 1]
        .iter()
        .enumerate()
    {
        put_i16(&mut h, 40 + 2 * i, *v);
    }
    put_i16(&mut h, 70, 2); // datatype: uint8
    put_i16(&mut h, 72, 8); // bitpix
    let a = &labels.affine;
    // LPS -> RAS: negate the first two rows.
    let rows = a.to_rows();
    let ras = |r: usize| -> [f64; 4] {
        let s = if r < 2 { -1.0 } else { 1.0 };
        [
            rows[r][0] * s,
            rows[r][1] * s,
            rows[r][2] * s,
            rows[r][3] * s,
        ]
    };
    let spacing = a.spacing();
    put_f32(&mut h, 76, 1.0); // pixdim[0] = qfac
    for (i, s) in spacing.iter().enumerate() {
        put_f32(&mut h, 80 + 4 * i, *s as f32);
    }
    put_f32(&mut h, 108, 352.0); // vox_offset
    put_f32(&mut h, 112, 1.0); // scl_slope
    h[123] = 2; // xyzt_units: mm
    let d = description.as_bytes();
    h[148..148 + d.len().min(79)].copy_from_slice(&d[..d.len().min(79)]);
    put_i16(&mut h, 252, 0); // qform_code: the sform carries the geometry
    put_i16(&mut h, 254, 2); // sform_code: aligned to another file
    for r in 0..3 {
        let row = ras(r);
        for (c, v) in row.iter().enumerate() {
            put_f32(&mut h, 280 + 16 * r + 4 * c, *v as f32);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    h
}

/// Writes `labels` to `path` (gzip when the name ends in `.gz`).
pub fn write(path: &Path, labels: &LabelVolume, description: &str) -> Result<(), ExportError> {
    let mut bytes = header(labels, description);
    bytes.extend_from_slice(&labels.labels);
    let file = std::fs::File::create(path).map_err(io_err(path))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::new(6));
        gz.write_all(&bytes).map_err(io_err(path))?;
        gz.finish()
            .map_err(io_err(path))?
            .sync_all()
            .map_err(io_err(path))?;
    } else {
        let mut f = file;
        f.write_all(&bytes).map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))?;
    }
    Ok(())
}
