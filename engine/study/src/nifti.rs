//! NIfTI-1 and NIfTI-2 (`.nii`, `.nii.gz`, `.hdr`/`.img`), either byte order, 3D and 4D. Written by
//! hand because the `nifti` crate reads NIfTI-1 only. The world space (RAS) is converted to LPS here,
//! with nibabel's rules: sform when its code is set, else qform, else the pixdim-only base affine.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::error::{check_alloc, Result, StudyError};
use crate::geometry::Affine;
use crate::pixel::{Photometric, Rescale};
use crate::volume::{
    LoadObserver, ModalityTransform, Volume, VolumeLayout, VoxelData, VoxelKind, VoxelSliceMut,
};

/// What the header says, in NIfTI's own (RAS) terms plus our LPS affine.
#[derive(Clone, Debug)]
pub struct NiftiHeader {
    pub path: PathBuf,
    /// File holding the voxels: the same file, or the `.img` of a `.hdr`.
    pub data_path: PathBuf,
    pub version: u8,
    pub big_endian: bool,
    /// Sizes of dimensions 1..=dim[0] (at least 3 entries; missing ones are 1).
    pub dims: Vec<usize>,
    pub pixdim: [f64; 8],
    pub datatype: i16,
    pub vox_offset: u64,
    pub scl_slope: f64,
    pub scl_inter: f64,
    pub qform_code: i32,
    pub sform_code: i32,
    pub description: String,
    pub affine_lps: Affine,
    pub warnings: Vec<String>,
}

impl NiftiHeader {
    /// Number of 3D volumes (product of dimensions 4 and up).
    pub fn volumes(&self) -> usize {
        self.dims.iter().skip(3).product::<usize>().max(1)
    }

    fn kind(&self) -> Option<(VoxelKind, usize)> {
        // (element type we store, bytes per element in the file)
        Some(match self.datatype {
            2 => (VoxelKind::U8, 1),
            4 => (VoxelKind::I16, 2),
            8 => (VoxelKind::I32, 4),
            16 => (VoxelKind::F32, 4),
            64 => (VoxelKind::F32, 8),
            128 => (VoxelKind::Rgb8, 3),
            256 => (VoxelKind::I16, 1),
            512 => (VoxelKind::U16, 2),
            768 => (VoxelKind::U32, 4),
            _ => return None,
        })
    }

    pub fn rescale(&self) -> Rescale {
        if self.scl_slope != 0.0 && self.scl_slope.is_finite() && self.scl_inter.is_finite() {
            Rescale {
                slope: self.scl_slope,
                intercept: self.scl_inter,
            }
        } else {
            Rescale::IDENTITY
        }
    }
}

pub fn is_nifti_path(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".nii")
        || name.ends_with(".nii.gz")
        || name.ends_with(".hdr")
        || name.ends_with(".hdr.gz")
}

/// Deflate writes at most 1032 bytes for one (a 258-byte match in two bits), so a gzip file
/// cannot hold more than that many times its size (several members change nothing).
const DEFLATE_MAX_RATIO: u64 = 1032;

fn is_gz(path: &Path) -> bool {
    path.to_string_lossy().to_ascii_lowercase().ends_with(".gz")
}

fn open_stream(path: &Path) -> Result<Box<dyn Read + Send>> {
    let file = File::open(path).map_err(|e| StudyError::io(path, e))?;
    let reader = BufReader::with_capacity(1 << 20, file);
    Ok(if is_gz(path) {
        Box::new(MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

/// Reads exactly `buf.len()` bytes; a short file becomes a "truncated" error naming the file.
fn read_full(path: &Path, stream: &mut dyn Read, buf: &mut [u8], what: &str) -> Result<()> {
    stream.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            StudyError::nifti(path, format!("file is truncated: {what} is incomplete"))
        }
        _ => StudyError::nifti(path, format!("{what}: {e}")),
    })
}

struct Fields<'a> {
    bytes: &'a [u8],
    big: bool,
}

