//! Gemma 2 decoder as transformers runs it inside PaliGemma 2, written out because candle's
//! `gemma2` scales attention by head_dim instead of `query_pre_attn_scalar`, applies the sliding
//! window to every layer, and takes token ids only. Here: embeddings in (image features merged by the
//! caller), 1-based positions as PaliGemma uses, a prefix that attends bidirectionally, a sliding
//! window on the sliding layers, soft-capped attention and logits, and a KV cache.

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::kv_cache::KvCache;
use candle_nn::VarBuilder;

use crate::config::TextConfig;
use crate::linear::{linear_no_bias, FastLinear, WeightPlan};

/// Which of Gemma 2's soft-caps (`attn_logit_softcapping`, `final_logit_softcapping`) are
/// applied. The config names the caps; whether they run depends on the code the model was run
/// with: transformers' eager attention caps attention logits, its SDPA attention silently does
/// not; transformers 4.x's PaliGemma never caps the final logits, 5.x does. RadGrounder was
/// trained with eager attention on 4.54 (attention capped, logits not) and evaluated with SDPA
/// (neither). The final cap changes no greedy token (tanh is monotonic) but does change the
/// probabilities MIS-SemSam weighs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SoftCapping {
    pub attention: bool,
    pub final_logits: bool,
}

impl SoftCapping {
    /// What RadGrounder's published evaluation ran (transformers 4.54, SDPA): no cap at all.
    pub const AUTHORS_EVALUATION: SoftCapping = SoftCapping {
        attention: false,
        final_logits: false,
    };
    /// Every cap the config names (Gemma 2 as designed; transformers 5.x eager; our trainer).
    pub const ALL: SoftCapping = SoftCapping {
        attention: true,
        final_logits: true,
    };

    /// `none`, `attention`, `final` or `both`.
    pub fn parse(text: &str) -> Option<Self> {
        let (attention, final_logits) = match text {
            "none" => (false, false),
            "attention" => (true, false),
            "final" => (false, true),
            "both" => (true, true),
            _ => return None,
        };
        Some(SoftCapping {
            attention,
            final_logits,
        })
    }

    pub fn name(self) -> &'static str {
        match (self.attention, self.final_logits) {
            (false, false) => "none",
            (true, false) => "attention",
            (false, true) => "final",
            (true, true) => "both",
        }
    }
}

/// Gemma's RMSNorm: computed in f32, scaled by (1 + weight).
#[derive(Clone, Debug)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(RmsNorm {
            weight: vb.get(dim, "weight")?,
            eps,
        })
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let mean_sq = x.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = x.broadcast_mul(&(mean_sq + self.eps)?.sqrt()?.recip()?)?;
        let scale = (self.weight.to_dtype(DType::F32)? + 1.0)?;
        normed.broadcast_mul(&scale)?.to_dtype(dtype)
    }
}

/// Rotary embedding tables (rotate-half convention, as Gemma).
#[derive(Clone, Debug)]
struct Rotary {
    cos: Tensor,
    sin: Tensor,
}

impl Rotary {
    fn new(cfg: &TextConfig, dtype: DType, device: &Device) -> Result<Self> {
        let dim = cfg.head_dim;
        let theta = cfg.rope_theta();
        let inv: Vec<f32> = (0..dim)
            .step_by(2)
            .map(|i| (1.0 / theta.powf(i as f64 / dim as f64)) as f32)
            .collect();
        let n = inv.len();
        let inv = Tensor::from_vec(inv, (1, n), device)?;
        // One extra position: PaliGemma positions start at 1.
        let max = cfg.max_position_embeddings + 1;
        let t = Tensor::arange(0u32, max as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((max, 1))?;
        let freqs = t.matmul(&inv)?;
        Ok(Rotary {
            cos: freqs.cos()?.to_dtype(dtype)?,
            sin: freqs.sin()?.to_dtype(dtype)?,
        })
    }

    /// The cos and sin rows (head_dim / 2 each) of one position, f32.
    fn angles(&self, position: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let row = |t: &Tensor| t.get(position)?.to_dtype(DType::F32)?.to_vec1::<f32>();
        Ok((row(&self.cos)?, row(&self.sin)?))
    }

    fn apply(&self, x: &Tensor, first_position: usize) -> Result<Tensor> {
        let (_, _, len, _) = x.dims4()?;
        let cos = self.cos.narrow(0, first_position, len)?;
        let sin = self.sin.narrow(0, first_position, len)?;
        if crate::fast_gelu::differentiable() {
            candle_nn::rotary_emb::rope_slow(&x.contiguous()?, &cos, &sin)
        } else {
            candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)
        }
    }
}

