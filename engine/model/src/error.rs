//! Errors of the model runtime; each names the file or tensor at fault.

use std::path::PathBuf;

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: missing; a checkpoint folder needs config.json, weights (model.safetensors or pytorch_model.bin, single or with a sharded *.index.json) and tokenizer.json")]
    MissingFile { path: PathBuf },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{path}: unknown architecture {found:?}; expected PaliGemmaForConditionalGeneration (model_type paligemma) with a gemma2 text model")]
    UnknownArchitecture { path: PathBuf, found: String },
    #[error("{path}: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("tensor {name}: {message}")]
    Tensor { name: String, message: String },
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
    /// A request's input the model cannot take (the message says what and why).
    #[error("{0}")]
    Input(String),
    #[error("the checkpoint in {dir} cannot answer a {task} request: {why}")]
    UnsupportedTask {
        dir: PathBuf,
        task: String,
        why: String,
    },
    #[error("{path}: tokenizer: {message}")]
    Tokenizer { path: PathBuf, message: String },
}
