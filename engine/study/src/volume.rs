//! A loaded volume: voxels in acquisition order, their voxel -> LPS affine, and what the pixel
//! pipeline needs to turn stored values into display values.

use crate::geometry::Affine;
use crate::pixel::{auto_window, Lut, Photometric, Rescale, VoiFunction, Window};

/// Stored voxel values, column fastest, then row, then slice (the order DICOM and NIfTI store them).
/// RGB data is interleaved, three bytes a voxel.
#[derive(Clone, Debug, PartialEq)]
pub enum VoxelData {
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    F32(Vec<f32>),
    Rgb8(Vec<u8>),
}

/// The element type a [`VoxelData`] holds; decided from the headers before any pixel is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoxelKind {
    U8,
    I16,
    U16,
    I32,
    U32,
    F32,
    Rgb8,
}

impl VoxelKind {
    pub fn bytes_per_voxel(self) -> usize {
        match self {
            VoxelKind::U8 => 1,
            VoxelKind::I16 | VoxelKind::U16 => 2,
            VoxelKind::I32 | VoxelKind::U32 | VoxelKind::F32 => 4,
            VoxelKind::Rgb8 => 3,
        }
    }

    pub fn channels(self) -> usize {
        if self == VoxelKind::Rgb8 {
            3
        } else {
            1
        }
    }
}

impl VoxelData {
    /// A zero-filled buffer of `voxels` voxels. Callers check the size against the allocation limit
    /// first.
    pub fn zeroed(kind: VoxelKind, voxels: usize) -> Self {
        match kind {
            VoxelKind::U8 => VoxelData::U8(vec![0; voxels]),
            VoxelKind::I16 => VoxelData::I16(vec![0; voxels]),
            VoxelKind::U16 => VoxelData::U16(vec![0; voxels]),
            VoxelKind::I32 => VoxelData::I32(vec![0; voxels]),
            VoxelKind::U32 => VoxelData::U32(vec![0; voxels]),
            VoxelKind::F32 => VoxelData::F32(vec![0.0; voxels]),
            VoxelKind::Rgb8 => VoxelData::Rgb8(vec![0; voxels * 3]),
        }
    }

    pub fn kind(&self) -> VoxelKind {
        match self {
            VoxelData::U8(_) => VoxelKind::U8,
            VoxelData::I16(_) => VoxelKind::I16,
            VoxelData::U16(_) => VoxelKind::U16,
            VoxelData::I32(_) => VoxelKind::I32,
            VoxelData::U32(_) => VoxelKind::U32,
            VoxelData::F32(_) => VoxelKind::F32,
            VoxelData::Rgb8(_) => VoxelKind::Rgb8,
        }
    }

