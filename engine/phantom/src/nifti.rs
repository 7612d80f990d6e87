//! The phantom as NIfTI-1 (`.nii`, or `.nii.gz` when the name ends in `.gz`): the image as int16
//! and the labels as uint8 on the same grid. NIfTI is RAS, so the LPS affine's first two rows are
//! negated; it goes into both the sform and the qform (scanner coordinates), so tools that read
//! either agree.

use std::io::Write;
use std::path::Path;

use groundglass_study::Affine;

use crate::config::Modality;
use crate::error::{io_err, PhantomError, Result};
use crate::phantom::Phantom;

const DT_UINT8: i16 = 2;
const DT_INT16: i16 = 4;
const INTENT_LABEL: i16 = 1002;
const XFORM_SCANNER: i16 = 1;

/// The 348-byte header and the 4-byte extension flag.
fn header(
    dims: [usize; 3],
    affine: &Affine,
    datatype: i16,
    bitpix: i16,
    intent: i16,
    description: &str,
) -> Result<Vec<u8>> {
    let mut h = vec![0u8; 352];
    let put_i16 = |h: &mut [u8], at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 =
        |h: &mut [u8], at: usize, v: f64| h[at..at + 4].copy_from_slice(&(v as f32).to_le_bytes());
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    let mut dim = [3i16, 1, 1, 1, 1, 1, 1, 1];
    for a in 0..3 {
        dim[a + 1] = i16::try_from(dims[a]).map_err(|_| {
            PhantomError::Invalid(format!(
                "{dims:?} voxels: NIfTI-1 allows at most 32767 a side"
            ))
        })?;
    }
    for (n, v) in dim.iter().enumerate() {
        put_i16(&mut h, 40 + 2 * n, *v);
    }
    put_i16(&mut h, 68, intent);
    put_i16(&mut h, 70, datatype);
    put_i16(&mut h, 72, bitpix);
    let ras = to_ras(affine);
    let spacing = affine.spacing();
    let (quatern, qfac) = quaternion(&ras, spacing);
    put_f32(&mut h, 76, qfac);
    for (a, s) in spacing.iter().enumerate() {
        put_f32(&mut h, 80 + 4 * a, *s);
    }
    put_f32(&mut h, 108, 352.0); // vox_offset
    put_f32(&mut h, 112, 1.0); // scl_slope
    h[123] = 2; // xyzt_units: mm
    let d = description.as_bytes();
    let n = d.len().min(79);
    h[148..148 + n].copy_from_slice(&d[..n]);
    put_i16(&mut h, 252, XFORM_SCANNER); // qform_code
    put_i16(&mut h, 254, XFORM_SCANNER); // sform_code
    for (n, q) in quatern.iter().enumerate() {
        put_f32(&mut h, 256 + 4 * n, *q);
    }
    for (a, row) in ras.iter().enumerate() {
        put_f32(&mut h, 268 + 4 * a, row[3]); // qoffset
    }
    for (r, row) in ras.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            put_f32(&mut h, 280 + 16 * r + 4 * c, *v);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    Ok(h)
}

/// The first three rows of the voxel to RAS matrix.
fn to_ras(affine: &Affine) -> [[f64; 4]; 3] {
    let m = affine.to_rows();
    [m[0].map(|v| -v), m[1].map(|v| -v), m[2]]
}

