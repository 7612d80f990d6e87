//! `groundglass measure PATH [--series N] [--plane P] [--index K] (--line X0,Y0,X1,Y1 |
//! --angle XA,YA,XV,YV,XB,YB | --rect X0,Y0,X1,Y1 | --ellipse X0,Y0,X1,Y1 |
//! --polygon X,Y,X,Y,X,Y[,...] | --point X,Y) [--json]`.
//!
//! Coordinates are pixels of the PNG `slice` writes for the same selection (square pixels), with
//! pixel centres at whole numbers; they are carried back onto the slice's own pixels, so regions
//! count the stored voxels, not resampled ones.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use groundglass_study::measure::{
    angle_deg, length_mm, modality_unit, region_stats, value_at, Region,
};
use groundglass_study::{square_size, SliceImage};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("shape").required(true).args(["line", "angle", "rect", "ellipse", "polygon", "point"])))]
pub struct MeasureArgs {
    /// A DICOM file, a folder, a DICOMDIR or a NIfTI file.
    pub path: PathBuf,
    #[command(flatten)]
    pub selection: super::selection::SliceSelection,
    /// A line from (X0, Y0) to (X1, Y1): its length in mm.
    #[arg(long, value_name = "X0,Y0,X1,Y1", allow_hyphen_values = true)]
    pub line: Option<String>,
    /// The angle at the vertex (XV, YV) between the rays to (XA, YA) and (XB, YB), in degrees.
    #[arg(long, value_name = "XA,YA,XV,YV,XB,YB", allow_hyphen_values = true)]
    pub angle: Option<String>,
    /// A rectangle with opposite corners (X0, Y0), (X1, Y1): statistics of the pixels inside.
    #[arg(long, value_name = "X0,Y0,X1,Y1", allow_hyphen_values = true)]
    pub rect: Option<String>,
    /// The ellipse inscribed in that rectangle: statistics of the pixels inside.
    #[arg(long, value_name = "X0,Y0,X1,Y1", allow_hyphen_values = true)]
    pub ellipse: Option<String>,
    /// A closed outline through three or more vertices (a freehand ROI): statistics of the pixels
    /// inside (even-odd rule where it crosses itself).
    #[arg(long, value_name = "X,Y,X,Y,X,Y[,...]", allow_hyphen_values = true)]
    pub polygon: Option<String>,
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
    } else if let Some(text) = &args.angle {
        let [xa, ya, xv, yv, xb, yb] = numbers::<6>("--angle", text)?;
        let Some(deg) = angle_deg(
            slice,
            to_slice.map([xa, ya]),
            to_slice.map([xv, yv]),
            to_slice.map([xb, yb]),
        ) else {
            bail!("--angle {text}: an arm has no length (a point equals the vertex)");
        };
        (
            serde_json::json!({ "angle_deg": deg }),
            format!("angle {deg:.2} degrees"),
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
        let (option, text, region) = match (&args.rect, &args.ellipse, &args.polygon) {
            (Some(t), ..) => {
                let [x0, y0, x1, y1] = numbers::<4>("--rect", t)?;
                let (a, b) = (to_slice.map([x0, y0]), to_slice.map([x1, y1]));
                ("--rect", t, Region::Rectangle { a, b })
            }
            (_, Some(t), _) => {
                let [x0, y0, x1, y1] = numbers::<4>("--ellipse", t)?;
                let (a, b) = (to_slice.map([x0, y0]), to_slice.map([x1, y1]));
                ("--ellipse", t, Region::Ellipse { a, b })
            }
            (.., Some(t)) => {
                let values = number_list("--polygon", t)?;
                if values.len() < 6 || values.len() % 2 != 0 {
                    bail!("--polygon {t:?}: expected X,Y pairs of three or more vertices");
                }
                let vertices = values
                    .chunks_exact(2)
                    .map(|p| to_slice.map([p[0], p[1]]))
                    .collect();
                ("--polygon", t, Region::Polygon(vertices))
            }
            _ => bail!("give --line, --angle, --rect, --ellipse, --polygon or --point"),
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
    let values = number_list(option, text)?;
    values
        .try_into()
        .ok()
        .with_context(|| format!("{option} {text:?}: expected {N} comma-separated numbers"))
}

/// Comma-separated numbers, each checked to be finite.
fn number_list(option: &str, text: &str) -> anyhow::Result<Vec<f64>> {
    text.split(',')
        .map(str::trim)
        .map(|p| {
            p.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .with_context(|| format!("{option} {text:?}: {p:?} is not a number"))
        })
        .collect()
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
