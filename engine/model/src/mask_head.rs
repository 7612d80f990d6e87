//! RadGrounder's mask head (`segmentation_head.*` in the segmentation checkpoint): a two-way
//! transformer between one query (the decoder's final hidden state where `</seg>` is fed back) and
//! the SigLIP patch features, then a per-patch logit, upsampled bilinearly to the model input.
//! Built from the public RadGrounder code (segmentation_decoder.py): 8 heads, 2 blocks, MLP 4x,
//! LayerNorm eps 1e-5, exact GELU, the query re-added as its only positional encoding, the first
//! self-attention residual, no PE on the final attention. A pixel is inside where the logit > 0.5.

use candle_core::{Module, Tensor, D};
use candle_nn::{layer_norm, linear, LayerNorm, LayerNormConfig, Linear, VarBuilder};

use crate::error::Result;

/// RadGrounder builds the head with 8 heads and 2 blocks; neither is stored in the checkpoint.
pub const NUM_HEADS: usize = 8;
pub const NUM_LAYERS: usize = 2;
/// The evaluation threshold on raw logits (not on probabilities).
pub const THRESHOLD: f32 = 0.5;
const LN_EPS: f64 = 1e-5;

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    fn new(dim: usize, heads: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Attention {
            q: linear(dim, dim, vb.pp("q_proj"))?,
            k: linear(dim, dim, vb.pp("k_proj"))?,
            v: linear(dim, dim, vb.pp("v_proj"))?,
            out: linear(dim, dim, vb.pp("out_proj"))?,
            heads,
        })
    }

    /// q (b, nq, d), k and v (b, nk, d).
    fn forward(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> candle_core::Result<Tensor> {
        let split = |x: Tensor| -> candle_core::Result<Tensor> {
            let (b, n, d) = x.dims3()?;
            x.reshape((b, n, self.heads, d / self.heads))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.q.forward(q)?)?;
        let k = split(self.k.forward(k)?)?;
        let v = split(self.v.forward(v)?)?;
        let head_dim = q.dim(D::Minus1)?;
        let scores = (q.matmul(&k.t()?)? / (head_dim as f64).sqrt())?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let (b, _, n, _) = q.dims4()?;
        let x = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, n, self.heads * head_dim))?;
        self.out.forward(&x)
    }
}

struct TwoWayBlock {
    self_attn: Attention,
    norm1: LayerNorm,
    token_to_image: Attention,
    norm2: LayerNorm,
    mlp_in: Linear,
    mlp_out: Linear,
    norm3: LayerNorm,
    norm4: LayerNorm,
    image_to_token: Attention,
    skip_first_pe: bool,
}

fn norm(dim: usize, vb: VarBuilder) -> candle_core::Result<LayerNorm> {
    layer_norm(
        dim,
        LayerNormConfig {
            eps: LN_EPS,
            ..Default::default()
        },
        vb,
    )
}

impl TwoWayBlock {
    fn new(dim: usize, skip_first_pe: bool, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(TwoWayBlock {
            self_attn: Attention::new(dim, NUM_HEADS, vb.pp("self_attn"))?,
            norm1: norm(dim, vb.pp("norm1"))?,
            token_to_image: Attention::new(dim, NUM_HEADS, vb.pp("cross_attn_token_to_image"))?,
            norm2: norm(dim, vb.pp("norm2"))?,
            mlp_in: linear(dim, 4 * dim, vb.pp("mlp").pp("0"))?,
            mlp_out: linear(4 * dim, dim, vb.pp("mlp").pp("2"))?,
            norm3: norm(dim, vb.pp("norm3"))?,
            norm4: norm(dim, vb.pp("norm4"))?,
            image_to_token: Attention::new(dim, NUM_HEADS, vb.pp("cross_attn_image_to_token"))?,
            skip_first_pe,
        })
    }

