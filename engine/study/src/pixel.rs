//! The pixel pipeline of `viewers-and-conventions.md` section 3: stored value -> modality value
//! (rescale or Modality LUT) -> VOI (window or VOI LUT) -> photometric (MONOCHROME1 inverted).

use serde::Serialize;

/// Linear modality transform: `value = stored * slope + intercept` (HU for CT).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rescale {
    pub slope: f64,
    pub intercept: f64,
}

impl Rescale {
    pub const IDENTITY: Rescale = Rescale {
        slope: 1.0,
        intercept: 0.0,
    };

    pub fn apply(&self, stored: f64) -> f64 {
        stored * self.slope + self.intercept
    }

    pub fn is_identity(&self) -> bool {
        self.slope == 1.0 && self.intercept == 0.0
    }
}

/// A lookup table as DICOM stores it (Modality LUT or VOI LUT): inputs below `first_mapped` map to
/// the first entry, inputs past the end to the last.
#[derive(Clone, Debug, PartialEq)]
pub struct Lut {
    pub first_mapped: i64,
    pub entries: Vec<u16>,
    pub bits: u16,
}

impl Lut {
    pub fn lookup(&self, input: f64) -> f64 {
        if self.entries.is_empty() {
            return input;
        }
        let idx =
            (input.round() as i64 - self.first_mapped).clamp(0, self.entries.len() as i64 - 1);
        f64::from(self.entries[idx as usize])
    }

    pub fn output_range(&self) -> (f64, f64) {
        let min = self.entries.iter().copied().min().unwrap_or(0);
        let max = self.entries.iter().copied().max().unwrap_or(0);
        (f64::from(min), f64::from(max))
    }
}

/// How modality values become presentation values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VoiFunction {
    /// DICOM's default LINEAR function (PS3.3 C.11.2.1.2.1).
    #[default]
    Linear,
    LinearExact,
    Sigmoid,
}

impl VoiFunction {
    pub fn from_dicom(text: &str) -> Self {
        match text.trim() {
            "LINEAR_EXACT" => Self::LinearExact,
            "SIGMOID" => Self::Sigmoid,
            _ => Self::Linear,
        }
    }
}

/// A window as radiologists speak of it: centre (level) and width, in modality units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Window {
    pub center: f64,
    pub width: f64,
}

impl Window {
    pub fn new(center: f64, width: f64) -> Self {
        Self { center, width }
    }

    /// Maps a modality value into [0, 1] with the given VOI function.
    pub fn apply(&self, value: f64, function: VoiFunction) -> f64 {
        let c = self.center;
        let w = self.width;
        match function {
            VoiFunction::Linear => {
                let w = w.max(1.0);
                let lo = c - 0.5 - (w - 1.0) / 2.0;
                let hi = c - 0.5 + (w - 1.0) / 2.0;
                if value <= lo {
                    0.0
                } else if value > hi {
                    1.0
                } else if w <= 1.0 {
                    // A width of 1 is a threshold at the centre.
                    1.0
                } else {
                    ((value - (c - 0.5)) / (w - 1.0) + 0.5).clamp(0.0, 1.0)
                }
            }
            VoiFunction::LinearExact => {
                let w = w.max(f64::MIN_POSITIVE);
                ((value - c) / w + 0.5).clamp(0.0, 1.0)
            }
            VoiFunction::Sigmoid => {
                let w = w.max(f64::MIN_POSITIVE);
                1.0 / (1.0 + (-4.0 * (value - c) / w).exp())
            }
        }
    }

    /// Usable windows have a positive, finite width.
    pub fn is_usable(&self) -> bool {
        self.width.is_finite() && self.center.is_finite() && self.width > 0.0
    }
}

/// CT window presets (centre, width in HU), from the conventions checklist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowPreset {
    Lung,
    SoftTissue,
    Bone,
    Brain,
    Liver,
}

impl WindowPreset {
    pub const ALL: [WindowPreset; 5] = [
        WindowPreset::Lung,
        WindowPreset::SoftTissue,
        WindowPreset::Bone,
        WindowPreset::Brain,
        WindowPreset::Liver,
    ];