    /// Number of voxels (not samples).
    pub fn len(&self) -> usize {
        match self {
            VoxelData::U8(v) => v.len(),
            VoxelData::I16(v) => v.len(),
            VoxelData::U16(v) => v.len(),
            VoxelData::I32(v) => v.len(),
            VoxelData::U32(v) => v.len(),
            VoxelData::F32(v) => v.len(),
            VoxelData::Rgb8(v) => v.len() / 3,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored value of voxel `index` (for RGB, the luminance).
    #[inline]
    pub fn get(&self, index: usize) -> f64 {
        match self {
            VoxelData::U8(v) => f64::from(v[index]),
            VoxelData::I16(v) => f64::from(v[index]),
            VoxelData::U16(v) => f64::from(v[index]),
            VoxelData::I32(v) => f64::from(v[index]),
            VoxelData::U32(v) => f64::from(v[index]),
            VoxelData::F32(v) => f64::from(v[index]),
            VoxelData::Rgb8(v) => {
                let p = &v[index * 3..index * 3 + 3];
                0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
            }
        }
    }

    /// Raw bytes of the buffer in native endianness, e.g. for a GPU upload.
    pub fn as_bytes(&self) -> &[u8] {
        self.view(0, self.len()).as_bytes()
    }
}

/// How stored values become modality values (HU for CT).
#[derive(Clone, Debug, PartialEq)]
pub enum ModalityTransform {
    Rescale(Rescale),
    Lut(Lut),
}

impl ModalityTransform {
    #[inline]
    pub fn apply(&self, stored: f64) -> f64 {
        match self {
            ModalityTransform::Rescale(r) => r.apply(stored),
            ModalityTransform::Lut(lut) => lut.lookup(stored),
        }
    }
}

/// Everything about a volume except its voxels: known before the first slice is decoded.
#[derive(Clone, Debug)]
pub struct VolumeLayout {
    /// Columns, rows, slices.
    pub dims: [usize; 3],
    pub affine: Affine,
    pub kind: VoxelKind,
    pub modality: ModalityTransform,
    pub photometric: Photometric,
    pub windows: Vec<Window>,
    pub voi_function: VoiFunction,
    pub voi_lut: Option<Lut>,
    pub padding: Option<f64>,
}

impl VolumeLayout {
    /// The volume once its voxels are in.
    pub fn into_volume(
        self,
        voxels: VoxelData,
        missing_slices: Vec<usize>,
        load_warnings: Vec<String>,
    ) -> Volume {
        Volume {
            layout: self,
            voxels,
            missing_slices,
            load_warnings,
        }
    }
}

/// One loaded 3D volume (one time point of a 4D series): its layout (geometry and pixel pipeline,
/// reachable directly as `volume.dims`, `volume.affine`, ...) and its voxels.
#[derive(Clone, Debug)]
pub struct Volume {
    pub layout: VolumeLayout,
    pub voxels: VoxelData,
    /// Slices that could not be decoded (left at zero).
    pub missing_slices: Vec<usize>,
    /// Why those slices are missing, and other problems met while reading pixels.
    pub load_warnings: Vec<String>,
}

impl std::ops::Deref for Volume {
    type Target = VolumeLayout;

    fn deref(&self) -> &VolumeLayout {
        &self.layout
    }
}

impl Volume {
    pub fn voxel_count(&self) -> usize {
        self.dims[0] * self.dims[1] * self.dims[2]
    }

    pub fn slice_len(&self) -> usize {
        self.dims[0] * self.dims[1]
    }

    #[inline]
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        (k * self.dims[1] + j) * self.dims[0] + i
    }

    /// Modality value (HU for CT) of voxel `index`.
    #[inline]
    pub fn modality_value(&self, index: usize) -> f64 {
        self.modality.apply(self.voxels.get(index))
    }

    pub fn is_colour(&self) -> bool {
        self.photometric == Photometric::Rgb
    }

    /// Smallest and largest modality value over every voxel.
    pub fn value_range(&self) -> [f64; 2] {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        // Range of the stored values first, then one modality transform of each end.
        let mut see = |stored: f64| {
            if !stored.is_finite() {
                return;
            }
            lo = lo.min(stored);
            hi = hi.max(stored);
        };
        match &self.voxels {
            VoxelData::U8(v) => v.iter().for_each(|&x| see(f64::from(x))),
            VoxelData::I16(v) => v.iter().for_each(|&x| see(f64::from(x))),
            VoxelData::U16(v) => v.iter().for_each(|&x| see(f64::from(x))),
            VoxelData::I32(v) => v.iter().for_each(|&x| see(f64::from(x))),
            VoxelData::U32(v) => v.iter().for_each(|&x| see(f64::from(x))),
            VoxelData::F32(v) => v.iter().for_each(|&x| see(f64::from(x))),
            VoxelData::Rgb8(_) => {
                lo = 0.0;
                hi = 255.0;
            }
        }
        if lo > hi {
            return [0.0, 0.0];
        }
        match &self.modality {
            ModalityTransform::Rescale(r) => {
                let (a, b) = (r.apply(lo), r.apply(hi));
                [a.min(b), a.max(b)]
            }
            ModalityTransform::Lut(lut) => {
                let (a, b) = lut.output_range();
                [a, b]
            }
        }
    }

    /// The window shown when the series opens: the file's, else a robust automatic window. (A VOI
    /// LUT from the file is applied by the renderer in place of this window when present.)
    pub fn default_window(&self) -> Window {
        self.windows
            .first()
            .copied()
            .unwrap_or_else(|| self.auto_window())
    }

    /// Robust automatic window (0.5 %..99.5 % percentiles of a sample of the modality values).
    pub fn auto_window(&self) -> Window {
        if self.is_colour() {
            return Window::new(127.5, 256.0);
        }
        let n = self.voxels.len();
        let step = (n / 200_000).max(1);
        let padding = self.padding;
        let sample = (0..n).step_by(step).filter_map(|idx| {
            let stored = self.voxels.get(idx);
            (Some(stored) != padding).then(|| self.modality.apply(stored))
        });
        auto_window(sample, None).unwrap_or(Window::new(0.5, 1.0))
    }
}

/// A mutable view of one slice of a [`VoxelData`], for loaders that fill slices in parallel.
pub enum VoxelSliceMut<'a> {
    U8(&'a mut [u8]),
    I16(&'a mut [i16]),
    U16(&'a mut [u16]),
    I32(&'a mut [i32]),
    U32(&'a mut [u32]),
    F32(&'a mut [f32]),
    Rgb8(&'a mut [u8]),
}

/// Shortens the lifetime of a mutable slice view so it can be handed on and used again.
pub fn reborrow<'b>(v: &'b mut VoxelSliceMut<'_>) -> VoxelSliceMut<'b> {
    match v {
        VoxelSliceMut::U8(s) => VoxelSliceMut::U8(s),
        VoxelSliceMut::I16(s) => VoxelSliceMut::I16(s),
        VoxelSliceMut::U16(s) => VoxelSliceMut::U16(s),
        VoxelSliceMut::I32(s) => VoxelSliceMut::I32(s),
        VoxelSliceMut::U32(s) => VoxelSliceMut::U32(s),
        VoxelSliceMut::F32(s) => VoxelSliceMut::F32(s),
        VoxelSliceMut::Rgb8(s) => VoxelSliceMut::Rgb8(s),
    }
}

/// A read-only view of one slice, handed to progress observers as slices become ready.
#[derive(Clone, Copy)]
pub enum VoxelSlice<'a> {
    U8(&'a [u8]),
    I16(&'a [i16]),
    U16(&'a [u16]),
    I32(&'a [i32]),
    U32(&'a [u32]),
    F32(&'a [f32]),
    Rgb8(&'a [u8]),
}

impl<'a> VoxelSlice<'a> {
    /// Raw bytes in native endianness (RGB interleaved).
    pub fn as_bytes(&self) -> &'a [u8] {
        fn bytes<T>(v: &[T]) -> &[u8] {
            // SAFETY: plain integer and float element types without padding.
            unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
        }
        match *self {
            VoxelSlice::U8(v) | VoxelSlice::Rgb8(v) => v,
            VoxelSlice::I16(v) => bytes(v),
            VoxelSlice::U16(v) => bytes(v),
            VoxelSlice::I32(v) => bytes(v),
            VoxelSlice::U32(v) => bytes(v),
            VoxelSlice::F32(v) => bytes(v),
        }
    }
}

impl VoxelSlice<'_> {
    /// An owned copy, e.g. to send to another thread.
    pub fn to_owned_data(&self) -> VoxelData {
        match self {
            VoxelSlice::U8(v) => VoxelData::U8(v.to_vec()),
            VoxelSlice::I16(v) => VoxelData::I16(v.to_vec()),
            VoxelSlice::U16(v) => VoxelData::U16(v.to_vec()),
            VoxelSlice::I32(v) => VoxelData::I32(v.to_vec()),
            VoxelSlice::U32(v) => VoxelData::U32(v.to_vec()),
            VoxelSlice::F32(v) => VoxelData::F32(v.to_vec()),
            VoxelSlice::Rgb8(v) => VoxelData::Rgb8(v.to_vec()),
        }
    }

    /// Stored value of voxel `index` within the slice (RGB: luminance).
    pub fn get(&self, index: usize) -> f64 {
        match self {
            VoxelSlice::U8(v) => f64::from(v[index]),
            VoxelSlice::I16(v) => f64::from(v[index]),
            VoxelSlice::U16(v) => f64::from(v[index]),
            VoxelSlice::I32(v) => f64::from(v[index]),
            VoxelSlice::U32(v) => f64::from(v[index]),
            VoxelSlice::F32(v) => f64::from(v[index]),
            VoxelSlice::Rgb8(v) => {
                let p = &v[index * 3..index * 3 + 3];
                0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
            }
        }
    }
}

impl<'a> VoxelSliceMut<'a> {
    pub fn as_slice(&self) -> VoxelSlice<'_> {
        match self {
            VoxelSliceMut::U8(v) => VoxelSlice::U8(v),
            VoxelSliceMut::I16(v) => VoxelSlice::I16(v),
            VoxelSliceMut::U16(v) => VoxelSlice::U16(v),
            VoxelSliceMut::I32(v) => VoxelSlice::I32(v),
            VoxelSliceMut::U32(v) => VoxelSlice::U32(v),
            VoxelSliceMut::F32(v) => VoxelSlice::F32(v),
            VoxelSliceMut::Rgb8(v) => VoxelSlice::Rgb8(v),
        }
    }

    /// Raw bytes of the slice, for readers that fill it straight from a file.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        fn bytes<T>(v: &mut [T]) -> &mut [u8] {
            // SAFETY: plain integer and float element types; any byte pattern is a valid value.
            unsafe {
                std::slice::from_raw_parts_mut(
                    v.as_mut_ptr().cast::<u8>(),
                    std::mem::size_of_val(v),
                )
            }
        }
        match self {
            VoxelSliceMut::U8(v) | VoxelSliceMut::Rgb8(v) => v,
            VoxelSliceMut::I16(v) => bytes(v),
            VoxelSliceMut::U16(v) => bytes(v),
            VoxelSliceMut::I32(v) => bytes(v),
            VoxelSliceMut::U32(v) => bytes(v),
            VoxelSliceMut::F32(v) => bytes(v),
        }
    }
}

impl VoxelData {
    /// A view of voxels `start..start + len` (whole buffer: `0..len()`).
    pub fn view(&self, start: usize, len: usize) -> VoxelSlice<'_> {
        let r = start..start + len;
        match self {
            VoxelData::U8(v) => VoxelSlice::U8(&v[r]),
            VoxelData::I16(v) => VoxelSlice::I16(&v[r]),
            VoxelData::U16(v) => VoxelSlice::U16(&v[r]),
            VoxelData::I32(v) => VoxelSlice::I32(&v[r]),
            VoxelData::U32(v) => VoxelSlice::U32(&v[r]),
            VoxelData::F32(v) => VoxelSlice::F32(&v[r]),
            VoxelData::Rgb8(v) => VoxelSlice::Rgb8(&v[start * 3..(start + len) * 3]),
        }
    }

    /// Splits the buffer into per-slice mutable views of `voxels_per_slice` voxels each.
    pub fn slices_mut(&mut self, voxels_per_slice: usize) -> Vec<VoxelSliceMut<'_>> {
        let n = voxels_per_slice.max(1);
        match self {
            VoxelData::U8(v) => v.chunks_mut(n).map(VoxelSliceMut::U8).collect(),
            VoxelData::I16(v) => v.chunks_mut(n).map(VoxelSliceMut::I16).collect(),
            VoxelData::U16(v) => v.chunks_mut(n).map(VoxelSliceMut::U16).collect(),
            VoxelData::I32(v) => v.chunks_mut(n).map(VoxelSliceMut::I32).collect(),
            VoxelData::U32(v) => v.chunks_mut(n).map(VoxelSliceMut::U32).collect(),
            VoxelData::F32(v) => v.chunks_mut(n).map(VoxelSliceMut::F32).collect(),
            VoxelData::Rgb8(v) => v.chunks_mut(n * 3).map(VoxelSliceMut::Rgb8).collect(),
        }
    }
}

/// Receives loading progress. Methods are called from loader threads, in any slice order (the
/// middle slice comes first, since that is what a viewer shows on open).
pub trait LoadObserver: Sync {
    /// Called once, before any slice: what the volume will be (size, element type, geometry,
    /// pixel pipeline), so a viewer can allocate its texture and show slices as they come.
    fn started(&self, _layout: &VolumeLayout) {}
    /// Slice `k` of `total` is decoded; `done` slices are ready so far.
    fn slice_ready(&self, _k: usize, _done: usize, _total: usize, _slice: VoxelSlice<'_>) {}
    /// Return true to stop loading; the loader then returns [`crate::StudyError::Cancelled`].
    fn cancelled(&self) -> bool {
        false
    }
}

/// An observer that ignores progress.
pub struct NoProgress;
impl LoadObserver for NoProgress {}
