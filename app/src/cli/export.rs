//! `groundglass export --study STUDY [--store DIR] --format radgrounder|nifti|dicom-seg|json|sr
//! --out DIR [--keep-identifiers]`: the study's confirmed corrections as training data
//! (RadGrounder format) or label images (NIfTI label maps, DICOM SEG), or its measurements as JSON
//! (geometry in LPS, figures from the voxels) or as a DICOM SR (TID 1500 measurement report).
//! De-identified unless `--keep-identifiers`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use groundglass_feedback::export::dicom_parts::Derived;
use groundglass_feedback::export::{
    dicom_seg, dicom_sr, measurements, nifti, radgrounder, Deidentify,
};
use groundglass_feedback::{Corrections, Store};
use groundglass_grounding::LabelMap;
use groundglass_study::{NoProgress, Series, SeriesSource};
use serde::Serialize;

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[arg(long)]
    pub study: PathBuf,
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// radgrounder, nifti, dicom-seg (corrections), json or sr (measurements).
    #[arg(long)]
    pub format: String,
    #[arg(long)]
    pub out: PathBuf,
    /// Keep patient and study identifiers (exports are de-identified by default).
    #[arg(long)]
    pub keep_identifiers: bool,
    /// Send the exported DICOM (dicom-seg, sr) to this PACS (STOW-RS to a DICOMweb address,
    /// C-STORE to a dicom://AET@host:port one), where it is linked to the source study: implies
    /// --keep-identifiers.
    #[arg(long)]
    pub send: Option<String>,
    /// Our AE title, for a DIMSE --send address.
    #[arg(long, default_value = "GROUNDGLASS")]
    pub calling_ae: String,
    /// DICOMweb basic authentication for --send (the password from GROUNDGLASS_PACS_PASSWORD).
    #[arg(long)]
    pub user: Option<String>,
}

