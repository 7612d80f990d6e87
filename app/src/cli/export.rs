//! `groundglass export --study STUDY [--store DIR] --format radgrounder|nifti|dicom-seg --out DIR
//! [--keep-identifiers]`: the study's confirmed corrections as training data (RadGrounder format)
//! or label images (NIfTI label maps, DICOM SEG). De-identified unless `--keep-identifiers`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use groundglass_feedback::export::{dicom_seg, nifti, radgrounder, Deidentify};
use groundglass_feedback::{Corrections, Store};
use groundglass_grounding::LabelMap;
use groundglass_study::{NoProgress, SeriesSource};
use serde::Serialize;

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[arg(long)]
    pub study: PathBuf,
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// radgrounder, nifti or dicom-seg.
    #[arg(long)]
    pub format: String,
    #[arg(long)]
    pub out: PathBuf,
    /// Keep patient and study identifiers (exports are de-identified by default).
    #[arg(long)]
    pub keep_identifiers: bool,
}

#[derive(Serialize)]
struct Written {
    series_uid: String,
    path: PathBuf,
    /// Slices (radgrounder), labelled voxels (nifti) or frames (dicom-seg).
    count: usize,
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    if !["radgrounder", "nifti", "dicom-seg"].contains(&args.format.as_str()) {
        bail!(
            "--format {:?}: expected radgrounder, nifti or dicom-seg",
            args.format
        );
    }
    let (dir, study) = super::review::store_dir(&args.study, args.store.clone())?;
    if !dir.join("journal.bin").exists() && !dir.join("snapshot.json").exists() {
        bail!("no corrections store at {}", dir.display());
    }
    let store = Store::open(&dir)?;
    let corrections = Corrections::replay(store.entries());
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let deidentify = if args.keep_identifiers {
        Deidentify::No
    } else {
        Deidentify::Yes
    };
    let classes = LabelMap::radgrounder();
    let mut written = Vec::new();
    for series in &study.series {
        let used = corrections
            .annotations
            .values()
            .any(|a| a.slice.series_uid == series.uid)
            || corrections
                .strokes
                .iter()
                .any(|s| s.slice.series_uid == series.uid);
        if !used {
            continue;
        }
        let volume = series
            .load(0, &NoProgress)
            .with_context(|| format!("loading series {}", series.uid))?;
        let stem: String = series
            .uid
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        match args.format.as_str() {
            "radgrounder" => {
                let n = radgrounder::export(&args.out, series, &volume, &corrections)?;
                written.push(Written {
                    series_uid: series.uid.clone(),
                    path: args.out.clone(),
                    count: n,
                });
            }
            "nifti" => {
                let labels = corrections.label_volume(&series.uid, &volume);
                let path = args.out.join(format!("{stem}_labels.nii.gz"));
                nifti::write(
                    &path,
                    &labels,
                    "groundglass corrections: RadGrounder class ids",
                )?;
                written.push(Written {
                    series_uid: series.uid.clone(),
                    path,
                    count: labels.labels.iter().filter(|&&l| l > 0).count(),
                });
            }
            _ => {
                let SeriesSource::Dicom(plan) = &series.source else {
                    eprintln!("series {} is not DICOM: no DICOM SEG for it", series.uid);
                    continue;
                };
                let labels = corrections.label_volume(&series.uid, &volume);
                let path = args.out.join(format!("{stem}_seg.dcm"));
                let frames = dicom_seg::write(
                    &path,
                    plan,
                    &labels,
                    &classes,
                    deidentify,
                    &dir.display().to_string(),
                    env!("CARGO_PKG_VERSION"),
                )?;
                written.push(Written {
                    series_uid: series.uid.clone(),
                    path,
                    count: frames,
                });
            }
        }
    }
    if written.is_empty() {
        bail!(
            "nothing to export: the store has no corrections for {}",
            args.study.display()
        );
    }
    println!("{}", serde_json::to_string_pretty(&written)?);
    Ok(ExitCode::SUCCESS)
}
