//! `groundglass measure PATH [--series N] [--plane P] [--index K] (--line X0,Y0,X1,Y1 |
//! --rect X0,Y0,X1,Y1 | --ellipse X0,Y0,X1,Y1 | --point X,Y) [--json]`.
//!
//! Coordinates are pixels of the PNG `slice` writes for the same selection (square pixels), with
//! pixel centres at whole numbers; they are carried back onto the slice's own pixels, so regions
//! count the stored voxels, not resampled ones.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use groundglass_study::measure::{length_mm, modality_unit, region_stats, value_at, Region};
use groundglass_study::{square_size, SliceImage};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("shape").required(true).args(["line", "rect", "ellipse", "point"])))]
pub struct MeasureArgs {
    /// A DICOM file, a folder, a DICOMDIR or a NIfTI file.
    pub path: PathBuf,
    #[command(flatten)]
    pub selection: super::selection::SliceSelection,
    /// A line from (X0, Y0) to (X1, Y1): its length in mm.
    #[arg(long, value_name = "X0,Y0,X1,Y1", allow_hyphen_values = true)]
    pub line: Option<String>,
    /// A rectangle with opposite corners (X0, Y0), (X1, Y1): statistics of the pixels inside.
    #[arg(long, value_name = "X0,Y0,X1,Y1", allow_hyphen_values = true)]
    pub rect: Option<String>,
    /// The ellipse inscribed in that rectangle: statistics of the pixels inside.
    #[arg(long, value_name = "X0,Y0,X1,Y1", allow_hyphen_values = true)]
    pub ellipse: Option<String>,
    /// The value of one pixel.
    #[arg(long, value_name = "X,Y", allow_hyphen_values = true)]
    pub point: Option<String>,
    /// Print JSON instead of a line of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: MeasureArgs) -> anyhow::Result<ExitCode> {
    let selected = args.selection.select(&args.path)?;
    let slice = &selected.slice;
    let to_slice = PngToSlice::new(slice);
    let unit = modality_unit(&selected.series.modality);
    let output = if let Some(text) = &args.line {
        let [x0, y0, x1, y1] = numbers::<4>("--line", text)?;
        let mm = length_mm(slice, to_slice.map([x0, y0]), to_slice.map([x1, y1]));
        (
            serde_json::json!({ "length_mm": mm }),
            format!("length {mm:.2} mm"),
        )
    } else if let Some(text) = &args.point {
        let [x, y] = numbers::<2>("--point", text)?;
        let Some(value) = value_at(slice, to_slice.map([x, y])) else {
            bail!(
                "--point {text}: outside the slice ({} x {} pixels) or the volume",
                to_slice.png[0],
                to_slice.png[1]
            );
        };
        (
            serde_json::json!({ "value": value, "unit": unit }),
            format!("{value} {unit}"),
        )
    } else {
        let (option, text, ellipse) = match (&args.rect, &args.ellipse) {
            (Some(t), _) => ("--rect", t, false),
            (_, Some(t)) => ("--ellipse", t, true),
            _ => bail!("give --line, --rect, --ellipse or --point"),
        };
        let [x0, y0, x1, y1] = numbers::<4>(option, text)?;
        let (a, b) = (to_slice.map([x0, y0]), to_slice.map([x1, y1]));
        let region = if ellipse {
            Region::Ellipse { a, b }
        } else {
            Region::Rectangle { a, b }
        };
        if slice.channels != 1 {
            bail!("{option}: region statistics need a greyscale image; this series is colour");
        }
        let Some(s) = region_stats(slice, region) else {
            bail!(
                "{option} {text}: no pixel centre inside it on the slice ({} x {} pixels)",
                to_slice.png[0],
                to_slice.png[1]
            );
        };
        (
            serde_json::json!({
                "mean": s.mean, "sd": s.sd, "min": s.min, "max": s.max,
                "area_mm2": s.area_mm2, "voxels": s.voxels, "unit": unit,
            }),
            format!(
                "mean {:.1} {unit}, SD {:.1}, min {}, max {}, area {:.1} mm² ({} voxels)",
                s.mean, s.sd, s.min, s.max, s.area_mm2, s.voxels
            ),
        )
    };
    if args.json {
        println!("{}", output.0);
    } else {
        println!("{}", output.1);
    }
    Ok(ExitCode::SUCCESS)
}

/// `N` comma-separated numbers, each checked to be finite.
fn numbers<const N: usize>(option: &str, text: &str) -> anyhow::Result<[f64; N]> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.len() != N {
        bail!("{option} {text:?}: expected {N} comma-separated numbers");
    }
    let mut out = [0.0; N];
    for (o, p) in out.iter_mut().zip(&parts) {
        *o = p
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .with_context(|| format!("{option} {text:?}: {p:?} is not a number"))?;
    }
    Ok(out)
}

/// From the `slice` PNG's pixels to the slice's: the PNG resamples to square pixels over the
/// same extent (`square_values`), pixel centres at `(o + 0.5) · n_in / n_out − 0.5`.
struct PngToSlice {
    png: [usize; 2],
    slice: [usize; 2],
}

impl PngToSlice {
    fn new(slice: &SliceImage) -> Self {
        let (w, h) = (slice.width, slice.height);
        PngToSlice {
            png: square_size(w, h, slice.pixel_spacing()),
            slice: [w, h],
        }
    }

    fn map(&self, p: [f64; 2]) -> [f64; 2] {
        std::array::from_fn(|d| (p[d] + 0.5) * self.slice[d] as f64 / self.png[d] as f64 - 0.5)
    }
}