#[derive(Serialize)]
pub struct Written {
    pub series_uid: String,
    pub path: PathBuf,
    /// Slices (radgrounder), labelled voxels (nifti), frames (dicom-seg) or measurements (json,
    /// sr).
    pub count: usize,
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    if !["radgrounder", "nifti", "dicom-seg", "json", "sr"].contains(&args.format.as_str()) {
        bail!(
            "--format {:?}: expected radgrounder, nifti, dicom-seg, json or sr",
            args.format
        );
    }
    // The address is checked before any work, so a typo costs nothing.
    let send_to = match &args.send {
        Some(address) if args.format == "dicom-seg" || args.format == "sr" => {
            Some(super::pacs::server(&super::pacs::ServerArgs {
                server: address.clone(),
                calling_ae: args.calling_ae.clone(),
                user: args.user.clone(),
            })?)
        }
        Some(_) => bail!("--send: only dicom-seg and sr exports are DICOM a PACS stores"),
        None => None,
    };
    let (dir, study) = super::review::store_dir(&args.study, args.store.clone())?;
    if !dir.join("journal.bin").exists() && !dir.join("snapshot.json").exists() {
        bail!("no corrections store at {}", dir.display());
    }
    let store = Store::open(&dir)?;
    super::review::report_store_damage(&store);
    let corrections = Corrections::replay(store.entries());
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let deidentify = if args.keep_identifiers || send_to.is_some() {
        Deidentify::No
    } else {
        Deidentify::Yes
    };
    let mut written = Vec::new();
    for series in &study.series {
        if args.format == "sr" {
            written.extend(write_sr(
                series,
                &corrections,
                &args.out,
                deidentify,
                &dir.display().to_string(),
            )?);
            continue;
        }
        if args.format == "json" {
            let all = measurement_reports(series, &corrections)?;
            if all.is_empty() {
                continue;
            }
            let path = args
                .out
                .join(format!("{}_measurements.json", file_stem(&series.uid)));
            let text = serde_json::to_string_pretty(&serde_json::json!({
                "series_uid": series.uid, "measurements": all,
            }))?;
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            written.push(Written {
                series_uid: series.uid.clone(),
                path,
                count: all.len(),
            });
            continue;
        }
        if args.format == "dicom-seg" {
            written.extend(write_seg(
                series,
                &corrections,
                &args.out,
                deidentify,
                &dir.display().to_string(),
            )?);
            continue;
        }
        if !has_labels(series, &corrections) {
            continue;
        }
        let volume = series
            .load(0, &NoProgress)
            .with_context(|| format!("loading series {}", series.uid))?;
        let stem = file_stem(&series.uid);
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
            other => bail!("--format {other:?}: not a label export"),
        }
    }
    if written.is_empty() {
        bail!(
            "nothing to export: the store has no corrections for {}",
            args.study.display()
        );
    }
    println!("{}", serde_json::to_string_pretty(&written)?);
    if let Some(server) = &send_to {
        let files: Vec<PathBuf> = written.iter().map(|w| w.path.clone()).collect();
        super::pacs::send(server, &files)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A series UID as a file name (anything but letters, digits and dots becomes `_`).
pub fn file_stem(uid: &str) -> String {
    uid.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether the store holds boxes or strokes on `series` (what a label export writes).
fn has_labels(series: &Series, corrections: &Corrections) -> bool {
    corrections
        .annotations
        .values()
        .any(|a| a.slice.series_uid == series.uid)
        || corrections
            .strokes
            .iter()
            .any(|s| s.slice.series_uid == series.uid)
}

/// The live measurements of `series` on every volume (time point) that carries one.
fn measurement_reports(
    series: &Series,
    corrections: &Corrections,
) -> anyhow::Result<Vec<measurements::MeasurementReport>> {
    let mut volumes: Vec<usize> = corrections
        .measurements
        .values()
        .filter(|m| !m.deleted && m.slice.series_uid == series.uid)
        .map(|m| m.slice.volume)
        .collect();
    volumes.sort_unstable();
    volumes.dedup();
    let mut all = Vec::new();
    for t in volumes {
        let volume = series
            .load(t, &NoProgress)
            .with_context(|| format!("loading series {} volume {t}", series.uid))?;
        all.extend(measurements::reports(series, &volume, t, corrections));
    }
    Ok(all)
}

/// The measurements of `series` as a DICOM SR in `out`; `None` when it has none or is not DICOM
/// (said on stderr). `store` names the corrections store in the SR. Shared with the viewer's
/// "Send to PACS".
pub fn write_sr(
    series: &Series,
    corrections: &Corrections,
    out: &Path,
    deidentify: Deidentify,
    store: &str,
) -> anyhow::Result<Option<Written>> {
    let all = measurement_reports(series, corrections)?;
    if all.is_empty() {
        return Ok(None);
    }
    let SeriesSource::Dicom(plan) = &series.source else {
        eprintln!("series {} is not DICOM: no DICOM SR for it", series.uid);
        return Ok(None);
    };
    let path = out.join(format!("{}_measurements_sr.dcm", file_stem(&series.uid)));
    let count = dicom_sr::write(
        &path,
        plan,
        &all,
        deidentify,
        store,
        env!("CARGO_PKG_VERSION"),
    )?;
    Ok(Some(Written {
        series_uid: series.uid.clone(),
        path,
        count,
    }))
}

/// The boxes and strokes on `series` as a DICOM SEG in `out`; `None` when it has none or is not
/// DICOM (said on stderr). Shared with the viewer's "Send to PACS".
pub fn write_seg(
    series: &Series,
    corrections: &Corrections,
    out: &Path,
    deidentify: Deidentify,
    store: &str,
) -> anyhow::Result<Option<Written>> {
    if !has_labels(series, corrections) {
        return Ok(None);
    }
    let SeriesSource::Dicom(plan) = &series.source else {
        eprintln!("series {} is not DICOM: no DICOM SEG for it", series.uid);
        return Ok(None);
    };
    let volume = series
        .load(0, &NoProgress)
        .with_context(|| format!("loading series {}", series.uid))?;
    let labels = corrections.label_volume(&series.uid, &volume);
    let path = out.join(format!("{}_seg.dcm", file_stem(&series.uid)));
    let frames = dicom_seg::write(
        &path,
        plan,
        &labels,
        &LabelMap::radgrounder(),
        &Derived::CORRECTIONS_SEG,
        deidentify,
        store,
        env!("CARGO_PKG_VERSION"),
    )?;
    Ok(Some(Written {
        series_uid: series.uid.clone(),
        path,
        count: frames,
    }))
}
