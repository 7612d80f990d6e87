//! `groundglass review apply --study STUDY [--store DIR] --edits FILE.jsonl`: applies edit records
//! (the same records the viewer writes; the format is documented in `groundglass_feedback::edit`)
//! to the study's corrections store. Every line is checked before anything is written; each
//! applied record is durable when the command reports it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use groundglass_feedback::{Corrections, Edit, Entry, Store};
use serde::Serialize;

#[derive(Args, Debug)]
pub struct ReviewArgs {
    #[command(subcommand)]
    pub what: ReviewWhat,
}

#[derive(Subcommand, Debug)]
pub enum ReviewWhat {
    /// Apply a JSON-lines file of edits to the study's store.
    Apply {
        #[arg(long)]
        study: PathBuf,
        /// The store folder (default: the study's folder in the user's data directory).
        #[arg(long)]
        store: Option<PathBuf>,
        #[arg(long)]
        edits: PathBuf,
        /// Recorded with edits that name no reviewer (default: the login name).
        #[arg(long)]
        reviewer: Option<String>,
    },
}

#[derive(Serialize)]
struct Applied {
    store: PathBuf,
    applied: usize,
    entries: usize,
    annotations: usize,
    strokes: usize,
    /// Live measurements (not deleted).
    measurements: usize,
    problems: Vec<String>,
}

/// Tells the user, on stderr, what opening the store had to leave out.
pub fn report_store_damage(store: &Store) {
    for (_, text) in store.recovery_notes() {
        eprintln!("groundglass: {text}");
    }
}

/// The store folder for `study`: `--store`, or the default one keyed by the study's series.
pub fn store_dir(
    study: &Path,
    store: Option<PathBuf>,
) -> anyhow::Result<(PathBuf, groundglass_study::Study)> {
    let opened =
        groundglass_study::open(study).with_context(|| format!("opening {}", study.display()))?;
    let dir = match store {
        Some(d) => d,
        None => {
            let key = groundglass_feedback::key::study_key(&opened.series);
            groundglass_feedback::store::default_dir(&key)
                .context("no data directory on this platform: pass --store")?
        }
    };
    Ok((dir, opened))
}

pub fn run(args: ReviewArgs) -> anyhow::Result<ExitCode> {
    let ReviewWhat::Apply {
        study,
        store,
        edits,
        reviewer,
    } = args.what;
    let (dir, opened) = store_dir(&study, store)?;
    let text =
        std::fs::read_to_string(&edits).with_context(|| format!("reading {}", edits.display()))?;
    let reviewer = reviewer.unwrap_or_else(crate::viewer::default_reviewer);
    let uids: Vec<&str> = opened.series.iter().map(|s| s.uid.as_str()).collect();
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with("//") {
            continue;
        }
        let mut entry: Entry = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not an edit record", edits.display(), n + 1))?;
        let slice = match &entry.edit {
            Edit::AddBox { slice, .. }
            | Edit::MaskStroke { slice, .. }
            | Edit::Measure { slice, .. } => Some(slice),
            Edit::Answer { record } => Some(&record.slice),
            _ => None,
        };
        if let Some(s) = slice {
            if !uids.contains(&s.series_uid.as_str()) {
                bail!(
                    "{} line {}: series {} is not in {}",
                    edits.display(),
                    n + 1,
                    s.series_uid,
                    study.display()
                );
            }
        }
        if entry.reviewer.is_empty() {
            entry.reviewer = reviewer.clone();
        }
        if entry.at_unix_ms == 0 {
            entry.at_unix_ms = groundglass_feedback::now_unix_ms();
        }
        entries.push(entry);
    }
    let mut store = Store::open(&dir)?;
    report_store_damage(&store);
    let applied = entries.len();
    for entry in entries {
        store.append_entry(entry)?;
    }
    let c = Corrections::replay(store.entries());
    let report = Applied {
        store: dir,
        applied,
        entries: store.entries().len(),
        annotations: c.annotations.len(),
        strokes: c.strokes.len(),
        measurements: c.measurements.values().filter(|m| !m.deleted).count(),
        problems: c
            .problems
            .iter()
            .map(|(seq, why)| format!("entry {seq}: {why}"))
            .collect(),
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
