//! Grouping headers into series and stacking slices: sort by position along the slice normal,
//! spacing from positions, warnings for what does not make a clean volume.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::header::{DicomHeader, FrameGeometry};
use crate::geometry::{dot, norm, normalize, scale, sub, Affine, Vec3};

/// One slice of a stack: a frame of a file.
#[derive(Clone, Debug)]
pub struct SliceRef {
    pub header: Arc<DicomHeader>,
    pub frame: u32,
}

/// A stack ready to load: slices in spatial order and the geometry they make.
#[derive(Clone, Debug)]
pub struct DicomSeriesPlan {
    pub uid: String,
    pub modality: String,
    pub description: String,
    pub patient_name: String,
    pub patient_id: String,
    pub slices: Vec<SliceRef>,
    /// Columns, rows, slices.
    pub dims: [usize; 3],
    pub affine: Affine,
    pub warnings: Vec<String>,
}

impl DicomSeriesPlan {
    pub fn first(&self) -> &DicomHeader {
        &self.slices[0].header
    }

    /// Distinct files in slice order.
    pub fn files(&self) -> Vec<std::path::PathBuf> {
        let mut out: Vec<std::path::PathBuf> = Vec::new();
        for s in &self.slices {
            if out.last() != Some(&s.header.path) {
                out.push(s.header.path.clone());
            }
        }
        out
    }
}

/// Tolerance for "same position" and for spacing irregularities (Slicer uses 0.01 mm).
const POSITION_EPSILON_MM: f64 = 0.01;

/// Groups image headers into stacks. Multi-frame objects are stacks of their own; single frames
/// are grouped by SeriesInstanceUID, matrix, pixel format and orientation; localizers stay single.
pub fn group_series(headers: Vec<DicomHeader>) -> Vec<DicomSeriesPlan> {
    let mut groups: BTreeMap<(String, String), Vec<Arc<DicomHeader>>> = BTreeMap::new();
    let mut plans = Vec::new();
    for h in headers {
        let h = Arc::new(h);
        if h.frames > 1 {
            plans.push(stack_frames(h));
            continue;
        }
        if h.is_localizer() {
            plans.push(stack_slices(h.series_uid.clone(), vec![h], Vec::new()));
            continue;
        }
        let orientation = h
            .frame_geometry
            .first()
            .map(|g| {
                let r = |v: f64| format!("{:.3}", v + 0.0);
                format!(
                    "{} {} {} {} {} {}",
                    r(g.row_dir[0]),
                    r(g.row_dir[1]),
                    r(g.row_dir[2]),
                    r(g.col_dir[0]),
                    r(g.col_dir[1]),
                    r(g.col_dir[2])
                )
            })
            .unwrap_or_else(|| "none".into());
        let key = format!(
            "{}x{} s{} b{} {} {}",
            h.cols, h.rows, h.samples_per_pixel, h.bits_allocated, h.photometric, orientation
        );
        groups
            .entry((h.series_uid.clone(), key))
            .or_default()
            .push(h);
    }

    // A series UID that splits into several stacks (mixed orientations, radial sets, other
    // matrices) says so on each of them.
    let mut per_uid: BTreeMap<String, usize> = BTreeMap::new();
    for (uid, _) in groups.keys() {
        *per_uid.entry(uid.clone()).or_default() += 1;
    }
    for ((uid, _), members) in groups {
        let count = per_uid.get(&uid).copied().unwrap_or(1);
        let mut warnings = Vec::new();
        if count > 1 {
            warnings.push(format!(
                "series {uid} mixes {count} orientations or image formats; shown as separate stacks, not one volume"
            ));
        }
        plans.push(stack_slices(uid, members, warnings));
    }
    plans.sort_by(|a, b| {
        (a.first().path.as_path(), a.uid.as_str()).cmp(&(b.first().path.as_path(), b.uid.as_str()))
    });
    plans
}

fn plan_base(
    h: &DicomHeader,
    uid: String,
    slices: Vec<SliceRef>,
    affine: Affine,
    warnings: Vec<String>,
) -> DicomSeriesPlan {
    DicomSeriesPlan {
        uid,
        modality: h.modality.clone(),
        description: h.description.clone(),
        patient_name: h.patient_name.clone(),
        patient_id: h.patient_id.clone(),
        dims: [h.cols as usize, h.rows as usize, slices.len()],
        slices,
        affine,
        warnings,
    }
}

/// A multi-frame object: frames are slices, placed by their per-frame geometry when it has one.
fn stack_frames(h: Arc<DicomHeader>) -> DicomSeriesPlan {
    let mut warnings = h.warnings.clone();
    let uid = h.series_uid.clone();
    let frames: Vec<SliceRef> = (0..h.frames)
        .map(|frame| SliceRef {
            header: h.clone(),
            frame,
        })
        .collect();
    if h.frame_geometry.len() == h.frames as usize {
        let positioned: Vec<(SliceRef, FrameGeometry)> = frames
            .into_iter()
            .zip(h.frame_geometry.iter().copied())
            .collect();
        let (slices, affine, mut w) = sort_and_measure(positioned, h.slice_thickness);
        warnings.append(&mut w);
        return plan_base(&h, uid, slices, affine, warnings);
    }
    warnings.push(format!(
        "{} frames without patient geometry (cine or time series?): stacked in stored order with 1 mm spacing, not a measured volume",
        h.frames
    ));
    let affine = unit_affine(&h);
    plan_base(&h, uid, frames, affine, warnings)
}

