//! Findings placed on real slices: a box in model coordinates maps to the slice pixels and the
//! patient positions it names, on every plane.

mod common;

use common::*;
use groundglass_grounding::{BoxNorm, Finding};
use groundglass_study::{extract, Plane, PlaneGrid};

#[test]
fn a_box_maps_to_the_pixels_and_lps_corners_it_names_on_all_planes() {
    let (_, volume) = only_series(&testdata("dicom/series/ct_head_invesalius"));
    for plane in [
        Plane::Axial,
        Plane::Coronal,
        Plane::Sagittal,
        Plane::Acquired,
    ] {
        let grid = PlaneGrid::new(&volume, plane);
        let slice = extract(&volume, plane, grid.count / 3);
        let finding = Finding {
            keyword: "lesion".into(),
            class_id: None,
            class_name: None,
            box_norm: Some(BoxNorm::new(0.25, 0.5, 0.75, 1.0)),
            mask_index: None,
        };
        let located = finding.locate(&slice);
        let [x0, y0, x1, y1] = located.box_px.expect("box");
        let (w, h) = (slice.width as f64, slice.height as f64);
        assert_eq!(
            [x0, y0, x1, y1],
            [0.25 * w, 0.5 * h, 0.75 * w, h],
            "{plane:?}"
        );
        let corners = located.box_lps.expect("lps");
        // The top-left corner is the top-left edge of pixel (x0, y0): half a pixel before its centre.
        let expected = slice.pixel_to_lps(x0 - 0.5, y0 - 0.5);
        for a in 0..3 {
            assert!((corners[0][a] - expected[a]).abs() < 1e-9, "{plane:?}");
        }
        // The box spans its physical size: width along the plane's right axis.
        let width_mm = groundglass_study::geometry::norm(groundglass_study::geometry::sub(
            corners[1], corners[0],
        ));
        assert!(
            (width_mm - (x1 - x0) * slice.pixel_spacing()[0]).abs() < 1e-9,
            "{plane:?}"
        );
        // And the LPS corner maps back to voxel coordinates inside the volume.
        let ijk = volume
            .affine
            .inverse()
            .expect("invertible")
            .apply(corners[2]);
        assert!(
            ijk.iter()
                .zip(volume.dims)
                .all(|(v, n)| *v > -1.0 && *v < n as f64 + 1.0),
            "{plane:?} {ijk:?}"
        );
    }
}
