//! `groundglass info PATH [--json]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use groundglass_study::{open, NoProgress, Series, Window};
use serde::Serialize;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// A DICOM file, a folder, a DICOMDIR or a NIfTI file.
    pub path: PathBuf,
    /// Print JSON: {"series": [...], "errors": [...]}.
    #[arg(long)]
    pub json: bool,
    /// Headers only: skip reading pixels (no value_range or automatic default_window).
    #[arg(long)]
    pub headers_only: bool,
}

#[derive(Serialize)]
struct SeriesReport<'a> {
    #[serde(flatten)]
    series: &'a Series,
    value_range: Option<[f64; 2]>,
    default_window: Option<[f64; 2]>,
    photometric: Option<String>,
}

#[derive(Serialize)]
struct Report<'a> {
    series: Vec<SeriesReport<'a>>,
    errors: Vec<String>,
}

pub fn run(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let study = match open(&args.path) {
        Ok(s) => s,
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&Report {
                        series: vec![],
                        errors: vec![e.to_string()]
                    })?
                );
            }
            anyhow::bail!("{e}");
        }
    };
    let mut errors: Vec<String> = study.errors.iter().map(|e| e.to_string()).collect();
    let mut reports = Vec::new();
    let mut warnings_from_pixels: Vec<Vec<String>> = Vec::new();
    for series in &study.series {
        let mut report = SeriesReport {
            series,
            value_range: None,
            default_window: None,
            photometric: None,
        };
        let mut extra = Vec::new();
        if !args.headers_only {
            match series.load(0, &NoProgress) {
                Ok(volume) => {
                    report.value_range = Some(volume.value_range());
                    let Window { center, width } = volume.default_window();
                    report.default_window = Some([center, width]);
                    report.photometric = Some(format!("{:?}", volume.photometric).to_uppercase());
                    extra = volume.load_warnings.clone();
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        warnings_from_pixels.push(extra);
        reports.push(report);
    }
    // Pixel-level warnings join the header warnings of their series.
    let owned: Vec<Series> = study
        .series
        .iter()
        .zip(&warnings_from_pixels)
        .map(|(s, extra)| {
            let mut s = s.clone();
            s.warnings.extend(extra.iter().cloned());
            s
        })
        .collect();
    for (r, s) in reports.iter_mut().zip(&owned) {
        r.series = s;
    }
    let loaded = reports.iter().any(|r| r.value_range.is_some())
        || (args.headers_only && !reports.is_empty());
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&Report {
                series: reports,
                errors: errors.clone()
            })?
        );
    } else {
        for (n, r) in reports.iter().enumerate() {
            let s = r.series;
            println!(
                "[{n}] {} {} {:?} spacing {:.3?} mm",
                s.modality, s.description, s.dims, s.spacing_mm
            );
            if let (Some(range), Some(w)) = (r.value_range, r.default_window) {
                println!(
                    "    values {:.1}..{:.1}, window C {:.1} W {:.1}",
                    range[0], range[1], w[0], w[1]
                );
            }
            println!("    {} file(s), uid {}", s.files.len(), s.uid);
            for w in &s.warnings {
                println!("    warning: {w}");
            }
        }
        for e in &errors {
            eprintln!("error: {e}");
        }
    }
    if !loaded {
        let first = errors
            .first()
            .cloned()
            .unwrap_or_else(|| "no series could be loaded".into());
        // Every engine error already names its file.
        eprintln!("groundglass: {first}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