    pub fn window(self) -> Window {
        match self {
            WindowPreset::Lung => Window::new(-600.0, 1500.0),
            WindowPreset::SoftTissue => Window::new(40.0, 400.0),
            WindowPreset::Bone => Window::new(400.0, 2000.0),
            WindowPreset::Brain => Window::new(40.0, 80.0),
            WindowPreset::Liver => Window::new(60.0, 150.0),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WindowPreset::Lung => "lung",
            WindowPreset::SoftTissue => "soft_tissue",
            WindowPreset::Bone => "bone",
            WindowPreset::Brain => "brain",
            WindowPreset::Liver => "liver",
        }
    }

    /// Accepts `lung`, `soft-tissue`, `soft_tissue`, `softtissue`, `mediastinum`, `bone`, `brain`,
    /// `liver`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().replace(['-', ' '], "_").as_str() {
            "lung" => Some(Self::Lung),
            "soft_tissue" | "softtissue" | "soft" | "mediastinum" | "abdomen" => {
                Some(Self::SoftTissue)
            }
            "bone" => Some(Self::Bone),
            "brain" => Some(Self::Brain),
            "liver" => Some(Self::Liver),
            _ => None,
        }
    }
}

/// Photometric interpretation after decoding. Colour data (RGB, YBR decoded to RGB, palette applied)
/// is stored as RGB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Photometric {
    /// Minimum value displayed white: invert after VOI.
    Monochrome1,
    Monochrome2,
    Rgb,
}

/// A robust automatic window from a sample of modality values: the 0.5th to 99.5th percentile,
/// ignoring the padding value and non-finite samples. `None` when the sample is empty.
pub fn auto_window(values: impl Iterator<Item = f64>, padding: Option<f64>) -> Option<Window> {
    let mut sample: Vec<f64> = values
        .filter(|v| v.is_finite() && Some(*v) != padding)
        .collect();
    if sample.is_empty() {
        return None;
    }
    let lo_idx = ((sample.len() - 1) as f64 * 0.005).round() as usize;
    let hi_idx = ((sample.len() - 1) as f64 * 0.995).round() as usize;
    let lo = *sample
        .select_nth_unstable_by(lo_idx, |a, b| a.total_cmp(b))
        .1;
    let hi = *sample
        .select_nth_unstable_by(hi_idx, |a, b| a.total_cmp(b))
        .1;
    let width = (hi - lo).max(1.0);
    Some(Window::new((lo + hi) / 2.0, width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_window_matches_dicom_formula() {
        let w = Window::new(40.0, 400.0);
        assert_eq!(w.apply(-200.0, VoiFunction::Linear), 0.0);
        assert_eq!(w.apply(300.0, VoiFunction::Linear), 1.0);
        let mid = w.apply(39.5, VoiFunction::Linear);
        assert!((mid - 0.5).abs() < 1e-12, "{mid}");
    }

    #[test]
    fn sigmoid_is_half_at_the_centre() {
        let w = Window::new(100.0, 50.0);
        assert!((w.apply(100.0, VoiFunction::Sigmoid) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn auto_window_ignores_padding() {
        let values = (0..1000)
            .map(|i| if i < 500 { -2016.0 } else { f64::from(i) })
            .collect::<Vec<_>>();
        let w = auto_window(values.into_iter(), Some(-2016.0)).expect("window");
        assert!(w.center > 500.0 && w.width < 600.0, "{w:?}");
    }

    #[test]
    fn lut_clamps_outside_its_range() {
        let lut = Lut {
            first_mapped: 10,
            entries: vec![5, 6, 7],
            bits: 16,
        };
        assert_eq!(lut.lookup(0.0), 5.0);
        assert_eq!(lut.lookup(11.0), 6.0);
        assert_eq!(lut.lookup(99.0), 7.0);
    }

    #[test]
    fn presets_parse() {
        assert_eq!(
            WindowPreset::parse("Soft-Tissue"),
            Some(WindowPreset::SoftTissue)
        );
        assert_eq!(WindowPreset::parse("lung"), Some(WindowPreset::Lung));
        assert_eq!(WindowPreset::parse("nope"), None);
    }
}
