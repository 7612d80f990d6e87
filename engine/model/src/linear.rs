//! Linear layers, held the way the precision asks: Candle's `Linear` (GPUs, training, f16),
//! a CPU matrix in f32 or bf16 multiplied through this crate's kernels with f32 activations, or a
//! matrix quantized at load (q8_0, q4_k) multiplied by Candle's quantized kernels, or, for
//! q4_k on a CPU with AVX-512 VNNI, by [`crate::kernels::q4k`].
//!
//! On the CPU, products of many rows (the prefill) go to the AVX-512 panel kernel when the CPU
//! has it, products of a few rows (decoding) to the bandwidth-bound GEMV; see [`crate::kernels`].
//! Where the CPU has AVX-512F, an f32 matrix is repacked at load into that kernel's panels (and a
//! bf16 one into panels of bf16 pairs with AVX512-BF16 and no AMX), which both phases read
//! ([`crate::kernels::panels`]); the checkpoint's copy is let go as each layer is built.
//! Setting `GROUNDGLASS_NO_AVX512` keeps all of it off AVX-512, `GROUNDGLASS_NO_PANELS` keeps the
//! matrices row-major (for comparisons).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Module, Shape, Tensor};

use crate::fast_gelu::{differentiable, f32_slice};
use crate::kernels::panels::{PairPanels, PanelMatrix};
use crate::kernels::{amx, gemv, gemv_pairs, matmul, q4k, q8_0, tiled};

/// Rows below this take the GEMV (packing the weight would cost more than it saves).
const MIN_ROWS: usize = 16;

/// A tied output projection gets a copy of the embedding table in panels up to this size
/// (the 107M benchmark model's 98 MB); beyond it, it reads the table row by row, as the lookup does.
const TIED_PANELS_MAX_BYTES: usize = 512 << 20;

/// Matrices already quantized, by canonical name (`language_model.layers.0.mlp.up_proj.weight`).
pub type QuantizedMatrices = HashMap<String, Arc<QTensor>>;

/// How the linear layers of one part of the model hold their weights.
#[derive(Clone, Debug)]
pub struct WeightPlan {
    /// The dtype weight matrices are held in when not quantized.
    pub matrices: DType,
    /// Matrices the checkpoint reader quantized (taken instead of the builder's). Each is
    /// handed out once and leaves the map: a layer that repacks it lets the blocks go at once.
    quantized: Arc<Mutex<QuantizedMatrices>>,
    /// The checkpoint's tensors the layers read, when they are a [`CheckpointTensors`]: a layer
    /// that repacks its weight into panels lets the tensor go from there at once, so that the
    /// checkpoint and its repacked copy are not both held until the whole model is built.
    tensors: Option<CheckpointTensors>,
}

/// A checkpoint's tensors by name, shared by the variable builder that reads them (a
/// [`candle_nn::var_builder::SimpleBackend`] with the semantics of Candle's `HashMap` backend) and
/// the plan, which drops the matrices the layers repacked.
#[derive(Clone, Debug, Default)]
pub struct CheckpointTensors(Arc<Mutex<HashMap<String, Tensor>>>);

impl CheckpointTensors {
    pub fn new(tensors: HashMap<String, Tensor>) -> Self {
        CheckpointTensors(Arc::new(Mutex::new(tensors)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tensor>> {
        // A poisoned lock still holds whole entries (each change is one step).
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn named(&self, name: &str) -> candle_core::Result<Tensor> {
        self.lock().get(name).cloned().ok_or_else(|| {
            candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            }
            .bt()
        })
    }
}

impl candle_nn::var_builder::SimpleBackend for CheckpointTensors {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.named(name)?;
        if tensor.shape() != &shape {
            Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: shape,
                got: tensor.shape().clone(),
            }
            .bt())?
        }
        tensor.to_device(device)?.to_dtype(dtype)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.named(name)?.to_device(device)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }
}

impl WeightPlan {
    /// Matrices at `matrices`, those in `quantized` taken as they are.
    pub fn new(matrices: DType, quantized: QuantizedMatrices) -> Self {
        WeightPlan {
            matrices,
            quantized: Arc::new(Mutex::new(quantized)),
            tensors: None,
        }
    }

    /// The plan for layers read from `tensors`, which lets their repacked weights go.
    pub fn reading(mut self, tensors: CheckpointTensors) -> Self {
        self.tensors = Some(tensors);
        self
    }