impl Fields<'_> {
    fn i16(&self, at: usize) -> i16 {
        let b = [self.bytes[at], self.bytes[at + 1]];
        if self.big {
            i16::from_be_bytes(b)
        } else {
            i16::from_le_bytes(b)
        }
    }
    fn i32(&self, at: usize) -> i32 {
        let b: [u8; 4] = self.bytes[at..at + 4].try_into().unwrap_or([0; 4]);
        if self.big {
            i32::from_be_bytes(b)
        } else {
            i32::from_le_bytes(b)
        }
    }
    fn i64(&self, at: usize) -> i64 {
        let b: [u8; 8] = self.bytes[at..at + 8].try_into().unwrap_or([0; 8]);
        if self.big {
            i64::from_be_bytes(b)
        } else {
            i64::from_le_bytes(b)
        }
    }
    fn f32(&self, at: usize) -> f64 {
        let b: [u8; 4] = self.bytes[at..at + 4].try_into().unwrap_or([0; 4]);
        f64::from(if self.big {
            f32::from_be_bytes(b)
        } else {
            f32::from_le_bytes(b)
        })
    }
    fn f64(&self, at: usize) -> f64 {
        let b: [u8; 8] = self.bytes[at..at + 8].try_into().unwrap_or([0; 8]);
        if self.big {
            f64::from_be_bytes(b)
        } else {
            f64::from_le_bytes(b)
        }
    }
    fn text(&self, at: usize, len: usize) -> String {
        let raw = &self.bytes[at..at + len];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(len);
        String::from_utf8_lossy(&raw[..end]).trim().to_string()
    }
}

/// Reads and checks the header of a NIfTI file.
pub fn read_header(path: &Path) -> Result<NiftiHeader> {
    let mut stream = open_stream(path)?;
    let mut bytes = vec![0u8; 540];
    read_full(path, &mut *stream, &mut bytes[..348], "the header")?;
    let size_le = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let size_be = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let (version, big) = match (size_le, size_be) {
        (348, _) => (1, false),
        (_, 348) => (1, true),
        (540, _) => (2, false),
        (_, 540) => (2, true),
        _ => {
            return Err(StudyError::nifti(
                path,
                format!("header size is {size_le}, neither 348 (NIfTI-1) nor 540 (NIfTI-2)"),
            ))
        }
    };
    if version == 2 {
        read_full(
            path,
            &mut *stream,
            &mut bytes[348..540],
            "the NIfTI-2 header",
        )?;
    }
    let f = Fields { bytes: &bytes, big };
    let mut warnings = Vec::new();

    let (
        magic,
        raw_dims,
        pixdim,
        datatype,
        vox_offset,
        slope,
        inter,
        qcode,
        scode,
        quat,
        qoff,
        srows,
        descr,
    ) = if version == 1 {
        let magic = f.text(344, 4);
        let dims: Vec<i64> = (0..8).map(|i| i64::from(f.i16(40 + 2 * i))).collect();
        let pixdim: Vec<f64> = (0..8).map(|i| f.f32(76 + 4 * i)).collect();
        let srows: Vec<f64> = (0..12).map(|i| f.f32(280 + 4 * i)).collect();
        (
            magic,
            dims,
            pixdim,
            f.i16(70),
            f.f32(108),
            f.f32(112),
            f.f32(116),
            i32::from(f.i16(252)),
            i32::from(f.i16(254)),
            [f.f32(256), f.f32(260), f.f32(264)],
            [f.f32(268), f.f32(272), f.f32(276)],
            srows,
            f.text(148, 80),
        )
    } else {
        let magic = f.text(4, 4);
        let dims: Vec<i64> = (0..8).map(|i| f.i64(16 + 8 * i)).collect();
        let pixdim: Vec<f64> = (0..8).map(|i| f.f64(104 + 8 * i)).collect();
        let srows: Vec<f64> = (0..12).map(|i| f.f64(400 + 8 * i)).collect();
        (
            magic,
            dims,
            pixdim,
            f.i16(12),
            f.i64(168) as f64,
            f.f64(176),
            f.f64(184),
            f.i32(344),
            f.i32(348),
            [f.f64(352), f.f64(360), f.f64(368)],
            [f.f64(376), f.f64(384), f.f64(392)],
            srows,
            f.text(240, 80),
        )
    };
    let separate_image = match magic.as_str() {
        "n+1" | "n+2" => false,
        "ni1" | "ni2" => true,
        other => {
            return Err(StudyError::nifti(
                path,
                format!("bad magic {other:?} (expected n+1, ni1, n+2 or ni2)"),
            ));
        }
    };
    let ndim = raw_dims[0];
    if !(1..=7).contains(&ndim) {
        return Err(StudyError::nifti(
            path,
            format!("dim[0] is {ndim}, must be 1..7"),
        ));
    }
    let mut dims = Vec::new();
    for (axis, &d) in raw_dims.iter().enumerate().skip(1).take(ndim as usize) {
        if d < 1 {
            return Err(StudyError::nifti(path, format!("dim[{axis}] is {d}")));
        }
        dims.push(usize::try_from(d).map_err(|_| StudyError::nifti(path, "dimension too large"))?);
    }
    while dims.len() < 3 {
        dims.push(1);
    }
    let mut pd = [0.0; 8];
    for (o, p) in pd.iter_mut().zip(&pixdim) {
        *o = *p;
    }
    for (axis, p) in pd.iter_mut().enumerate().take(4).skip(1) {
        if !p.is_finite() || *p <= 0.0 {
            warnings.push(format!("pixdim[{axis}] is {p}; 1 mm assumed"));
            *p = 1.0;
        }
    }
    if !vox_offset.is_finite() || vox_offset < 0.0 {
        return Err(StudyError::nifti(
            path,
            format!("vox_offset {vox_offset} is invalid"),
        ));
    }

    let ras = if scode > 0 {
        Some(Affine([
            [srows[0], srows[1], srows[2], srows[3]],
            [srows[4], srows[5], srows[6], srows[7]],
            [srows[8], srows[9], srows[10], srows[11]],
            [0.0, 0.0, 0.0, 1.0],
        ]))
    } else if qcode > 0 {
        Some(qform_affine(quat, qoff, &pd))
    } else {
        None
    }
    .filter(|a| a.0.iter().flatten().all(|v| v.is_finite()) && a.inverse().is_some())
    .unwrap_or_else(|| {
        if scode > 0 || qcode > 0 {
            warnings.push("the header's affine is degenerate; pixdim-only geometry used".into());
        }
        base_affine(&dims, &pd)
    });
    // RAS -> LPS: negate the first two rows.
    let mut m = ras.0;
    for row in m.iter_mut().take(2) {
        for v in row.iter_mut() {
            *v = -*v;
        }
    }
    let data_path = if separate_image {
        image_path(path)
    } else {
        path.to_path_buf()
    };
    let header = NiftiHeader {
        path: path.to_path_buf(),
        data_path,
        version,
        big_endian: big,
        dims,
        pixdim: pd,
        datatype,
        vox_offset: if separate_image {
            vox_offset as u64
        } else {
            (vox_offset as u64).max(if version == 1 { 348 } else { 540 })
        },
        scl_slope: slope,
        scl_inter: inter,
        qform_code: qcode,
        sform_code: scode,
        description: descr,
        affine_lps: Affine(m),
        warnings,
    };
    if header.kind().is_none() {
        return Err(StudyError::nifti(
            path,
            format!("datatype {datatype} is not supported"),
        ));
    }
    Ok(header)
}

