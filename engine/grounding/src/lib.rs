//! Grounded model output. A model answers in text with inline locations; a [`GroundingParser`] turns
//! that text into [`Finding`]s with boxes normalised to the model's input image, and
//! [`Finding::locate`] maps them onto the slice they were asked on: slice pixels and patient LPS.

pub mod finding;
pub mod labels;
pub mod parse;

pub use finding::{BoxNorm, Finding, LocatedFinding};
pub use labels::{LabelMap, Language};
pub use parse::{parser_for, Format, GroundingParser};
