//! The record of the model's work on a study: every answer (slice, plane, prompt, model, time,
//! text, findings, masks) and what people made of it (verdicts now; corrections build on these).
//! No GPU and no UI here.

pub mod history;
pub mod record;

pub use history::History;
pub use record::{now_unix_ms, AskRecord, SliceRef, Verdict, VerdictEntry};
