//! Training and evaluation of small grounding models, on the same PaliGemma-2 code the app runs:
//! a dataset builder over synthetic phantoms (grounded reports with one union box per class,
//! yes/no and open questions; English and German; axial, coronal and sagittal slices), the demo tokenizer and
//! configuration, a trainer (AdamW, resumable checkpoints in Hugging Face layout, fine-tuning from a
//! checkpoint and on exported corrections), the grounding evaluation and a MIS-Ground-style
//! spatial-robustness benchmark (`mis_ground`, whose questions the trainer also draws from).

pub mod config;
pub mod dataset;
pub mod eval;
pub mod mis_ground;
pub mod text;
pub mod tokenizer;
pub mod trainer;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {message}")]
    File {
        path: std::path::PathBuf,
        message: String,
    },
    #[error(transparent)]
    Model(#[from] groundglass_model::ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, TrainError>;

pub(crate) fn file_err(path: &std::path::Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}