    /// Drops the checkpoint's tensor `name` (a layer holds it in another form now).
    pub fn release(&self, name: &str) {
        if let Some(tensors) = &self.tensors {
            tensors.lock().remove(name);
        }
    }

    /// Weights at one dtype, nothing quantized (training, and the uniform dtypes).
    pub fn uniform(dtype: DType) -> Self {
        WeightPlan::new(dtype, HashMap::new())
    }

    /// The same plan without quantization (parts kept at full width, e.g. the vision tower).
    pub fn unquantized(&self) -> Self {
        WeightPlan {
            tensors: self.tensors.clone(),
            ..WeightPlan::uniform(self.matrices)
        }
    }

    /// The quantized matrix `name`, when the reader made it (once: it leaves the plan).
    pub fn take_quantized(&self, name: &str) -> Option<Arc<QTensor>> {
        // A poisoned lock still holds whole entries (removal is one step).
        let mut map = self.quantized.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(name)
    }
}

/// The name a checkpoint tensor (canonical `name`, shape `dims`) is quantized to `q` under, if it
/// is: the text decoder's layer matrices and the output projection as themselves, a tied
/// embedding table as the projection's copy (`lm_head.weight`); only matrices whose input width
/// is a multiple of the type's block.
pub fn quantized_as(name: &str, dims: &[usize], q: GgmlDType, tied: bool) -> Option<String> {
    let [_, cols] = dims else { return None };
    if !cols.is_multiple_of(q.block_size()) {
        return None;
    }
    if (name.starts_with("language_model.layers.") && name.ends_with(".weight"))
        || name == "lm_head.weight"
    {
        Some(name.to_string())
    } else if tied && name == "language_model.embed_tokens.weight" {
        // The lookup keeps the table; the projection gets a quantized copy.
        Some("lm_head.weight".to_string())
    } else {
        None
    }
}

/// `x · Wᵀ + b`, as `candle_nn::Linear`.
#[derive(Clone, Debug)]
pub struct FastLinear {
    weight: Weight,
    /// At the activations' dtype.
    bias: Option<Tensor>,
}

#[derive(Clone, Debug)]
enum Weight {
    /// At the activations' dtype, multiplied by Candle (GPUs, f16, training's gradients).
    Candle(Tensor),
    /// A contiguous CPU matrix (N, K), f32 or bf16, activations f32: this crate's kernels.
    Cpu(Tensor),
    /// An f32 CPU matrix in panels on a CPU with AVX-512F (activations f32): the prefill's
    /// kernel without packing, and the panel GEMV for decoding.
    Panels(Arc<PanelMatrix>),
    /// A bf16 CPU matrix in pair panels on a CPU with AVX512-BF16 and no AMX (activations f32).
    PairPanels(Arc<PairPanels>),
    /// Quantized, through Candle's quantized matmul (activations f32).
    Quantized(QMatMul),
    /// q4_k repacked for this crate's VNNI kernel (activations f32, CPU).
    PackedQ4K(Arc<q4k::PackedQ4K>),
    /// q8_0 repacked for this crate's VNNI kernel (activations f32, CPU).
    PackedQ8_0(Arc<q8_0::PackedQ8_0>),
}

impl FastLinear {
    /// A layer around a weight (N, K) and bias as they are, picking the CPU kernels when they apply
    /// (weight and activations on the CPU, weight f32 or bf16, activations `activations`).
    pub fn new(
        weight: Tensor,
        bias: Option<Tensor>,
        activations: DType,
    ) -> candle_core::Result<Self> {
        let cpu = matches!(weight.device(), Device::Cpu)
            && activations == DType::F32
            && matches!(weight.dtype(), DType::F32 | DType::BF16)
            && weight.rank() == 2;
        let weight = if cpu && weight.dtype() == DType::F32 && panels_apply(&weight) {
            Weight::Panels(Arc::new(panels_of(&weight)?))
        } else if cpu && weight.dtype() == DType::BF16 && pair_panels_apply(&weight) {
            Weight::PairPanels(Arc::new(pair_panels_of(&weight)?))
        } else if cpu {
            Weight::Cpu(weight.contiguous()?)
        } else {
            Weight::Candle(weight.to_dtype(activations)?)
        };
        let bias = bias.map(|b| b.to_dtype(activations)).transpose()?;
        Ok(FastLinear { weight, bias })
    }

