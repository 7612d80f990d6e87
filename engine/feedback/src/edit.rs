//! What people do with the model's work, as records: the entries of the corrections store and
//! the lines of `groundglass review apply --edits FILE.jsonl`. One JSON object per line, tagged by
//! `op`:
//!
//! | `op` | fields | meaning |
//! |---|---|---|
//! | `answer` | `record` (an ask record) | a model answer; its findings become annotations `r{id}.f{i}` |
//! | `accept`, `reject`, `clear_verdict` | `annotation` | the radiologist's verdict |
//! | `add_box` | `id`, `slice`, `keyword`, `class_id`?, `box_px` | a new box drawn by hand |
//! | `move` | `annotation`, `box_px` | a box moved or resized (its new edges, slice pixels) |
//! | `relabel` | `annotation`, `class_id`, `keyword`? | another class (and keyword) |
//! | `keyword` | `annotation`, `keyword` | the keyword text |
//! | `delete` | `annotation` | the annotation is removed |
//! | `mask_stroke` | `slice`, `class_id`, `erase`, `radius_px`, `points` | a brush stroke on a slice |
//! | `measure` | `id`, `slice`, `shape` (`line`, `rectangle`, `ellipse`, `angle`, `freehand`, `point`), `points` | a measurement (slice pixel centres): a line's two ends; two opposite corners of a rectangle's or an ellipse's box; an angle's three points, its vertex second; a freehand outline's 3 to 2,048 vertices (closed: the last joins the first); a point's one. `delete` with its `id` removes it |
//! | `move_measurement` | `id`, `points` | a measurement's points after an edit (an end, a corner or a vertex dragged, or the whole outline moved): as many as it had |
//! | `undo`, `redo` | `entry` | takes back (or restores) the entry numbered `entry` |
//!
//! `slice` is `{"series_uid", "volume"?, "plane", "index", "size": [w, h]}`; `box_px` is `[x0, y0, x1, y1]`
//! in slice pixel edges; `points` are slice pixel centres `[x, y]`. Lines may carry `reviewer` and
//! `at_unix_ms`; the store numbers them (`seq`).

use serde::{Deserialize, Serialize};

use crate::record::{AskRecord, MeasureShape, SliceRef};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Edit {
    Answer {
        record: Box<AskRecord>,
    },
    Accept {
        annotation: String,
    },
    Reject {
        annotation: String,
    },
    ClearVerdict {
        annotation: String,
    },
    AddBox {
        id: String,
        slice: SliceRef,
        keyword: String,
        #[serde(default)]
        class_id: Option<u32>,
        box_px: [f64; 4],
    },
    Move {
        annotation: String,
        box_px: [f64; 4],
    },
    Relabel {
        annotation: String,
        class_id: u32,
        #[serde(default)]
        keyword: Option<String>,
    },
    Keyword {
        annotation: String,
        keyword: String,
    },
    Delete {
        annotation: String,
    },
    MaskStroke {
        slice: SliceRef,
        class_id: u32,
        #[serde(default)]
        erase: bool,
        radius_px: f64,
        points: Vec<[f64; 2]>,
    },
    Measure {
        id: String,
        slice: SliceRef,
        shape: MeasureShape,
        points: Vec<[f64; 2]>,
    },
    MoveMeasurement {
        id: String,
        points: Vec<[f64; 2]>,
    },
    Undo {
        entry: u64,
    },
    Redo {
        entry: u64,
    },
}

/// One numbered entry of the store: who did what, when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub at_unix_ms: u64,
    #[serde(default)]
    pub reviewer: String,
    #[serde(flatten)]
    pub edit: Edit,
}

/// The annotation id of finding `finding` of answer `record`.
pub fn finding_id(record: u64, finding: usize) -> String {
    format!("r{record}.f{finding}")
}