fn unit_affine(h: &DicomHeader) -> Affine {
    match h.frame_geometry.first() {
        Some(g) => Affine::from_axes(
            scale(g.row_dir, g.spacing[0]),
            scale(g.col_dir, g.spacing[1]),
            scale(g.normal(), h.slice_thickness.unwrap_or(1.0)),
            g.position,
        ),
        None => Affine::from_axes([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0; 3]),
    }
}

/// Single-frame files of one group.
fn stack_slices(
    uid: String,
    mut members: Vec<Arc<DicomHeader>>,
    mut warnings: Vec<String>,
) -> DicomSeriesPlan {
    for m in &members {
        for w in &m.warnings {
            let file = m
                .path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            warnings.push(format!("{file}: {w}"));
        }
    }
    let all_positioned = members.iter().all(|m| !m.frame_geometry.is_empty());
    if all_positioned {
        let thickness = members[0].slice_thickness;
        let positioned = members
            .iter()
            .map(|m| {
                (
                    SliceRef {
                        header: m.clone(),
                        frame: 0,
                    },
                    m.frame_geometry[0],
                )
            })
            .collect();
        let (slices, affine, mut w) = sort_and_measure(positioned, thickness);
        warnings.append(&mut w);
        let first = slices[0].header.clone();
        return plan_base(&first, uid, slices, affine, warnings);
    }
    // Without geometry there is no spatial order to recover: fall back to InstanceNumber.
    members.sort_by_key(|m| (m.instance_number, m.path.clone()));
    if members.len() > 1 {
        warnings.push(
            "slices have no ImagePositionPatient/ImageOrientationPatient: ordered by InstanceNumber with 1 mm spacing"
                .into(),
        );
    }
    let first = members[0].clone();
    let affine = unit_affine(&first);
    let slices = members
        .into_iter()
        .map(|header| SliceRef { header, frame: 0 })
        .collect();
    plan_base(&first, uid, slices, affine, warnings)
}

/// Sorts positioned slices by d = n . IPP, drops duplicate positions, and derives the affine and
/// the spacing warnings from the positions themselves.
fn sort_and_measure(
    mut slices: Vec<(SliceRef, FrameGeometry)>,
    thickness: Option<f64>,
) -> (Vec<SliceRef>, Affine, Vec<String>) {
    let mut warnings = Vec::new();
    let g0 = slices[0].1;
    let normal = normalize(g0.normal()).unwrap_or([0.0, 0.0, 1.0]);
    let d = |g: &FrameGeometry| dot(normal, g.position);
    slices.sort_by(|a, b| d(&a.1).total_cmp(&d(&b.1)));

    // Duplicates: same position along the normal. Keep the first, name the others.
    let mut kept: Vec<(SliceRef, FrameGeometry)> = Vec::with_capacity(slices.len());
    let mut duplicates = Vec::new();
    for s in slices {
        if let Some(last) = kept.last() {
            if (d(&s.1) - d(&last.1)).abs() < POSITION_EPSILON_MM {
                duplicates.push(describe(&s.0));
                continue;
            }
        }
        kept.push(s);
    }
    if !duplicates.is_empty() {
        warnings.push(format!(
            "{} duplicate slice position(s) ignored: {}",
            duplicates.len(),
            duplicates.join(", ")
        ));
    }

    let n = kept.len();
    let first = kept[0].1;
    let step: Vec3 = if n > 1 {
        scale(
            sub(kept[n - 1].1.position, first.position),
            1.0 / (n - 1) as f64,
        )
    } else {
        scale(normal, thickness.unwrap_or(1.0))
    };
    if n > 1 {
        let positions: Vec<f64> = kept.iter().map(|s| d(&s.1)).collect();
        let steps: Vec<f64> = positions.windows(2).map(|w| w[1] - w[0]).collect();
        let mut sorted = steps.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        for (i, s) in steps.iter().enumerate() {
            if *s > 1.5 * median {
                warnings.push(format!(
                    "gap of {:.2} mm between slices {} and {} (about {} missing slice(s))",
                    s,
                    i,
                    i + 1,
                    ((s / median).round() as i64 - 1).max(1)
                ));
            }
        }
        if max - min > POSITION_EPSILON_MM {
            warnings.push(format!(
                "uneven slice spacing: steps from {min:.3} to {max:.3} mm (median {median:.3}); the volume uses the mean step"
            ));
        }
        // Gantry tilt: the stack advances off the slice normal, the volume is sheared.
        let along = dot(step, normal);
        let off = norm(sub(step, scale(normal, along)));
        if off > 1e-3 * along.abs().max(1e-6) && off > 1e-4 {
            let degrees = off.atan2(along.abs()).to_degrees();
            warnings.push(format!(
                "gantry tilt or sheared stack: slices advance {degrees:.2} degrees off the slice normal; geometry kept exact (sheared affine)"
            ));
        }
        for s in &kept {
            if (s.1.spacing[0] - first.spacing[0]).abs() > 1e-4
                || (s.1.spacing[1] - first.spacing[1]).abs() > 1e-4
            {
                warnings
                    .push("pixel spacing differs between slices; the first slice's is used".into());
                break;
            }
        }
    }
    let affine = Affine::from_axes(
        scale(first.row_dir, first.spacing[0]),
        scale(first.col_dir, first.spacing[1]),
        step,
        first.position,
    );
    (kept.into_iter().map(|s| s.0).collect(), affine, warnings)
}

fn describe(s: &SliceRef) -> String {
    let file = s
        .header
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if s.header.frames > 1 {
        format!("{file} frame {}", s.frame + 1)
    } else {
        file
    }
}