fn image_path(hdr: &Path) -> PathBuf {
    let s = hdr.to_string_lossy();
    let lower = s.to_ascii_lowercase();
    if lower.ends_with(".hdr.gz") {
        PathBuf::from(format!("{}.img.gz", &s[..s.len() - 7]))
    } else {
        hdr.with_extension("img")
    }
}

/// The qform: quaternion (b, c, d), offsets, and pixdim with qfac in pixdim[0] (NIfTI-1 spec).
fn qform_affine(q: [f64; 3], offset: [f64; 3], pixdim: &[f64; 8]) -> Affine {
    let [b, c, d] = q;
    let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
    let qfac = if pixdim[0] < 0.0 { -1.0 } else { 1.0 };
    let r = [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - b * b - c * c,
        ],
    ];
    let zooms = [pixdim[1], pixdim[2], pixdim[3] * qfac];
    let mut m = [[0.0; 4]; 4];
    for row in 0..3 {
        for col in 0..3 {
            m[row][col] = r[row][col] * zooms[col];
        }
        m[row][3] = offset[row];
    }
    m[3] = [0.0, 0.0, 0.0, 1.0];
    Affine(m)
}

/// nibabel's fallback when neither code is set: the Analyze orientation (x flipped), centred.
fn base_affine(dims: &[usize], pixdim: &[f64; 8]) -> Affine {
    let (zx, zy, zz) = (pixdim[1], pixdim[2], pixdim[3]);
    let c = |n: usize, z: f64| (n as f64 - 1.0) / 2.0 * z;
    Affine([
        [-zx, 0.0, 0.0, c(dims[0], zx)],
        [0.0, zy, 0.0, -c(dims[1], zy)],
        [0.0, 0.0, zz, -c(dims[2], zz)],
        [0.0, 0.0, 0.0, 1.0],
    ])
}

