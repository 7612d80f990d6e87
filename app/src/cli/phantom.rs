//! `groundglass phantom --seed S [--modality ct|mr] [--dims WxHxD] [--spacing X,Y,Z] [--lesions]
//! [--contrast] --out DIR [--nifti]`: writes a synthetic torso phantom as a DICOM series (and, with
//! `--nifti`, the image and its label map as NIfTI), to open in the viewer or any other tool.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use groundglass_phantom::{generate, Modality, PhantomConfig};

#[derive(Args, Debug)]
pub struct PhantomArgs {
    #[arg(long)]
    pub seed: u64,
    /// ct or mr.
    #[arg(long, default_value = "ct")]
    pub modality: String,
    /// Columns x rows x slices.
    #[arg(long, default_value = "160x160x96")]
    pub dims: String,
    /// Voxel size in mm (default: the field of view fitted to the grid).
    #[arg(long)]
    pub spacing: Option<String>,
    #[arg(long)]
    pub lesions: bool,
    #[arg(long)]
    pub contrast: bool,
    /// Folder for the DICOM series.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write `image.nii.gz` and `labels.nii.gz` beside the series.
    #[arg(long)]
    pub nifti: bool,
}

pub fn run(args: PhantomArgs) -> anyhow::Result<ExitCode> {
    let mut config = match args.modality.as_str() {
        "ct" => PhantomConfig::ct(args.seed),
        "mr" => PhantomConfig::mr(args.seed),
        other => bail!("--modality {other:?}: expected ct or mr"),
    };
    let dims: Vec<usize> = args
        .dims
        .split('x')
        .map(|d| d.parse().ok())
        .collect::<Option<_>>()
        .filter(|d: &Vec<usize>| d.len() == 3 && d.iter().all(|&n| n > 0 && n <= 1024))
        .with_context(|| format!("--dims {:?}: expected WxHxD, each 1..1024", args.dims))?;
    config.dims = [dims[0], dims[1], dims[2]];
    config.spacing_mm = match &args.spacing {
        Some(s) => {
            let v: Vec<f64> = s
                .split(',')
                .map(|x| x.trim().parse().ok())
                .collect::<Option<_>>()
                .filter(|v: &Vec<f64>| v.len() == 3 && v.iter().all(|x| *x > 0.0))
                .with_context(|| format!("--spacing {s:?}: expected X,Y,Z in mm"))?;
            [v[0], v[1], v[2]]
        }
        // The canonical field of view on the requested grid.
        None => {
            let fov = groundglass_phantom::CANONICAL_FOV_MM;
            [
                fov[0] / config.dims[0] as f64,
                fov[1] / config.dims[1] as f64,
                fov[2] / config.dims[2] as f64,
            ]
        }
    };
    config.lesions = args.lesions;
    config.contrast = args.contrast;
    let phantom = generate(&config);
    let files = groundglass_phantom::write_dicom_series(&phantom, &args.out)?;
    if args.nifti {
        groundglass_phantom::write_nifti(&phantom, &args.out.join("image.nii.gz"))?;
        groundglass_phantom::write_label_nifti(&phantom, &args.out.join("labels.nii.gz"))?;
    }
    let modality = match phantom.modality {
        Modality::Ct => "CT",
        Modality::Mr => "MR",
    };
    eprintln!(
        "{modality} phantom seed {} ({:?} voxels) -> {} DICOM files in {}",
        args.seed,
        phantom.dims,
        files.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
