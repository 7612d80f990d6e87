//! `groundglass slice PATH [--series N] [--plane P] [--index K] [--window W]
//! [--slab MM [--projection mip|minip|mean]] --out FILE.png`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use groundglass_study::slab::{extract_slab, Projection};
use groundglass_study::{square_pixels, to_display, DisplayImage, VoiMapping, Volume};

#[derive(Args, Debug)]
pub struct SliceArgs {
    /// A DICOM file, a folder, a DICOMDIR or a NIfTI file.
    pub path: PathBuf,
    #[command(flatten)]
    pub selection: super::selection::SliceSelection,
    /// A preset (lung, soft_tissue, bone, brain, liver), "C,W", "auto", or "file" (the default).
    // A negative level is typed as users type it: `--window -600,1500`.
    #[arg(long, allow_hyphen_values = true)]
    pub window: Option<String>,
    /// A thick slab of this many millimetres centred on the slice, projected (see --projection).
    #[arg(long, value_name = "MM", allow_negative_numbers = true)]
    pub slab: Option<f64>,
    /// How the slab's slices combine: mip (maximum), minip (minimum) or mean.
    #[arg(long, default_value = "mip", requires = "slab")]
    pub projection: String,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
}

/// Parses `--window`; `None` means the file's own VOI (window or VOI LUT).
pub fn parse_window(text: &str, volume: &Volume) -> anyhow::Result<VoiMapping> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("file") || t.eq_ignore_ascii_case("default") {
        return Ok(file_mapping(volume));
    }
    if t.eq_ignore_ascii_case("auto") {
        return Ok(VoiMapping::Window(
            volume.auto_window(),
            volume.voi_function,
        ));
    }
    match super::preset_or_centre_width(t)? {
        Some(w) => Ok(VoiMapping::Window(w, volume.voi_function)),
        None => bail!("--window {t:?}: expected a preset (lung, soft_tissue, bone, brain, liver), C,W, auto or file"),
    }
}

fn file_mapping(volume: &Volume) -> VoiMapping {
    match (volume.windows.first(), &volume.voi_lut) {
        (None, Some(lut)) => VoiMapping::Lut(lut.clone()),
        _ => VoiMapping::Window(volume.default_window(), volume.voi_function),
    }
}

pub fn run(args: SliceArgs) -> anyhow::Result<ExitCode> {
    let super::selection::Selected {
        volume, mut slice, ..
    } = args.selection.select(&args.path)?;
    if let Some(mm) = args.slab {
        let projection = Projection::parse(&args.projection).with_context(|| {
            format!(
                "--projection {:?}: expected mip, minip or mean",
                args.projection
            )
        })?;
        if !(mm.is_finite() && mm > 0.0) {
            bail!("--slab {mm}: the thickness must be a positive number of millimetres");
        }
        slice = extract_slab(&volume, slice.grid.plane, slice.index, mm, projection);
    }
    let mapping = match &args.window {
        Some(w) => parse_window(w, &volume)?,
        None => file_mapping(&volume),
    };
    let image = square_pixels(
        &to_display(&slice, &mapping, volume.photometric),
        slice.pixel_spacing(),
    );
    write_png(&args.out, &image)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes an 8-bit grey or RGB PNG atomically (temporary file, then rename).
pub fn write_png(path: &Path, image: &DisplayImage) -> anyhow::Result<()> {
    let tmp = path.with_extension("png.tmp");
    {
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut encoder = png::Encoder::new(
            std::io::BufWriter::new(file),
            image.width as u32,
            image.height as u32,
        );
        encoder.set_color(if image.channels == 3 {
            png::ColorType::Rgb
        } else {
            png::ColorType::Grayscale
        });
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        writer
            .write_image_data(&image.pixels)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
