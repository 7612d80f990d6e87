//! Gemma's gated MLP activation, `gelu_tanh(gate) * up`, fused into one pass on the CPU, and its
//! logit soft-capping `cap * tanh(x / cap)`. Candle's GELU and tanh call the C library's scalar
//! `tanhf` per element, which took about a sixth of a CPU prefill; this uses the rational tanh approximation of Eigen (as PyTorch's CPU kernels do), which
//! the compiler vectorises, and splits the work across threads. Other devices and dtypes use
//! Candle's ops.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Device, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Training needs gradients through every op; the fused CPU kernels here (and Candle's fused
/// LayerNorm, softmax and rope) have no backward pass and would silently stop them. `train` sets
/// this for its process; the model then uses the plain, differentiable ops everywhere.
static DIFFERENTIABLE: AtomicBool = AtomicBool::new(false);

pub fn set_differentiable(on: bool) {
    DIFFERENTIABLE.store(on, Ordering::Relaxed);
}

pub fn differentiable() -> bool {
    DIFFERENTIABLE.load(Ordering::Relaxed)
}

/// LayerNorm through plain ops when training, the fused kernel otherwise.
pub fn layer_norm(x: &Tensor, ln: &candle_nn::LayerNorm, eps: f64) -> candle_core::Result<Tensor> {
    use candle_core::Module;
    match (differentiable(), ln.bias()) {
        (true, Some(bias)) => candle_nn::ops::layer_norm_slow(x, ln.weight(), bias, eps as f32),
        _ => ln.forward(x),
    }
}

/// Softmax over the last dimension: differentiable when training, fused otherwise.
pub fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    if differentiable() {
        candle_nn::ops::softmax(x, candle_core::D::Minus1)
    } else {
        candle_nn::ops::softmax_last_dim(x)
    }
}

/// tanh(x) as Eigen's `generic_fast_tanh_float`: a 13/6 rational polynomial on [-7.9, 7.9], within
/// a few ulp of the exact value in f32.
#[inline(always)]
pub fn fast_tanh(x: f32) -> f32 {
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let mut p = x2 * -2.760_768_5e-16 + 2.000_188e-13;
    p = p * x2 + -8.604_672e-11;
    p = p * x2 + 5.122_297e-8;
    p = p * x2 + 1.485_722_4e-5;
    p = p * x2 + 6.372_619_3e-4;
    p = p * x2 + 4.893_524_6e-3;
    p *= x;
    let mut q = x2 * 1.198_258_4e-6 + 1.185_347e-4;
    q = q * x2 + 2.268_434_6e-3;
    q = q * x2 + 4.893_525e-3;
    if x.abs() < 4e-4 {
        x
    } else {
        p / q
    }
}

#[inline(always)]
fn gelu_tanh_scalar(v: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * v * (1.0 + fast_tanh(SQRT_2_OVER_PI * v * (1.0 + 0.044_715 * v * v)))
}

struct GeluMul;

impl CustomOp2 for GeluMul {
    fn name(&self) -> &'static str {
        "gelu-tanh-mul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (gate, up) = (
            f32_slice(self.name(), s1, l1)?,
            f32_slice(self.name(), s2, l2)?,
        );
        if l1.shape() != l2.shape() {
            candle_core::bail!("gelu-tanh-mul: shapes differ");
        }
        let mut out = vec![0f32; gate.len()];
        out.par_chunks_mut(8192)
            .zip(gate.par_chunks(8192).zip(up.par_chunks(8192)))
            .for_each(|(o, (g, u))| {
                for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                    *o = gelu_tanh_scalar(g) * u;
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `gelu_tanh(gate) * up` (GELU with the tanh approximation, as Gemma uses).
pub fn gelu_tanh_mul(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    if matches!(gate.device(), Device::Cpu)
        && gate.dtype() == DType::F32
        && up.dtype() == DType::F32
        && !differentiable()
    {
        gate.contiguous()?
            .apply_op2_no_bwd(&up.contiguous()?, &GeluMul)
    } else {
        gate.gelu()? * up
    }
}

/// The f32 values of contiguous CPU storage (what the CPU kernels of this crate take).
pub(crate) fn f32_slice<'a>(
    name: &str,
    s: &'a CpuStorage,
    l: &Layout,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(x) = s else {
        candle_core::bail!("{name}: f32 only");
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("{name}: contiguous input only");
    };
    Ok(&x[a..b])
}

/// An element-wise f32 map over contiguous storage, split across threads (the CPU side of the
/// fused unary ops below).
fn map_f32(
    name: &str,
    s: &CpuStorage,
    l: &Layout,
    f: impl Fn(f32) -> f32 + Sync,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let x = f32_slice(name, s, l)?;
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(8192)
        .zip(x.par_chunks(8192))
        .for_each(|(o, x)| {
            for (o, &v) in o.iter_mut().zip(x) {
                *o = f(v);
            }
        });
    Ok((CpuStorage::F32(out), l.shape().clone()))
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-tanh"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        map_f32(self.name(), s, l, gelu_tanh_scalar)
    }
}

/// GELU with the tanh approximation (`gelu_pytorch_tanh`).
pub fn gelu_tanh(x: &Tensor) -> candle_core::Result<Tensor> {
    if matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32 && !differentiable() {
        x.contiguous()?.apply_op1_no_bwd(&Gelu)
    } else {
        x.gelu()
    }
}

struct SoftCap(f32);

impl CustomOp1 for SoftCap {
    fn name(&self) -> &'static str {
        "softcap"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let cap = self.0;
        map_f32(self.name(), s, l, |v| cap * fast_tanh(v / cap))
    }
}

/// Gemma 2's soft-capping: `cap * tanh(x / cap)`.
pub fn soft_cap(x: &Tensor, cap: f64) -> candle_core::Result<Tensor> {
    if matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32 && !differentiable() {
        x.contiguous()?.apply_op1_no_bwd(&SoftCap(cap as f32))
    } else {
        (x / cap)?.tanh()? * cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_tanh_matches_the_exact_one() {
        let mut worst = 0f32;
        for i in -20_000..=20_000 {
            let x = i as f32 * 1e-3;
            worst = worst.max((fast_tanh(x) - x.tanh()).abs());
        }
        // A few ulp: f32 spacing near 1 is 6e-8.
        assert!(worst < 5e-7, "{worst}");
    }

    #[test]
    fn the_fused_op_equals_candle_gelu_times_up() {
        let gate = Tensor::randn(0f32, 3f32, (3, 257), &Device::Cpu).expect("randn");
        let up = Tensor::randn(0f32, 1f32, (3, 257), &Device::Cpu).expect("randn");
        let fused = gelu_tanh_mul(&gate, &up).expect("fused");
        let plain = (gate.gelu().expect("gelu") * &up).expect("mul");
        let diff = (fused - plain)
            .expect("sub")
            .abs()
            .expect("abs")
            .flatten_all()
            .expect("flat")
            .max(0)
            .expect("max")
            .to_scalar::<f32>()
            .expect("scalar");
        assert!(diff < 1e-5, "{diff}");
    }
}
