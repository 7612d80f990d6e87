//! The demo model's architecture: PaliGemma 2 in miniature (SigLIP on 96 px in 16 px patches, a
//! small Gemma 2), written as a Hugging Face `config.json` the runtime and transformers both read.

use serde_json::{json, Value};

/// Sizes of a small PaliGemma 2.
#[derive(Clone, Debug)]
pub struct DemoSize {
    pub image_size: usize,
    pub patch_size: usize,
    pub vision_hidden: usize,
    pub vision_layers: usize,
    pub text_hidden: usize,
    pub text_layers: usize,
    pub heads: usize,
    pub intermediate: usize,
}

impl Default for DemoSize {
    fn default() -> Self {
        DemoSize {
            image_size: 96,
            patch_size: 16,
            vision_hidden: 128,
            vision_layers: 3,
            text_hidden: 128,
            text_layers: 3,
            heads: 4,
            intermediate: 512,
        }
    }
}

pub fn config_json(size: &DemoSize, vocab: usize, image_token: u32) -> Value {
    let n_img = (size.image_size / size.patch_size).pow(2);
    let head_dim = size.text_hidden / size.heads;
    json!({
        "architectures": ["PaliGemmaForConditionalGeneration"],
        "model_type": "paligemma",
        "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0,
        "hidden_size": size.text_hidden,
        "projection_dim": size.text_hidden,
        "image_token_index": image_token,
        "vocab_size": vocab,
        "tie_word_embeddings": true,
        "text_config": {
            "model_type": "gemma2",
            "hidden_size": size.text_hidden,
            "intermediate_size": size.intermediate,
            "num_hidden_layers": size.text_layers,
            "num_attention_heads": size.heads,
            "num_key_value_heads": size.heads / 2,
            "head_dim": head_dim,
            "query_pre_attn_scalar": head_dim,
            "vocab_size": vocab,
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "attn_logit_softcapping": 50.0,
            "final_logit_softcapping": 30.0,
            "sliding_window": 512,
            "layer_types": vec!["full_attention"; size.text_layers],
            "hidden_activation": "gelu_pytorch_tanh",
            "num_image_tokens": n_img,
            "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0,
            "tie_word_embeddings": true
        },
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": size.vision_hidden,
            "intermediate_size": size.intermediate,
            "num_hidden_layers": size.vision_layers,
            "num_attention_heads": size.heads,
            "num_channels": 3,
            "image_size": size.image_size,
            "patch_size": size.patch_size,
            "layer_norm_eps": 1e-6,
            "hidden_act": "gelu_pytorch_tanh",
            "projection_dim": size.text_hidden,
            "vision_use_head": false
        }
    })
}