#[derive(Clone, Debug)]
struct Mlp {
    gate: FastLinear,
    up: FastLinear,
    down: FastLinear,
    act: candle_nn::Activation,
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate = x.apply(&self.gate)?;
        let up = x.apply(&self.up)?;
        let hidden = match &self.act {
            candle_nn::Activation::GeluPytorchTanh => crate::fast_gelu::gelu_tanh_mul(&gate, &up)?,
            act => (gate.apply(act)? * up)?,
        };
        hidden.apply(&self.down)
    }
}

#[derive(Clone, Debug)]
struct Attention {
    q: FastLinear,
    k: FastLinear,
    v: FastLinear,
    o: FastLinear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    scale: f64,
    softcap: Option<f64>,
}

/// Positions a KV cache grows by: a prompt (256 image tokens and the text) and a report fit in two.
const CACHE_BLOCK: usize = 512;

/// What one sequence has decoded so far: each layer's keys and values, in buffers that grow by
/// blocks (appending copies only the new token's, where concatenating copied the whole cache
/// every step), and how many tokens they hold. Kept outside the layers so that several
/// sequences can be decoded together ([`Gemma2::step_batch`]), each with its own.
#[derive(Clone, Debug)]
pub struct SequenceState {
    caches: Vec<KvCache>,
    /// Tokens in the caches.
    seen: usize,
    /// Length of the bidirectional prefix (image + prompt), fixed at prefill.
    prefix: usize,
}

impl SequenceState {
    fn new(layers: usize) -> Self {
        SequenceState {
            caches: (0..layers).map(|_| KvCache::new(2, CACHE_BLOCK)).collect(),
            seen: 0,
            prefix: 0,
        }
    }

    /// Tokens in the cache.
    pub fn seen(&self) -> usize {
        self.seen
    }
}

impl Attention {
    fn forward(
        &self,
        x: &Tensor,
        rotary: &Rotary,
        first_position: usize,
        mask: &Tensor,
        // Whether the attention soft-cap runs (transformers' SDPA skips it).
        capped: bool,
        // The cache the keys and values join (decoding), or none (training's batches).
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let (b, len, _) = x.dims3()?;
        let shape = |t: Tensor, h: usize| t.reshape((b, len, h, self.head_dim))?.transpose(1, 2);
        let q = shape(x.apply(&self.q)?, self.heads)?;
        let k = shape(x.apply(&self.k)?, self.kv_heads)?;
        let v = shape(x.apply(&self.v)?, self.kv_heads)?;
        let q = rotary.apply(&q, first_position)?;
        let k = rotary.apply(&k, first_position)?;
        let (k, v) = match cache {
            Some(cache) => cache.append(&k.contiguous()?, &v.contiguous()?)?,
            // Training's batches: more than one sequence, which the matrix product wants dense.
            None => (k.contiguous()?, v.contiguous()?),
        };
        self.attend(&q, &k, &v, mask, capped)?.apply(&self.o)
    }

    /// One new token for each of several sequences, `x` (B, 1, hidden): the projections run
    /// once for all B rows (one pass over their weights), the attention per sequence against its
    /// own cache in `states` at `layer`, with its own position; `window` is the sliding window
    /// on a sliding layer.
    #[allow(clippy::too_many_arguments)]
    fn step_batch(
        &self,
        x: &Tensor,
        rotary: &Rotary,
        states: &mut [&mut SequenceState],
        layer: usize,
        positions: &StepPositions,
        window: Option<usize>,
        capped: bool,
    ) -> Result<Tensor> {
        let shape = |t: Tensor, h: usize| t.reshape((1, 1, h, self.head_dim))?.transpose(1, 2);
        let (q_all, k_all, v_all) = (x.apply(&self.q)?, x.apply(&self.k)?, x.apply(&self.v)?);
        let masks = match positions {
            StepPositions::Kernel(angles) => {
                return self.step_batch_cpu(
                    [&q_all, &k_all, &v_all],
                    angles,
                    states,
                    layer,
                    window,
                    capped,
                )
            }
            StepPositions::Masks { full, sliding } => match (window, sliding) {
                (Some(_), Some(sliding)) => sliding,
                _ => full,
            },
        };
        let mut outputs = Vec::with_capacity(states.len());
        for (i, state) in states.iter_mut().enumerate() {
            // PaliGemma counts positions from 1.
            let position = state.seen + 1;
            let q = rotary.apply(&shape(q_all.narrow(0, i, 1)?, self.heads)?, position)?;
            let k = rotary.apply(&shape(k_all.narrow(0, i, 1)?, self.kv_heads)?, position)?;
            let v = shape(v_all.narrow(0, i, 1)?, self.kv_heads)?;
            let (k, v) = state.caches[layer].append(&k.contiguous()?, &v.contiguous()?)?;
            outputs.push(self.attend(&q, &k, &v, &masks[i], capped)?);
        }
        Tensor::cat(&outputs, 0)?.apply(&self.o)
    }

