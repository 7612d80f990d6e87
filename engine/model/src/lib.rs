//! The embedded model runtime: PaliGemma 2 (SigLIP vision tower, linear projector, Gemma 2 decoder)
//! composed on Candle, loading Hugging Face checkpoints from a local folder. No UI, no GPU code of
//! its own: Candle picks CPU, CUDA or Metal (cargo features `cuda`, `metal`).

pub mod checkpoint;
pub mod config;
pub mod decoding;
pub mod error;
pub mod fast_gelu;
pub mod gemma2;
pub mod generate;
pub mod kernels;
pub mod linear;
pub mod mask_head;
pub mod paligemma;
mod pickle_guard;
pub mod precision;
pub mod preprocess;
pub mod prompt;
pub mod quantized_cache;
pub mod semsam;
pub mod session;
pub mod siglip;
pub mod tokenizer;
pub mod visual_prompt;

pub use checkpoint::Checkpoint;
pub use config::PaliGemmaConfig;
pub use decoding::Decoding;
pub use error::{ModelError, Result};
pub use gemma2::SoftCapping;
pub use paligemma::PaliGemma;
pub use precision::Precision;
pub use session::{
    best_device, default_precision, default_soft_capping, Answer, AskInput, ModelSession,
    ModelSummary, SliceMask, TrainedOn, TrainingNotes,
};