    /// An output projection tied to the embedding `table`: as [`FastLinear::new`], except that a
    /// table above [`TIED_PANELS_MAX_BYTES`] is read in place rather than copied into panels.
    pub fn tied(table: Tensor, activations: DType) -> candle_core::Result<Self> {
        let bytes = table.elem_count() * table.dtype().size_in_bytes();
        if bytes > TIED_PANELS_MAX_BYTES
            && matches!(table.device(), Device::Cpu)
            && activations == DType::F32
            && table.rank() == 2
        {
            return Ok(FastLinear {
                weight: Weight::Cpu(table.contiguous()?),
                bias: None,
            });
        }
        FastLinear::new(table, None, activations)
    }

    /// A layer around a quantized matrix (activations f32). A q4_k or q8_0 matrix on a CPU
    /// with AVX-512 VNNI is repacked for [`q4k`] or [`q8_0`] (its blocks are let go);
    /// everything else goes to Candle's quantized kernels.
    pub fn quantized(weight: Arc<QTensor>, bias: Option<Tensor>) -> candle_core::Result<Self> {
        let bias = bias.map(|b| b.to_dtype(DType::F32)).transpose()?;
        if let Some(weight) = repacked(&weight)? {
            return Ok(FastLinear { weight, bias });
        }
        Ok(FastLinear {
            weight: Weight::Quantized(QMatMul::from_arc(weight)?),
            bias,
        })
    }

    /// Loads `weight` (and `bias`) from `vb` per `plan`; activations are `vb`'s dtype.
    pub fn load(
        in_dim: usize,
        out_dim: usize,
        with_bias: bool,
        vb: candle_nn::VarBuilder,
        plan: &WeightPlan,
    ) -> candle_core::Result<Self> {
        let bias_of = |vb: &candle_nn::VarBuilder| -> candle_core::Result<Option<Tensor>> {
            if !with_bias {
                return Ok(None);
            }
            let bound = 1.0 / (in_dim as f64).sqrt();
            let init = candle_nn::Init::Uniform {
                lo: -bound,
                up: bound,
            };
            Ok(Some(vb.get_with_hints(out_dim, "bias", init)?))
        };
        if let Some(q) = plan.take_quantized(&format!("{}.weight", vb.prefix())) {
            return FastLinear::quantized(q, bias_of(&vb)?);
        }
        // The initialisers matter only for a VarMap-backed builder (training from scratch), and
        // are candle_nn::linear's.
        let weight = vb.get_with_hints_dtype(
            (out_dim, in_dim),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
            plan.matrices,
        )?;
        let layer = FastLinear::new(weight, bias_of(&vb)?, vb.dtype())?;
        if layer.repacked() {
            plan.release(&format!("{}.weight", vb.prefix()));
        }
        Ok(layer)
    }

    /// Whether the weight is held in a layout of this crate's (not the tensor it was given).
    pub fn repacked(&self) -> bool {
        matches!(
            self.weight,
            Weight::Panels(_)
                | Weight::PairPanels(_)
                | Weight::PackedQ4K(_)
                | Weight::PackedQ8_0(_)
        )
    }

    /// Whether the weight is `tensor` itself (a tied projection reading the embedding table).
    pub fn shares(&self, tensor: &Tensor) -> bool {
        match &self.weight {
            Weight::Candle(w) | Weight::Cpu(w) => w.id() == tensor.id(),
            Weight::Quantized(_)
            | Weight::Panels(_)
            | Weight::PairPanels(_)
            | Weight::PackedQ4K(_)
            | Weight::PackedQ8_0(_) => false,
        }
    }

    /// Bytes the weight takes in memory.
    pub fn weight_bytes(&self) -> usize {
        match &self.weight {
            Weight::Candle(w) | Weight::Cpu(w) => w.elem_count() * w.dtype().size_in_bytes(),
            Weight::Quantized(QMatMul::QTensor(q)) => q.storage_size_in_bytes(),
            Weight::Quantized(QMatMul::Tensor(w) | QMatMul::TensorF16(w)) => {
                w.elem_count() * w.dtype().size_in_bytes()
            }
            Weight::Panels(w) => w.bytes(),
            Weight::PairPanels(w) => w.bytes(),
            Weight::PackedQ4K(w) => w.bytes(),
            Weight::PackedQ8_0(w) => w.bytes(),
        }
    }
}