    /// `step_batch` on the CPU in f32: rotation, cache append and attention by this crate's
    /// kernel (`kernels::attention`), the heads of all sequences in one parallel pass.
    fn step_batch_cpu(
        &self,
        [q_all, k_all, v_all]: [&Tensor; 3],
        angles: &[(Vec<f32>, Vec<f32>)],
        states: &mut [&mut SequenceState],
        layer: usize,
        window: Option<usize>,
        capped: bool,
    ) -> Result<Tensor> {
        use crate::kernels::attention::{decode_attention, rope, Heads, TokenAttention};
        let (h, kv, d) = (self.heads, self.kv_heads, self.head_dim);
        let b = states.len();
        let device = q_all.device();
        let mut q = q_all.flatten_all()?.to_vec1::<f32>()?;
        let mut k = k_all.flatten_all()?.to_vec1::<f32>()?;
        let v = v_all.flatten_all()?.to_vec1::<f32>()?;
        let mut cached = Vec::with_capacity(b);
        for (i, (state, (cos, sin))) in states.iter_mut().zip(angles).enumerate() {
            rope(&mut q[i * h * d..(i + 1) * h * d], d, cos, sin);
            rope(&mut k[i * kv * d..(i + 1) * kv * d], d, cos, sin);
            let new = |x: &[f32]| {
                Tensor::from_slice(&x[i * kv * d..(i + 1) * kv * d], (1, kv, 1, d), device)
            };
            let (keys, values) = state.caches[layer].append(&new(&k)?, &new(&v)?)?;
            // The new token is at index `seen`; causal, and on sliding layers within the window.
            let last = state.seen + 1;
            let first = window.map_or(0, |w| last.saturating_sub(w));
            cached.push((keys, values, first, last));
        }
        let storages: Vec<_> = cached
            .iter()
            .map(|(keys, values, ..)| (keys.storage_and_layout(), values.storage_and_layout()))
            .collect();
        let mut tokens = Vec::with_capacity(b);
        for (i, ((ks, kl), (vs, vl))) in storages.iter().enumerate() {
            tokens.push(TokenAttention {
                q: &q[i * h * d..(i + 1) * h * d],
                keys: cache_view(ks, kl, d)?,
                values: cache_view(vs, vl, d)?,
                first: cached[i].2,
                last: cached[i].3,
            });
        }
        let heads = Heads {
            heads: h,
            kv_heads: kv,
            d,
            scale: self.scale as f32,
            softcap: self.softcap.filter(|_| capped).map(|c| c as f32),
        };
        let mut out = vec![0f32; b * h * d];
        decode_attention(&tokens, heads, &mut out);
        drop(tokens);
        drop(storages);
        Tensor::from_vec(out, (b, 1, h * d), device)?.apply(&self.o)
    }

