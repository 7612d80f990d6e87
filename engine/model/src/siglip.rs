//! The SigLIP vision tower of PaliGemma (patch embedding, position embedding, pre-norm encoder,
//! post-LayerNorm; no pooling head). Candle has one, but its patch embedding runs as a general
//! convolution and its GELU per element through the C library's tanh; here the 14x14 patches are
//! one matrix product and the GELU is the fast one Gemma uses. Tensor names are transformers'
//! (`vision_tower.embeddings.*`, `encoder.layers.N.*`, `post_layernorm`).

use candle_core::{Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, LayerNormConfig, VarBuilder};

use crate::config::VisionConfig;
use crate::fast_gelu::{gelu_tanh, layer_norm as norm, softmax_last};
use crate::linear::{linear, FastLinear, WeightPlan};

struct Layer {
    norm1: LayerNorm,
    q: FastLinear,
    k: FastLinear,
    v: FastLinear,
    out: FastLinear,
    norm2: LayerNorm,
    fc1: FastLinear,
    fc2: FastLinear,
}

pub struct VisionTower {
    patch_weight: Tensor,
    patch_bias: Tensor,
    positions: Tensor,
    layers: Vec<Layer>,
    post_norm: LayerNorm,
    heads: usize,
    patch: usize,
    channels: usize,
    act: candle_nn::Activation,
    eps: f64,
}

impl VisionTower {
    /// Linear layers per `plan`; activations are `vb`'s dtype.
    pub fn new(cfg: &VisionConfig, vb: VarBuilder, plan: &WeightPlan) -> candle_core::Result<Self> {
        let (h, p, c) = (cfg.hidden_size, cfg.patch_size, cfg.num_channels);
        let ln = |vb: VarBuilder| {
            layer_norm(
                h,
                LayerNormConfig {
                    eps: cfg.layer_norm_eps,
                    ..Default::default()
                },
                vb,
            )
        };
        let emb = vb.pp("embeddings");
        // Initialisers matter only when training from scratch (a VarMap-backed builder).
        let small = candle_nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let patch_weight = emb
            .pp("patch_embedding")
            .get_with_hints((h, c, p, p), "weight", small)?
            .reshape((h, c * p * p))?;
        let patch_bias = emb.pp("patch_embedding").get(h, "bias")?;
        let side = cfg.image_size / p;
        let positions =
            emb.pp("position_embedding")
                .get_with_hints((side * side, h), "weight", small)?;
        let enc = vb.pp("encoder").pp("layers");
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let l = enc.pp(i);
                let a = l.pp("self_attn");
                Ok(Layer {
                    norm1: ln(l.pp("layer_norm1"))?,
                    q: linear(h, h, a.pp("q_proj"), plan)?,
                    k: linear(h, h, a.pp("k_proj"), plan)?,
                    v: linear(h, h, a.pp("v_proj"), plan)?,
                    out: linear(h, h, a.pp("out_proj"), plan)?,
                    norm2: ln(l.pp("layer_norm2"))?,
                    fc1: linear(h, cfg.intermediate_size, l.pp("mlp").pp("fc1"), plan)?,
                    fc2: linear(cfg.intermediate_size, h, l.pp("mlp").pp("fc2"), plan)?,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(VisionTower {
            patch_weight,
            patch_bias,
            positions,
            layers,
            post_norm: ln(vb.pp("post_layernorm"))?,
            heads: cfg.num_attention_heads,
            patch: p,
            channels: c,
            act: cfg.hidden_act,
            eps: cfg.layer_norm_eps,
        })
    }

    /// `pixels` (B, C, S, S) -> (B, patches, hidden), after the post-LayerNorm.
    pub fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let (b, c, hgt, wid) = pixels.dims4()?;
        let p = self.patch;
        let (ny, nx) = (hgt / p, wid / p);
        if c != self.channels || ny * nx != self.positions.dim(0)? {
            candle_core::bail!(
                "pixel values {:?} do not fit the vision tower ({} channels, {} patches)",
                pixels.dims(),
                self.channels,
                self.positions.dim(0)?
            );
        }
        // (B, C, ny, p, nx, p) -> (B, ny, nx, C, p, p): one row per patch, in the conv weight's order.
        let patches = pixels
            .reshape((b, c, ny, p, nx, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .reshape((b * ny * nx, c * p * p))?;
        let mut x = patches
            .matmul(&self.patch_weight.t()?)?
            .broadcast_add(&self.patch_bias)?
            .reshape((b, ny * nx, ()))?
            .broadcast_add(&self.positions)?;
        for layer in &self.layers {
            let h = norm(&x, &layer.norm1, self.eps)?;
            x = (x + self.attention(layer, &h)?)?;
            let h = norm(&x, &layer.norm2, self.eps)?.apply(&layer.fc1)?;
            let h = match &self.act {
                candle_nn::Activation::GeluPytorchTanh => gelu_tanh(&h)?,
                act => h.apply(act)?,
            };
            x = (x + h.apply(&layer.fc2)?)?;
        }
        norm(&x, &self.post_norm, self.eps)
    }

    fn attention(&self, layer: &Layer, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, n, h) = x.dims3()?;
        let d = h / self.heads;
        let split = |t: Tensor| -> candle_core::Result<Tensor> {
            t.reshape((b, n, self.heads, d))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(layer.q.forward(x)?)?;
        let k = split(layer.k.forward(x)?)?;
        let v = split(layer.v.forward(x)?)?;
        let w = (q.matmul(&k.t()?)? / (d as f64).sqrt())?;
        let w = softmax_last(&w)?;
        let o = w.matmul(&v)?.transpose(1, 2)?.reshape((b, n, h))?;
        layer.out.forward(&o.contiguous()?)
    }
}