/// Whether an f32 CPU weight goes into panels: the CPU runs the panel kernels, and the weight is
/// not being trained (a variable's values change under it; training needs Candle's gradients).
/// `GROUNDGLASS_NO_PANELS` keeps weights row-major (for comparisons).
fn panels_apply(weight: &Tensor) -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let off = *OFF.get_or_init(|| std::env::var_os("GROUNDGLASS_NO_PANELS").is_some());
    !off && matmul::available() && !differentiable() && !weight.is_variable() && weight.rank() == 2
}

/// Whether a bf16 CPU weight goes into pair panels: as [`panels_apply`], on a CPU whose bf16
/// products are `vdpbf16ps` in both phases (AVX512-BF16; with AMX the prefill takes AMX's tiles
/// from the row-major weight, and `GROUNDGLASS_EXACT_BF16` asks for the widening kernels).
fn pair_panels_apply(weight: &Tensor) -> bool {
    panels_apply(weight) && matmul::bf16_available() && gemv_pairs::available() && !amx::available()
}

/// A bf16 CPU matrix (N, K) repacked into pair panels.
fn pair_panels_of(weight: &Tensor) -> candle_core::Result<PairPanels> {
    let (n, k) = weight.dims2()?;
    let weight = weight.contiguous()?;
    let (storage, layout) = weight.storage_and_layout();
    let (candle_core::Storage::Cpu(CpuStorage::BF16(values)), Some((from, to))) =
        (&*storage, layout.contiguous_offsets())
    else {
        candle_core::bail!("pair panels: a contiguous bf16 CPU matrix only");
    };
    Ok(PairPanels::from_rows(&values[from..to], n, k))
}

/// An f32 CPU matrix (N, K) repacked into panels.
fn panels_of(weight: &Tensor) -> candle_core::Result<PanelMatrix> {
    let (n, k) = weight.dims2()?;
    let weight = weight.contiguous()?;
    let (storage, layout) = weight.storage_and_layout();
    let (candle_core::Storage::Cpu(CpuStorage::F32(values)), Some((from, to))) =
        (&*storage, layout.contiguous_offsets())
    else {
        candle_core::bail!("panels: a contiguous f32 CPU matrix only");
    };
    Ok(PanelMatrix::from_rows(&values[from..to], n, k))
}