    /// Attention of rotated queries `q` (b, heads, len, d) over keys and values (b, kv_heads,
    /// keys, d) under an additive mask; returns (b, len, heads * d), before the output projection.
    fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: &Tensor,
        capped: bool,
    ) -> Result<Tensor> {
        let (b, _, len, _) = q.dims4()?;
        // Grouped-query attention without repeating the keys: the `groups` query heads that share
        // a key head are consecutive, so (b, heads, len, d) is (b, kv_heads, groups * len, d).
        let groups = self.heads / self.kv_heads;
        let keys = k.dim(2)?;
        let q = q
            .contiguous()?
            .reshape((b, self.kv_heads, groups * len, self.head_dim))?;
        let mut w =
            (q.matmul(&k.transpose(2, 3)?)? * self.scale)?.reshape((b, self.heads, len, keys))?;
        if let (Some(cap), true) = (self.softcap, capped) {
            w = crate::fast_gelu::soft_cap(&w, cap)?;
        }
        let dtype = w.dtype();
        let w = w.to_dtype(DType::F32)?.broadcast_add(mask)?;
        // Plain softmax (not the fused op) keeps the graph differentiable for training later.
        let w = candle_nn::ops::softmax(&w, D::Minus1)?
            .to_dtype(dtype)?
            .reshape((b, self.kv_heads, groups * len, keys))?;
        w.matmul(v)?
            .reshape((b, self.heads, len, self.head_dim))?
            .transpose(1, 2)?
            .reshape((b, len, ()))
    }
}

#[derive(Clone, Debug)]
struct Layer {
    attn: Attention,
    mlp: Mlp,
    input_norm: RmsNorm,
    post_attn_norm: RmsNorm,
    pre_ff_norm: RmsNorm,
    post_ff_norm: RmsNorm,
    sliding: bool,
}

impl Layer {
    /// The layer on `x`, its attention (on the normed input) as the caller runs it: prefill,
    /// a batch's decoding step, or training.
    fn forward(
        &self,
        x: &Tensor,
        attention: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let h = attention(&self.input_norm.forward(x)?)?;
        let x = (x + self.post_attn_norm.forward(&h)?)?;
        let h = self.mlp.forward(&self.pre_ff_norm.forward(&x)?)?;
        &x + self.post_ff_norm.forward(&h)?
    }

    /// Of a full and a sliding-window mask, the one this layer uses.
    fn mask<'a, T>(&self, full: &'a T, sliding: Option<&'a T>) -> &'a T {
        match (self.sliding, sliding) {
            (true, Some(s)) => s,
            _ => full,
        }
    }
}

/// What a batch's decoding step needs of each sequence's position, decided once a step.
enum StepPositions {
    /// CPU f32 (the attention kernel keeps to the window itself): each sequence's rotary cos
    /// and sin rows, the same on every layer.
    Kernel(Vec<(Vec<f32>, Vec<f32>)>),
    /// Elsewhere (Candle's ops): each sequence's additive masks, full and sliding.
    Masks {
        full: Vec<Tensor>,
        sliding: Option<Vec<Tensor>>,
    },
}

/// The decoder. `forward` takes embeddings (already merged with image features, not yet scaled).
#[derive(Clone, Debug)]
pub struct Gemma2 {
    embed: candle_nn::Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: FastLinear,
    rotary: Rotary,
    /// The activations' dtype (embeddings are looked up in the matrices' and converted).
    dtype: DType,
    hidden: usize,
    sliding_window: Option<usize>,
    final_softcap: Option<f64>,
    /// Which of the caps run (both by default, as the config describes the model).
    capping: SoftCapping,
    /// The sequence `forward` continues (the single-answer path).
    state: SequenceState,
}