/// Reads volume `t` (0-based) of a NIfTI file. Slices are handed to `observer` in file order as
/// they are read.
pub fn load(header: &NiftiHeader, t: usize, observer: &dyn LoadObserver) -> Result<Volume> {
    let path = &header.path;
    let volumes = header.volumes();
    if t >= volumes {
        return Err(StudyError::nifti(
            path,
            format!("volume {t} requested, the file has {volumes}"),
        ));
    }
    let (kind, file_bytes) = header.kind().ok_or_else(|| {
        StudyError::nifti(
            path,
            format!("datatype {} is not supported", header.datatype),
        )
    })?;
    let [nx, ny, nz] = [header.dims[0], header.dims[1], header.dims[2]];
    let slice_len = nx
        .checked_mul(ny)
        .ok_or_else(|| StudyError::nifti(path, "dimensions overflow"))?;
    let voxels = slice_len
        .checked_mul(nz)
        .ok_or_else(|| StudyError::nifti(path, "dimensions overflow"))?;
    let volume_file_bytes = (voxels as u64).saturating_mul(file_bytes as u64);
    check_alloc(
        path,
        "the volume",
        (voxels as u64).saturating_mul(kind.bytes_per_voxel() as u64),
    )?;
    // The file must be able to hold what the header promises before we allocate for it: an
    // uncompressed one byte for byte; a gzip one, at most DEFLATE_MAX_RATIO times its size.
    let len = std::fs::metadata(&header.data_path)
        .map_err(|e| StudyError::io(&header.data_path, e))?
        .len();
    let needed = header
        .vox_offset
        .saturating_add(volume_file_bytes.saturating_mul(t as u64 + 1));
    if !is_gz(&header.data_path) {
        if len < needed {
            return Err(StudyError::nifti(
                &header.data_path,
                format!("file is truncated: {len} bytes, the header needs {needed}"),
            ));
        }
    } else if needed > len.saturating_mul(DEFLATE_MAX_RATIO) {
        return Err(StudyError::nifti(
            &header.data_path,
            format!(
                "file is truncated: {len} bytes of gzip hold at most {} bytes, the header needs \
                 {needed}",
                len.saturating_mul(DEFLATE_MAX_RATIO)
            ),
        ));
    }

    let mut stream = open_stream(&header.data_path)?;
    // Skip the header, extensions and earlier volumes.
    let to_skip = header.vox_offset + volume_file_bytes * t as u64;
    let skipped = std::io::copy(&mut (&mut stream).take(to_skip), &mut std::io::sink())
        .map_err(|e| StudyError::nifti(path, e.to_string()))?;
    if skipped < to_skip {
        return Err(StudyError::nifti(
            path,
            "file is truncated before the voxel data",
        ));
    }

    let layout = VolumeLayout {
        dims: [nx, ny, nz],
        affine: header.affine_lps,
        kind,
        modality: ModalityTransform::Rescale(header.rescale()),
        photometric: if kind == VoxelKind::Rgb8 {
            Photometric::Rgb
        } else {
            Photometric::Monochrome2
        },
        windows: Vec::new(),
        voi_function: Default::default(),
        voi_lut: None,
        padding: None,
    };
    observer.started(&layout);
    let mut data = VoxelData::zeroed(kind, voxels);
    let mut scratch = Vec::new();
    for (k, mut dst) in data.slices_mut(slice_len).into_iter().enumerate() {
        if observer.cancelled() {
            return Err(StudyError::Cancelled);
        }
        read_slice(
            header,
            &mut *stream,
            &mut dst,
            slice_len,
            file_bytes,
            &mut scratch,
        )?;
        observer.slice_ready(k, k + 1, nz, dst.as_slice());
    }
    Ok(layout.into_volume(data, Vec::new(), Vec::new()))
}

fn read_slice(
    header: &NiftiHeader,
    stream: &mut dyn Read,
    dst: &mut VoxelSliceMut<'_>,
    n: usize,
    file_bytes: usize,
    scratch: &mut Vec<u8>,
) -> Result<()> {
    let path = &header.path;
    let what = "the voxel data";
    match (header.datatype, dst) {
        // Types we widen or narrow go through a scratch buffer.
        (256, VoxelSliceMut::I16(out)) => {
            scratch.resize(n, 0);
            read_full(path, stream, scratch, what)?;
            for (o, b) in out.iter_mut().zip(scratch.iter()) {
                *o = i16::from(*b as i8);
            }
        }
        (64, VoxelSliceMut::F32(out)) => {
            scratch.resize(n * 8, 0);
            read_full(path, stream, scratch, what)?;
            for (o, c) in out.iter_mut().zip(scratch.chunks_exact(8)) {
                let b: [u8; 8] = c.try_into().unwrap_or([0; 8]);
                *o = if header.big_endian {
                    f64::from_be_bytes(b)
                } else {
                    f64::from_le_bytes(b)
                } as f32;
            }
        }
        (_, dst) => {
            // Same element type as the file: read straight into the volume, then fix byte order.
            let bytes = dst.bytes_mut();
            read_full(path, stream, bytes, what)?;
            let native_big = cfg!(target_endian = "big");
            if header.big_endian != native_big && file_bytes > 1 && header.datatype != 128 {
                for chunk in bytes.chunks_exact_mut(file_bytes) {
                    chunk.reverse();
                }
            }
        }
    }
    Ok(())
}