impl Module for FastLinear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = match &self.weight {
            Weight::Candle(w) => plain(x, w)?,
            Weight::Quantized(q) => q.forward(x)?,
            Weight::PackedQ4K(w) => x
                .to_dtype(DType::F32)?
                .contiguous()?
                .apply_op1_no_bwd(&MatmulRepacked::Q4K(w.clone()))?,
            Weight::PackedQ8_0(w) => x
                .to_dtype(DType::F32)?
                .contiguous()?
                .apply_op1_no_bwd(&MatmulRepacked::Q8_0(w.clone()))?,
            Weight::Panels(w) => x
                .to_dtype(DType::F32)?
                .contiguous()?
                .apply_op1_no_bwd(&MatmulRepacked::Panels(w.clone()))?,
            Weight::PairPanels(w) => x
                .to_dtype(DType::F32)?
                .contiguous()?
                .apply_op1_no_bwd(&MatmulRepacked::PairPanels(w.clone()))?,
            Weight::Cpu(w) => {
                let rows = x.elem_count() / x.dim(candle_core::D::Minus1)?;
                let kernels = x.dtype() == DType::F32
                    && matches!(x.device(), Device::Cpu)
                    && !differentiable()
                    && (rows < MIN_ROWS || matmul::available());
                if kernels {
                    x.contiguous()?.apply_op2_no_bwd(w, &MatmulWt)?
                } else {
                    // Training (gradients), or a large product on a CPU without AVX-512: Candle's
                    // matmul, at f32.
                    plain(x, &w.to_dtype(x.dtype())?)?
                }
            }
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// Rows quantized per task: a bounded f32 copy at a time (the 257,216-row embedding in f32
/// would be 2.4 GB) and work for every thread (Candle quantizes on one).
const QUANTIZE_ROWS: usize = 2048;

/// `weight` (N, K) quantized to `q`, in blocks of rows on all threads. GGML lays a matrix out row
/// by row, so the blocks' bytes, concatenated, are the whole matrix's.
pub fn quantize_rows(weight: &Tensor, q: GgmlDType) -> candle_core::Result<QTensor> {
    use rayon::prelude::*;
    let (n, k) = weight.dims2()?;
    let parts: Vec<Vec<u8>> = (0..n.div_ceil(QUANTIZE_ROWS))
        .into_par_iter()
        .map(|b| {
            let rows = QUANTIZE_ROWS.min(n - b * QUANTIZE_ROWS);
            let block = weight
                .narrow(0, b * QUANTIZE_ROWS, rows)?
                .to_dtype(DType::F32)?;
            Ok(QTensor::quantize(&block, q)?.data()?.into_owned())
        })
        .collect::<candle_core::Result<_>>()?;
    let bytes = parts.concat();
    let storage = candle_core::quantized::QStorage::from_data(
        std::borrow::Cow::Owned(bytes),
        weight.device(),
        q,
    )?;
    QTensor::new(storage, (n, k))
}

/// `weight` repacked for this crate's kernels, when it is q4_k or q8_0 on the CPU, fits their
/// tiles, and the CPU runs them.
fn repacked(weight: &QTensor) -> candle_core::Result<Option<Weight>> {
    let Ok((n, k)) = weight.shape().dims2() else {
        return Ok(None);
    };
    if !matches!(weight.device(), Device::Cpu) {
        return Ok(None);
    }
    let message = |e: tiled::PackError| candle_core::Error::Msg(e.to_string());
    Ok(match weight.dtype() {
        GgmlDType::Q4K if q4k::fits(n, k) && q4k::available() => Some(Weight::PackedQ4K(Arc::new(
            q4k::PackedQ4K::from_q4k_blocks(&weight.data()?, n, k).map_err(message)?,
        ))),
        GgmlDType::Q8_0 if q8_0::fits(n, k) && q8_0::available() => Some(Weight::PackedQ8_0(
            Arc::new(q8_0::PackedQ8_0::from_q8_0_blocks(&weight.data()?, n, k).map_err(message)?),
        )),
        _ => None,
    })
}

/// `x (…, K) · Wᵀ` with x f32 and W repacked, on the CPU.
enum MatmulRepacked {
    Q4K(Arc<q4k::PackedQ4K>),
    Q8_0(Arc<q8_0::PackedQ8_0>),
    Panels(Arc<PanelMatrix>),
    PairPanels(Arc<PairPanels>),
}

impl candle_core::CustomOp1 for MatmulRepacked {
    fn name(&self) -> &'static str {
        "matmul-repacked"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), s, l)?;
        let (n, k) = match self {
            MatmulRepacked::Q4K(w) => (w.rows(), w.cols()),
            MatmulRepacked::Q8_0(w) => (w.rows(), w.cols()),
            MatmulRepacked::Panels(w) => (w.rows(), w.cols()),
            MatmulRepacked::PairPanels(w) => (w.rows(), w.cols()),
        };
        let dims = l.shape().dims();
        if dims.last() != Some(&k) {
            candle_core::bail!(
                "matmul-repacked: input {:?} against weight ({n}, {k})",
                dims
            );
        }
        let m = x.len() / k;
        let mut out = vec![0f32; m * n];
        match self {
            MatmulRepacked::Q4K(w) => q4k::product(x, m, w, &mut out),
            MatmulRepacked::Q8_0(w) => q8_0::product(x, m, w, &mut out),
            MatmulRepacked::Panels(w) if m < MIN_ROWS => w.decode(x, m, &mut out),
            MatmulRepacked::Panels(w) => matmul::matmul_panels(x, m, w, &mut out),
            MatmulRepacked::PairPanels(w) if m < MIN_ROWS => w.decode(x, m, &mut out),
            MatmulRepacked::PairPanels(w) => matmul::matmul_pair_panels(x, m, w, &mut out),
        }
        let mut shape = dims.to_vec();
        if let Some(last) = shape.last_mut() {
            *last = n;
        }
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }
}

/// `x · Wᵀ` as `candle_nn::Linear` computes it.
fn plain(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::Linear::new(w.clone(), None).forward(x)
}