impl Gemma2 {
    /// `vb` points at the decoder weights (`language_model` in canonical names); `head` at the
    /// output projection when it is not tied to the embeddings. Activations are `vb`'s dtype,
    /// the linear layers (and the output projection) follow `plan`.
    pub fn new(
        cfg: &TextConfig,
        vb: VarBuilder,
        head: Option<Tensor>,
        plan: &WeightPlan,
    ) -> Result<Self> {
        // The initialiser matters only when training from scratch (a VarMap-backed builder).
        let embeddings = vb.pp("embed_tokens").get_with_hints_dtype(
            (cfg.vocab_size, cfg.hidden_size),
            "weight",
            candle_nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
            plan.matrices,
        )?;
        let embed = candle_nn::Embedding::new(embeddings, cfg.hidden_size);
        let rotary = Rotary::new(cfg, vb.dtype(), vb.device())?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = vb.pp("layers").pp(i);
            let a = l.pp("self_attn");
            let (h, kv, d) = (
                cfg.num_attention_heads,
                cfg.num_key_value_heads,
                cfg.head_dim,
            );
            let attn = Attention {
                q: linear_no_bias(cfg.hidden_size, h * d, a.pp("q_proj"), plan)?,
                k: linear_no_bias(cfg.hidden_size, kv * d, a.pp("k_proj"), plan)?,
                v: linear_no_bias(cfg.hidden_size, kv * d, a.pp("v_proj"), plan)?,
                o: linear_no_bias(h * d, cfg.hidden_size, a.pp("o_proj"), plan)?,
                heads: h,
                kv_heads: kv,
                head_dim: d,
                scale: cfg.query_pre_attn_scalar.powf(-0.5),
                softcap: cfg.attn_logit_softcapping,
            };
            let m = l.pp("mlp");
            let mlp = Mlp {
                gate: linear_no_bias(
                    cfg.hidden_size,
                    cfg.intermediate_size,
                    m.pp("gate_proj"),
                    plan,
                )?,
                up: linear_no_bias(
                    cfg.hidden_size,
                    cfg.intermediate_size,
                    m.pp("up_proj"),
                    plan,
                )?,
                down: linear_no_bias(
                    cfg.intermediate_size,
                    cfg.hidden_size,
                    m.pp("down_proj"),
                    plan,
                )?,
                act: cfg.hidden_activation,
            };
            let norm = |name: &str| RmsNorm::new(cfg.hidden_size, cfg.rms_norm_eps, l.pp(name));
            layers.push(Layer {
                attn,
                mlp,
                input_norm: norm("input_layernorm")?,
                post_attn_norm: norm("post_attention_layernorm")?,
                pre_ff_norm: norm("pre_feedforward_layernorm")?,
                post_ff_norm: norm("post_feedforward_layernorm")?,
                sliding: cfg.is_sliding(i),
            });
        }
        let norm = RmsNorm::new(cfg.hidden_size, cfg.rms_norm_eps, vb.pp("norm"))?;
        // Quantized, the projection has its own copy (the lookup keeps the unquantized table); in
        // panels it has one too, up to a size (`FastLinear::tied`).
        let lm_head = match (plan.take_quantized("lm_head.weight"), head) {
            (Some(q), _) => FastLinear::quantized(q, None)?,
            (None, Some(h)) => {
                let head = FastLinear::new(h.to_dtype(plan.matrices)?, None, vb.dtype())?;
                if head.repacked() {
                    plan.release("lm_head.weight");
                }
                head
            }
            (None, None) => FastLinear::tied(embed.embeddings().clone(), vb.dtype())?,
        };
        Ok(Gemma2 {
            embed,
            layers,
            norm,
            lm_head,
            rotary,
            dtype: vb.dtype(),
            hidden: cfg.hidden_size,
            sliding_window: cfg.sliding_window,
            final_softcap: cfg.final_logit_softcapping,
            capping: SoftCapping::ALL,
            state: SequenceState::new(cfg.num_hidden_layers),
        })
    }

    /// Which of the config's soft-caps run (both by default, as the config describes the model).
    pub fn set_soft_capping(&mut self, capping: SoftCapping) {
        self.capping = capping;
    }

    pub fn soft_capping(&self) -> SoftCapping {
        self.capping
    }

    /// The final-logit cap, when the config names one and it runs.
    fn cap_logits(&self, logits: Tensor) -> Result<Tensor> {
        match (self.final_softcap, self.capping.final_logits) {
            (Some(cap), true) => crate::fast_gelu::soft_cap(&logits, cap),
            _ => Ok(logits),
        }
    }

    pub fn embed_tokens(&self, ids: &Tensor) -> Result<Tensor> {
        self.embed.forward(ids)?.to_dtype(self.dtype)
    }

    /// Bytes the decoder's weight matrices take (the embedding table counted once when tied).
    pub fn matrix_bytes(&self) -> usize {
        let e = self.embed.embeddings();
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                let (a, m) = (&l.attn, &l.mlp);
                [&a.q, &a.k, &a.v, &a.o, &m.gate, &m.up, &m.down]
                    .iter()
                    .map(|x| x.weight_bytes())
                    .sum::<usize>()
            })
            .sum();
        let head = if self.head_is_embedding() {
            0
        } else {
            self.lm_head.weight_bytes()
        };
        layers + e.elem_count() * e.dtype().size_in_bytes() + head
    }

    /// Whether the output projection reads the embedding table itself (tied, unquantized).
    fn head_is_embedding(&self) -> bool {
        self.lm_head.shares(self.embed.embeddings())
    }

    /// The token-embedding matrix (vocab, hidden), e.g. for MIS-SemSam's neighbour table.
    pub fn embedding_matrix(&self) -> &Tensor {
        self.embed.embeddings()
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    pub fn clear_cache(&mut self) {
        self.state = SequenceState::new(self.layers.len());
    }

    /// Tokens in the KV cache.
    pub fn seen(&self) -> usize {
        self.state.seen
    }

    /// The sequence `forward` has been continuing, taken out (an empty cache stays): it can be
    /// decoded further with others in [`Gemma2::step_batch`], or put back.
    pub fn take_state(&mut self) -> SequenceState {
        std::mem::replace(&mut self.state, SequenceState::new(self.layers.len()))
    }

    /// Makes `state` the sequence `forward` continues.
    pub fn put_state(&mut self, state: SequenceState) {
        self.state = state;
    }

    /// One decoding step for several sequences at once: `embeds` (B, 1, hidden) holds each one's
    /// new token, `states` their caches (each at its own length, after its own prefill). The
    /// linear layers read their weights once for all B (decoding one sequence at a time is bound
    /// by reading them), the attention runs per sequence. Returns logits (B, vocab), f32, and the
    /// final hidden states (B, hidden): row b is what `forward` gives sequence b alone.
    pub fn step_batch(
        &self,
        states: &mut [&mut SequenceState],
        embeds: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let (b, len, _) = embeds.dims3()?;
        if b != states.len() || len != 1 {
            candle_core::bail!(
                "step_batch takes one token for each of {} sequences, got ({b}, {len})",
                states.len()
            );
        }
        let device = embeds.device().clone();
        let positions = if cpu_f32(embeds) {
            // PaliGemma counts positions from 1.
            let angles = states.iter().map(|s| self.rotary.angles(s.seen + 1));
            StepPositions::Kernel(angles.collect::<Result<_>>()?)
        } else {
            let masks = |window: Option<usize>| -> Result<Vec<Tensor>> {
                states
                    .iter()
                    .map(|s| attention_mask(s.prefix, s.seen, 1, window, &device))
                    .collect()
            };
            StepPositions::Masks {
                full: masks(None)?,
                sliding: self.sliding_window.map(|w| masks(Some(w))).transpose()?,
            }
        };
        let mut x = (embeds * (self.hidden as f64).sqrt())?;
        for (i, layer) in self.layers.iter().enumerate() {
            let window = self.sliding_window.filter(|_| layer.sliding);
            x = layer.forward(&x, |h| {
                layer.attn.step_batch(
                    h,
                    &self.rotary,
                    states,
                    i,
                    &positions,
                    window,
                    self.capping.attention,
                )
            })?;
        }
        for s in states.iter_mut() {
            s.seen += 1;
        }
        let hidden = self.norm.forward(&x)?;
        let logits = hidden.apply(&self.lm_head)?.to_dtype(DType::F32)?;
        Ok((self.cap_logits(logits)?.squeeze(1)?, hidden.squeeze(1)?))
    }

    /// Runs `embeds` (batch 1) after what the cache holds. On an empty cache, the first `prefix`
    /// tokens form the bidirectional prefix. Returns logits for every new position (f32) and the
    /// final hidden states after the output norm (what RadGrounder's mask head reads).
    pub fn forward(&mut self, embeds: &Tensor, prefix: usize) -> Result<(Tensor, Tensor)> {
        self.forward_logits(embeds, prefix, false)
    }

    /// As `forward`; with `last_only`, logits only for the last position (what decoding needs:
    /// the output projection over a long prompt is a large share of a CPU prefill).
    pub fn forward_logits(
        &mut self,
        embeds: &Tensor,
        prefix: usize,
        last_only: bool,
    ) -> Result<(Tensor, Tensor)> {
        let (_, len, _) = embeds.dims3()?;
        if self.state.seen == 0 {
            self.state.prefix = prefix;
        }
        let offset = self.state.seen;
        let device = embeds.device().clone();
        let full = attention_mask(self.state.prefix, offset, len, None, &device)?;
        let sliding = match self.sliding_window {
            Some(w) => Some(attention_mask(
                self.state.prefix,
                offset,
                len,
                Some(w),
                &device,
            )?),
            None => None,
        };
        let normalizer = (self.hidden as f64).sqrt();
        let mut x = (embeds * normalizer)?;
        for (layer, cache) in self.layers.iter().zip(&mut self.state.caches) {
            let mask = layer.mask(&full, sliding.as_ref());
            x = layer.forward(&x, |h| {
                // PaliGemma counts positions from 1.
                layer.attn.forward(
                    h,
                    &self.rotary,
                    offset + 1,
                    mask,
                    self.capping.attention,
                    Some(cache),
                )
            })?;
        }
        self.state.seen += len;
        let hidden = self.norm.forward(&x)?;
        let for_logits = if last_only {
            hidden.narrow(1, len - 1, 1)?
        } else {
            hidden.clone()
        };
        let logits = for_logits.apply(&self.lm_head)?.to_dtype(DType::F32)?;
        Ok((self.cap_logits(logits)?, hidden))
    }

    /// Training forward: a batch of left-aligned sequences (B, L, hidden), no cache; the first
    /// `prefix[b]` tokens of sample b attend bidirectionally. Returns logits (B, L, vocab), f32.
    pub fn forward_batch(&mut self, embeds: &Tensor, prefix: &[usize]) -> Result<Tensor> {
        self.clear_cache();
        let (b, len, _) = embeds.dims3()?;
        let device = embeds.device().clone();
        let mask = |window: Option<usize>| -> Result<Tensor> {
            let mut data = Vec::with_capacity(b * len * len);
            for &p in prefix.iter().take(b) {
                for i in 0..len {
                    for j in 0..len {
                        let causal = j <= i && window.map(|w| j + w > i).unwrap_or(true);
                        let in_prefix = i < p && j < p;
                        data.push(if causal || in_prefix {
                            0f32
                        } else {
                            f32::NEG_INFINITY
                        });
                    }
                }
            }
            Tensor::from_vec(data, (b, 1, len, len), &device)
        };
        let full = mask(None)?;
        let sliding = match self.sliding_window {
            Some(w) => Some(mask(Some(w))?),
            None => None,
        };
        let mut x = (embeds * (self.hidden as f64).sqrt())?;
        for layer in &self.layers {
            let mask = layer.mask(&full, sliding.as_ref());
            x = layer.forward(&x, |h| {
                layer
                    .attn
                    .forward(h, &self.rotary, 1, mask, self.capping.attention, None)
            })?;
        }
        let logits = self
            .norm
            .forward(&x)?
            .apply(&self.lm_head)?
            .to_dtype(DType::F32)?;
        self.cap_logits(logits)
    }
}