    /// Updates the query tokens `q` (with positional encoding `pe`) and the image tokens `k`.
    fn forward(
        &self,
        q: &Tensor,
        k: &Tensor,
        pe: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let a = if self.skip_first_pe {
            self.self_attn.forward(q, q, q)?
        } else {
            let qp = (q + pe)?;
            self.self_attn.forward(&qp, &qp, q)?
        };
        let q = self.norm1.forward(&(q + a)?)?;
        let a = self.token_to_image.forward(&(&q + pe)?, k, k)?;
        let q = self.norm2.forward(&(q + a)?)?;
        let m = self
            .mlp_out
            .forward(&self.mlp_in.forward(&q)?.gelu_erf()?)?;
        let q = self.norm3.forward(&(q + m)?)?;
        let a = self.image_to_token.forward(k, &(&q + pe)?, &q)?;
        let k = self.norm4.forward(&(k + a)?)?;
        Ok((q, k))
    }
}

pub struct MaskHead {
    img_projection: Linear,
    layers: Vec<TwoWayBlock>,
    final_attn: Attention,
    norm_final: LayerNorm,
    output_proj: Linear,
}

impl MaskHead {
    /// `vb` at `segmentation_head`; `image_dim` is SigLIP's width, `dim` the decoder's hidden size.
    pub fn new(image_dim: usize, dim: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let t = vb.pp("transformer");
        Ok(MaskHead {
            img_projection: linear(image_dim, dim, vb.pp("img_projection"))?,
            layers: (0..NUM_LAYERS)
                .map(|i| TwoWayBlock::new(dim, i == 0, t.pp("layers").pp(i)))
                .collect::<candle_core::Result<_>>()?,
            final_attn: Attention::new(dim, NUM_HEADS, t.pp("final_attn_token_to_image"))?,
            norm_final: norm(dim, t.pp("norm_final_attn"))?,
            output_proj: linear(dim, 1, vb.pp("output_proj"))?,
        })
    }

    /// `features` (patches, image_dim) in row-major patch order, `queries` (n, dim). Returns mask
    /// logits (n, size, size), upsampled from the patch grid like `F.interpolate(bilinear,
    /// align_corners=False)`.
    pub fn forward(&self, features: &Tensor, queries: &Tensor, size: usize) -> Result<Tensor> {
        let n = queries.dim(0)?;
        let patches = features.dim(0)?;
        let side = (patches as f64).sqrt().round() as usize;
        let image = self.img_projection.forward(&features.unsqueeze(0)?)?;
        let mut k = image
            .broadcast_as((n, patches, image.dim(2)?))?
            .contiguous()?;
        let pe = queries.unsqueeze(1)?;
        let mut q = pe.clone();
        for layer in &self.layers {
            (q, k) = layer.forward(&q, &k, &pe)?;
        }
        let a = self.final_attn.forward(&q, &k, &k)?;
        let q = self.norm_final.forward(&(q + a)?)?;
        let fused = k.broadcast_add(&q)?;
        let logits = self.output_proj.forward(&fused)?; // (n, patches, 1)
        let grid = logits.reshape((n, 1, side, side))?;
        let up = grid.upsample_bilinear2d(size, size, false)?;
        Ok(up.squeeze(1)?)
    }
}

/// One mask on the model input grid: logits, row-major, `size` x `size`.
#[derive(Clone, Debug)]
pub struct Mask {
    pub size: usize,
    pub logits: Vec<f32>,
}

impl Mask {
    /// The mask stretched back onto a slice of `width` x `height` pixels (the model input was the
    /// slice stretched to `size` x `size`): each slice pixel takes the input pixel its centre falls in.
    pub fn on_slice(&self, width: usize, height: usize) -> Vec<bool> {
        let pick = |i: usize, n: usize| ((i as f64 + 0.5) * self.size as f64 / n as f64) as usize;
        let mut out = Vec::with_capacity(width * height);
        for y in 0..height {
            let sy = pick(y, height).min(self.size - 1);
            for x in 0..width {
                let sx = pick(x, width).min(self.size - 1);
                out.push(self.logits[sy * self.size + sx] > THRESHOLD);
            }
        }
        out
    }
}