pub fn linear(
    in_dim: usize,
    out_dim: usize,
    vb: candle_nn::VarBuilder,
    plan: &WeightPlan,
) -> candle_core::Result<FastLinear> {
    FastLinear::load(in_dim, out_dim, true, vb, plan)
}

pub fn linear_no_bias(
    in_dim: usize,
    out_dim: usize,
    vb: candle_nn::VarBuilder,
    plan: &WeightPlan,
) -> candle_core::Result<FastLinear> {
    FastLinear::load(in_dim, out_dim, false, vb, plan)
}

/// `x (…, K) · Wᵀ` with x f32 and W (N, K) f32 or bf16, on the CPU.
struct MatmulWt;

impl CustomOp2 for MatmulWt {
    fn name(&self) -> &'static str {
        "matmul-wt"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), s1, l1)?;
        let (n, k) = l2.shape().dims2()?;
        let dims = l1.shape().dims();
        if dims.last() != Some(&k) {
            candle_core::bail!("matmul-wt: input {:?} against weight ({n}, {k})", dims);
        }
        let Some((w0, w1)) = l2.contiguous_offsets() else {
            candle_core::bail!("matmul-wt: contiguous weight only");
        };
        let m = x.len() / k.max(1);
        let mut out = vec![0f32; m * n];
        match s2 {
            CpuStorage::F32(w) => product(x, m, k, &w[w0..w1], n, &mut out),
            CpuStorage::BF16(w) if m >= MIN_ROWS && amx::available() => {
                // The same products on AMX tiles.
                amx::matmul_wt_bf16(x, m, k, &w[w0..w1], n, &mut out)
            }
            CpuStorage::BF16(w) if m >= MIN_ROWS && matmul::bf16_available() => {
                // bf16 weights in a prefill: bf16 products, as the bf16 model computes them.
                matmul::matmul_wt_bf16(x, m, k, &w[w0..w1], n, &mut out)
            }
            CpuStorage::BF16(w) => product(x, m, k, &w[w0..w1], n, &mut out),
            _ => candle_core::bail!("matmul-wt: f32 or bf16 weights only"),
        }
        let mut shape = dims.to_vec();
        if let Some(last) = shape.last_mut() {
            *last = n;
        }
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }
}

