//! The record of the model's work on a study: every answer (slice, plane, prompt, model, time,
//! text, findings, masks) and what people made of it (verdicts now; corrections build on these).
//! No GPU and no UI here.

pub mod edit;
pub mod export;
pub mod history;
pub mod key;
pub mod record;
pub mod state;
pub mod store;

pub use edit::{finding_id, Edit, Entry};
pub use history::History;
pub use record::{now_unix_ms, AskRecord, SliceRef, Verdict, VerdictEntry};
pub use state::{Annotation, Corrections, Origin};
pub use store::{Store, StoreError};
