//! The slice a command works on: `--series N --plane P --index K --volume T`, shared by `slice` and
//! `ask` so both pick, check and extract it the same way.

use std::path::Path;

use anyhow::{bail, Context};
use clap::Args;
use groundglass_study::{extract, open, NoProgress, Plane, PlaneGrid, Series, SliceImage, Volume};

#[derive(Args, Debug, Clone)]
pub struct SliceSelection {
    /// Which series (index as listed by `info`).
    #[arg(long, default_value_t = 0)]
    pub series: usize,
    /// acquired, axial, coronal or sagittal.
    #[arg(long, default_value = "acquired")]
    pub plane: String,
    /// Slice index in that plane; the middle slice by default.
    #[arg(long)]
    pub index: Option<usize>,
    /// Volume of a 4D series (0-based).
    #[arg(long, default_value_t = 0)]
    pub volume: usize,
}

/// The chosen series, its loaded volume and the extracted slice.
pub struct Selected {
    pub series: Series,
    pub volume: Volume,
    pub slice: SliceImage,
}

impl SliceSelection {
    /// Opens `path`, loads the series and cuts the slice; bad choices name what is available.
    pub fn select(&self, path: &Path) -> anyhow::Result<Selected> {
        let plane = Plane::parse(&self.plane).with_context(|| {
            format!(
                "--plane {:?}: expected acquired, axial, coronal or sagittal",
                self.plane
            )
        })?;
        let study = open(path)?;
        let count = study.series.len();
        let series = study.series.into_iter().nth(self.series).with_context(|| {
            format!(
                "--series {}: {} has {count} series (0..{})",
                self.series,
                path.display(),
                count.saturating_sub(1)
            )
        })?;
        let volume = series.load(self.volume, &NoProgress)?;
        let grid = PlaneGrid::new(&volume, plane);
        let index = self.index.unwrap_or(grid.count / 2);
        if index >= grid.count {
            bail!(
                "--index {index}: the {} plane has {} slices (0..{})",
                plane.name(),
                grid.count,
                grid.count - 1
            );
        }
        let slice = extract(&volume, plane, index);
        Ok(Selected {
            series,
            volume,
            slice,
        })
    }
}