fn product<W: crate::kernels::WeightElem>(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[W],
    n: usize,
    out: &mut [f32],
) {
    if m < MIN_ROWS || !matmul::available() {
        gemv::gemv(x, m, k, w, n, out);
    } else {
        matmul::matmul_wt(x, m, k, w, n, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::values;

    fn max_diff(a: &Tensor, b: &Tensor) -> candle_core::Result<f32> {
        (a - b)?.abs()?.max_all()?.to_scalar::<f32>()
    }

    #[test]
    fn linear_equals_candles_for_prefill_and_decoding_rows() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let (m, k, n) = (37, 70, 45);
        let x = Tensor::from_vec(values(2 * m * k, 3), (2, m, k), &dev)?;
        let w = Tensor::from_vec(values(n * k, 4), (n, k), &dev)?;
        let b = Tensor::from_vec(values(n, 5), n, &dev)?;
        let plain = candle_nn::Linear::new(w.clone(), Some(b.clone()));
        let fast = FastLinear::new(w.clone(), Some(b.clone()), DType::F32)?;
        let one = x.narrow(1, 0, 1)?;
        for input in [&x, &one] {
            let diff = max_diff(&fast.forward(input)?, &plain.forward(input)?)?;
            assert!(diff < 1e-4, "f32 weights: {diff}");
        }
        // bf16 weights, f32 activations: the product of the rounded weights, in f32; a prefill's
        // rows rounded to bf16 too where the CPU has bf16 dot products.
        let wb = w.to_dtype(DType::BF16)?;
        let rounded = candle_nn::Linear::new(wb.to_dtype(DType::F32)?, Some(b.clone()));
        let fast = FastLinear::new(wb, Some(b), DType::F32)?;
        let prefill_as_computed = if matmul::bf16_available() {
            x.to_dtype(DType::BF16)?.to_dtype(DType::F32)?
        } else {
            x.clone()
        };
        for (input, as_computed) in [(&x, &prefill_as_computed), (&one, &one)] {
            let y = fast.forward(input)?;
            assert_eq!(y.dtype(), DType::F32);
            let diff = max_diff(&y, &rounded.forward(as_computed)?)?;
            assert!(diff < 1e-4, "bf16 weights: {diff}");
        }
        Ok(())
    }

    #[test]
    fn q4_k_and_q8_0_layers_take_the_repacked_kernels_where_the_cpu_runs_them(
    ) -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let (k, n) = (512, 32);
        let w = Tensor::from_vec(values(n * k, 8), (n, k), &dev)?;
        for dtype in [GgmlDType::Q4K, GgmlDType::Q8_0] {
            let q = Arc::new(quantize_rows(&w, dtype)?);
            let candle = QMatMul::from_arc(q.clone())?;
            let layer = FastLinear::quantized(q, None)?;
            let repacked = match dtype {
                GgmlDType::Q4K => matches!(layer.weight, Weight::PackedQ4K(_)),
                _ => matches!(layer.weight, Weight::PackedQ8_0(_)),
            };
            let available = match dtype {
                GgmlDType::Q4K => q4k::available(),
                _ => q8_0::available(),
            };
            assert_eq!(repacked, available, "{:?}", layer.weight);
            let weights = QMatMul::from_arc(Arc::new(quantize_rows(&w, dtype)?))?;
            let QMatMul::QTensor(weights) = weights else {
                unreachable!("a quantized matrix")
            };
            let dequantized = weights.dequantize(&dev)?;
            for rows in [1, 5, 20] {
                let x = Tensor::from_vec(values(rows * k, 9), (1, rows, k), &dev)?;
                // Against the quantized weights times the unrounded activations, both sides
                // round the activations to 8 bits (ours per 256 values for q4_k, per 32 for
                // q8_0; Candle's per 256).
                let exact = x.broadcast_matmul(&dequantized.t()?)?;
                let ours = max_diff(&layer.forward(&x)?, &exact)?;
                let candles = max_diff(&candle.forward(&x)?, &exact)?;
                // |y| ~ 7: about 1 % of a product.
                assert!(ours < 0.15, "{dtype:?}, {rows} rows: {ours}");
                // Of the order of Candle's own rounding.
                assert!(
                    ours <= candles * 2.0,
                    "{dtype:?}: {ours} vs Candle's {candles}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn q8_0_keeps_products_close_and_a_misfit_width_stays_unquantized() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let (k, n) = (64, 24);
        let w = Tensor::from_vec(values(n * k, 6), (n, k), &dev)?;
        let mut tensors = std::collections::HashMap::new();
        let (fits_name, misfit_name) = (
            "language_model.layers.0.fits.weight",
            "language_model.layers.0.misfit.weight",
        );
        tensors.insert(fits_name.to_string(), w.clone());
        tensors.insert(misfit_name.to_string(), w.narrow(1, 0, 40)?.contiguous()?);
        // What the checkpoint reader does: quantize the matrices that fit a block.
        let mut quantized = HashMap::new();
        for (name, t) in &tensors {
            if let Some(as_name) = quantized_as(name, t.dims(), GgmlDType::Q8_0, false) {
                quantized.insert(as_name, Arc::new(quantize_rows(t, GgmlDType::Q8_0)?));
            }
        }
        let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &dev);
        let plan = WeightPlan::new(DType::F32, quantized);
        let layer = vb.pp("language_model").pp("layers").pp(0);
        let fits = linear_no_bias(k, n, layer.pp("fits"), &plan)?;
        assert!(matches!(fits.weight, Weight::Quantized(_)));
        assert!(
            fits.weight_bytes() < n * k * 4 / 3,
            "{}",
            fits.weight_bytes()
        );
        let misfit = linear_no_bias(40, n, layer.pp("misfit"), &plan)?;
        // Unquantized: f32 in panels where the CPU runs them, row-major otherwise.
        assert!(matches!(misfit.weight, Weight::Cpu(_) | Weight::Panels(_)));
        let x = Tensor::from_vec(values(3 * k, 7), (1, 3, k), &dev)?;
        let exact = candle_nn::Linear::new(w, None).forward(&x)?;
        let diff = max_diff(&fits.forward(&x)?, &exact)?;
        // 8-bit weights and activations: about 1 % of a product of this size (|y| ~ 4).
        assert!(diff < 0.1, "{diff}");
        Ok(())
    }
}
