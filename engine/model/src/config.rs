//! `config.json` of a PaliGemma 2 checkpoint in Hugging Face layout. Fields carry the names and the
//! defaults transformers uses; both the 4.x (`rope_theta`) and 5.x (`rope_parameters`) spellings load.

use std::path::Path;

use serde::Deserialize;

use crate::error::{ModelError, Result};

#[derive(Clone, Debug, Deserialize)]
pub struct RopeParameters {
    pub rope_theta: Option<f64>,
}

/// The Gemma 2 text model.
#[derive(Clone, Debug, Deserialize)]
pub struct TextConfig {
    #[serde(default)]
    pub model_type: Option<String>,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    pub query_pre_attn_scalar: f64,
    #[serde(default)]
    pub sliding_window: Option<usize>,
    #[serde(default)]
    pub final_logit_softcapping: Option<f64>,
    #[serde(default)]
    pub attn_logit_softcapping: Option<f64>,
    /// "sliding_attention" / "full_attention" per layer; transformers' default alternates, starting
    /// with a sliding layer.
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    #[serde(default = "default_activation")]
    pub hidden_activation: candle_nn::Activation,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    /// transformers 4.x keeps the tie here, 5.x on the outer config.
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_activation() -> candle_nn::Activation {
    candle_nn::Activation::GeluPytorchTanh
}
fn default_max_positions() -> usize {
    8192
}

impl TextConfig {
    pub fn rope_theta(&self) -> f64 {
        self.rope_theta
            .or_else(|| self.rope_parameters.as_ref().and_then(|r| r.rope_theta))
            .unwrap_or(10_000.0)
    }

    /// Whether layer `i` attends through the sliding window.
    pub fn is_sliding(&self, i: usize) -> bool {
        if self.sliding_window.is_none() {
            return false;
        }
        match &self.layer_types {
            Some(types) => types
                .get(i)
                .map(|t| t == "sliding_attention")
                .unwrap_or(false),
            None => i.is_multiple_of(2),
        }
    }
}

/// The SigLIP vision tower, with transformers' `SiglipVisionConfig` defaults. Ours rather than
/// candle-transformers' twin: that crate was the workspace's slowest to compile (3.5 CPU minutes)
/// for this one struct.
#[derive(Clone, Debug, Deserialize)]
pub struct VisionConfig {
    #[serde(default = "vision::hidden_size")]
    pub hidden_size: usize,
    #[serde(default = "vision::intermediate_size")]
    pub intermediate_size: usize,
    #[serde(default = "vision::layers_or_heads")]
    pub num_hidden_layers: usize,
    #[serde(default = "vision::layers_or_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "vision::num_channels")]
    pub num_channels: usize,
    #[serde(default = "vision::image_size")]
    pub image_size: usize,
    #[serde(default = "vision::patch_size")]
    pub patch_size: usize,
    #[serde(default = "vision::hidden_act")]
    pub hidden_act: candle_nn::Activation,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
}

mod vision {
    pub fn hidden_size() -> usize {
        768
    }
    pub fn intermediate_size() -> usize {
        3072
    }
    pub fn layers_or_heads() -> usize {
        12
    }
    pub fn num_channels() -> usize {
        3
    }
    pub fn image_size() -> usize {
        224
    }
    pub fn patch_size() -> usize {
        16
    }
    pub fn hidden_act() -> candle_nn::Activation {
        candle_nn::Activation::GeluPytorchTanh
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct PaliGemmaConfig {
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub model_type: Option<String>,
    pub text_config: TextConfig,
    pub vision_config: VisionConfig,
    pub projection_dim: usize,
    #[serde(alias = "image_token_id")]
    pub image_token_index: u32,
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
}

impl PaliGemmaConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::MissingFile {
                path: path.to_path_buf(),
            },
            _ => ModelError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::Config {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let model_type = value
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let text_type = value
            .pointer("/text_config/model_type")
            .and_then(|v| v.as_str())
            .unwrap_or("gemma2");
        if model_type != "paligemma" || text_type != "gemma2" {
            return Err(ModelError::UnknownArchitecture {
                path: path.to_path_buf(),
                found: format!("model_type {model_type:?}, text model {text_type:?}"),
            });
        }
        serde_json::from_value(value).map_err(|e| ModelError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Image tokens per image: (image_size / patch_size)^2.
    pub fn num_image_tokens(&self) -> usize {
        let side = self.vision_config.image_size / self.vision_config.patch_size.max(1);
        side * side
    }

    /// Whether the output projection is the token embedding (transformers' default, and how
    /// PaliGemma 2 is trained); a stored `lm_head.weight` is then ignored, as transformers ties it.
    pub fn tie_word_embeddings(&self) -> bool {
        self.tie_word_embeddings
            .or(self.text_config.tie_word_embeddings)
            .unwrap_or(true)
    }

    /// End-of-sequence token ids (a number or a list in config.json).
    pub fn eos_ids(&self) -> Vec<u32> {
        match &self.eos_token_id {
            Some(serde_json::Value::Number(n)) => {
                n.as_u64().map(|v| vec![v as u32]).unwrap_or_default()
            }
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_u64())
                .map(|v| v as u32)
                .collect(),
            _ => vec![1],
        }
    }
}