/// NIfTI's quaternion (b, c, d) and qfac of the rotation part of `ras`, after
/// `nifti_mat44_to_quatern`; the axes are orthogonal here, so it is exact.
fn quaternion(ras: &[[f64; 4]; 3], spacing: [f64; 3]) -> ([f64; 3], f64) {
    let mut r = [[0.0; 3]; 3];
    for (row, out) in ras.iter().zip(r.iter_mut()) {
        for c in 0..3 {
            out[c] = row[c] / spacing[c];
        }
    }
    let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    let qfac = if det < 0.0 { -1.0 } else { 1.0 };
    if det < 0.0 {
        for row in r.iter_mut() {
            row[2] = -row[2];
        }
    }
    let trace = r[0][0] + r[1][1] + r[2][2] + 1.0;
    let (a, b, c, d) = if trace > 0.5 {
        let a = 0.5 * trace.sqrt();
        (
            a,
            0.25 * (r[2][1] - r[1][2]) / a,
            0.25 * (r[0][2] - r[2][0]) / a,
            0.25 * (r[1][0] - r[0][1]) / a,
        )
    } else {
        let xd = 1.0 + r[0][0] - (r[1][1] + r[2][2]);
        let yd = 1.0 + r[1][1] - (r[0][0] + r[2][2]);
        let zd = 1.0 + r[2][2] - (r[0][0] + r[1][1]);
        if xd > 1.0 {
            let b = 0.5 * xd.sqrt();
            (
                0.25 * (r[2][1] - r[1][2]) / b,
                b,
                0.25 * (r[0][1] + r[1][0]) / b,
                0.25 * (r[0][2] + r[2][0]) / b,
            )
        } else if yd > 1.0 {
            let c = 0.5 * yd.sqrt();
            (
                0.25 * (r[0][2] - r[2][0]) / c,
                0.25 * (r[0][1] + r[1][0]) / c,
                c,
                0.25 * (r[1][2] + r[2][1]) / c,
            )
        } else {
            let d = 0.5 * zd.sqrt();
            (
                0.25 * (r[1][0] - r[0][1]) / d,
                0.25 * (r[0][2] + r[2][0]) / d,
                0.25 * (r[1][2] + r[2][1]) / d,
                d,
            )
        }
    };
    // The quaternion with a >= 0 (q and -q are the same rotation).
    let (b, c, d) = if a < 0.0 { (-b, -c, -d) } else { (b, c, d) };
    ([b, c, d], qfac)
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let file = std::fs::File::create(path).map_err(io_err(path))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::new(6));
        gz.write_all(bytes).map_err(io_err(path))?;
        gz.finish().map_err(io_err(path))?;
    } else {
        let mut f = std::io::BufWriter::new(file);
        f.write_all(bytes).map_err(io_err(path))?;
        f.flush().map_err(io_err(path))?;
    }
    Ok(())
}

fn description(phantom: &Phantom, what: &str) -> String {
    let m = match phantom.modality {
        Modality::Ct => "CT",
        Modality::Mr => "MR",
    };
    format!("Groundglass phantom seed {} {m} {what}", phantom.seed)
}

/// Writes the image (int16; HU for CT) to `path`.
pub fn write_nifti(phantom: &Phantom, path: &Path) -> Result<()> {
    let mut bytes = header(
        phantom.dims,
        &phantom.affine,
        DT_INT16,
        16,
        0,
        &description(phantom, "image"),
    )?;
    bytes.reserve(phantom.values.len() * 2);
    for v in &phantom.values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    write_bytes(path, &bytes)
}

/// Writes the label map (uint8 class ids, NIfTI label intent) to `path`, on the image's grid.
pub fn write_label_nifti(phantom: &Phantom, path: &Path) -> Result<()> {
    let mut bytes = header(
        phantom.dims,
        &phantom.affine,
        DT_UINT8,
        8,
        INTENT_LABEL,
        &description(phantom, "labels"),
    )?;
    bytes.extend_from_slice(&phantom.labels.labels);
    write_bytes(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rotation NIfTI rebuilds from (b, c, d) and qfac.
    fn rebuild(q: [f64; 3], qfac: f64) -> [[f64; 3]; 3] {
        let [b, c, d] = q;
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                qfac * 2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                qfac * 2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                qfac * (a * a + d * d - c * c - b * b),
            ],
        ]
    }

    #[test]
    fn quaternions_rebuild_the_rotation() {
        let cases = [
            Affine::from_axes(
                [2.2, 0.0, 0.0],
                [0.0, 2.2, 0.0],
                [0.0, 0.0, 3.0],
                [-1.0, 2.0, 3.0],
            ),
            // Sagittal-like, and a mirrored one (negative determinant).
            Affine::from_axes(
                [0.0, 1.0, 0.0],
                [0.0, 0.0, -1.0],
                [-2.0, 0.0, 0.0],
                [0.0; 3],
            ),
            Affine::from_axes([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [0.0; 3]),
        ];
        for affine in cases {
            let ras = to_ras(&affine);
            let spacing = affine.spacing();
            let (q, qfac) = quaternion(&ras, spacing);
            let r = rebuild(q, qfac);
            for row in 0..3 {
                for col in 0..3 {
                    let want = ras[row][col] / spacing[col];
                    assert!((r[row][col] - want).abs() < 1e-9, "{affine:?}: {r:?}");
                }
            }
        }
    }
}