/// Whether a decoding step's activations take the CPU attention kernel (f32 on the CPU, not
/// training's differentiable graph).
fn cpu_f32(x: &Tensor) -> bool {
    matches!(x.device(), Device::Cpu)
        && x.dtype() == DType::F32
        && !crate::fast_gelu::differentiable()
}

/// The f32 data of a narrowed KV cache (1, kv_heads, keys, d) with its rows contiguous.
fn cache_view<'a>(
    storage: &'a candle_core::Storage,
    layout: &candle_core::Layout,
    d: usize,
) -> Result<crate::kernels::attention::CacheView<'a>> {
    let candle_core::Storage::Cpu(candle_core::CpuStorage::F32(data)) = storage else {
        candle_core::bail!("the KV cache is not f32 on the CPU");
    };
    let stride = layout.stride();
    if stride.len() != 4 || stride[3] != 1 || stride[2] != d {
        candle_core::bail!("the KV cache's layout {stride:?} has no contiguous rows of {d}");
    }
    Ok(crate::kernels::attention::CacheView {
        data,
        offset: layout.start_offset(),
        head_stride: stride[1],
    })
}

/// Additive mask (0 or -inf), shape (1, 1, len, offset + len), for `len` new tokens after
/// `offset` cached ones: causal, within `window` when given, and bidirectional inside the first
/// `prefix` tokens.
fn attention_mask(
    prefix: usize,
    offset: usize,
    len: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Tensor> {
    let keys = offset + len;
    let data: Vec<f32> = (0..len)
        .flat_map(|qi| {
            let i = offset + qi;
            (0..keys).map(move |j| {
                let causal = j <= i && window.map(|w| j + w > i).unwrap_or(true);
                let in_prefix = i < prefix && j < prefix;
                if causal || in_prefix {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Tensor::from_vec(data, (1, 1, len, keys), device)
}
