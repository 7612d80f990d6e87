//! The precision a model runs at: how its weights are held and what its activations are.
//!
//! On the CPU the activations are f32 whatever the weights: bf16 weights (a released checkpoint's
//! own dtype) are widened inside the kernels, so bf16 costs no accuracy over f32 for a bf16
//! checkpoint and half the memory and bandwidth. Quantized types (q8_0, q4_k) hold the text
//! decoder's matrices in Candle's GGML blocks; the vision tower, whose widths (1152, 4304) fit no
//! 256-block and not all 32-blocks, and the embedding lookup stay bf16. On GPUs bf16 and f16 run
//! end to end in that dtype, as PyTorch does.

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device};

use crate::linear::{QuantizedMatrices, WeightPlan};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    F32,
    Bf16,
    F16,
    /// GGML's Q8_0: blocks of 32 int8 with an f16 scale (8.5 bits per weight).
    Q8_0,
    /// GGML's Q4_K: super-blocks of 256 4-bit values with 6-bit scales (4.5 bits per weight).
    Q4K,
}

impl Precision {
    pub const ALL: [Precision; 5] = [
        Precision::F32,
        Precision::Bf16,
        Precision::F16,
        Precision::Q8_0,
        Precision::Q4K,
    ];

    /// `f32`, `bf16`, `f16`, `q8_0`, `q4_k` (also `q4k`, `q8`).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "f32" => Precision::F32,
            "bf16" => Precision::Bf16,
            "f16" => Precision::F16,
            "q8_0" | "q8" => Precision::Q8_0,
            "q4_k" | "q4k" => Precision::Q4K,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
            Precision::Q8_0 => "q8_0",
            Precision::Q4K => "q4_k",
        }
    }

    pub fn quantized(self) -> Option<GgmlDType> {
        match self {
            Precision::Q8_0 => Some(GgmlDType::Q8_0),
            Precision::Q4K => Some(GgmlDType::Q4K),
            _ => None,
        }
    }

    /// The activations' dtype on `device`.
    pub fn activations(self, device: &Device) -> DType {
        match (self, device) {
            (Precision::F16, _) => DType::F16,
            (Precision::Bf16, Device::Cpu) => DType::F32,
            (Precision::Bf16, _) => DType::BF16,
            _ => DType::F32,
        }
    }

    /// The dtype weight matrices are held in when not quantized.
    pub fn matrices(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 | Precision::Q8_0 | Precision::Q4K => DType::BF16,
        }
    }

    /// What the text decoder's linear layers do (the vision tower takes `unquantized()` of it)
    /// for a checkpoint stored as `stored`, with the matrices the checkpoint reader quantized.
    pub fn plan(self, stored: DType, quantized: QuantizedMatrices) -> WeightPlan {
        WeightPlan::new(self.matrices_for(stored), quantized)
    }

    /// The dtype matrices left unquantized are held in, for a checkpoint stored as `stored`:
    /// quantized precisions keep them as stored (bf16 or f32), the others at [`Self::matrices`].
    pub fn matrices_for(self, stored: DType) -> DType {
        match (self.quantized(), stored) {
            (Some(_), DType::BF16) => DType::BF16,
            (Some(_), _) => DType::F32,
            (None, _) => self.matrices(),
        }
    }

    /// The dtype a checkpoint tensor stored as `stored` is read into: matrices (rank-2
    /// `*.weight`) at [`Self::matrices_for`], everything else (norms, biases, convolutions) at the
    /// activations'.
    pub fn stored_dtype(self, name: &str, rank: usize, stored: DType, device: &Device) -> DType {
        if rank == 2 && name.ends_with(".weight") {
            self.matrices_for(stored)
        } else {
            self.activations(device)
        }
    }
}

impl From<DType> for Precision {
    fn from(dtype: DType) -> Self {
        match dtype {
            DType::BF16 => Precision::Bf16,
            DType::F16 => Precision::F16,
            _ => Precision::F32,
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_cpu_activations_are_f32() {
        for p in Precision::ALL {
            assert_eq!(Precision::parse(p.name()), Some(p));
        }
        assert_eq!(Precision::parse("Q4_K"), Some(Precision::Q4K));
        assert_eq!(Precision::parse("int3"), None);
        assert_eq!(Precision::Bf16.activations(&Device::Cpu), DType::F32);
        assert_eq!(
            Precision::Bf16.stored_dtype("language_model.norm.weight", 1, DType::F32, &Device::Cpu),
            DType::F32
        );
        assert_eq!(
            Precision::Bf16.stored_dtype("lm_head.weight", 2, DType::F32, &Device::Cpu),
            DType::BF16
        );
        // Quantized: what stays unquantized keeps the checkpoint's own dtype.
        assert_eq!(Precision::Q8_0.matrices_for(DType::F32), DType::F32);
        assert_eq!(Precision::Q4K.matrices_for(DType::BF16), DType::BF16);
    }
}
