//! One viewport's transient state (plane, slice, window, zoom, pan, flips, slab) and the pure geometry
//! that maps screen points to slice pixels and patient positions. No GPU, no egui painting here.

use groundglass_study::geometry::{cross, dot, normalize, rotate, scale, sub, Vec3};
use groundglass_study::slab::Projection;
use groundglass_study::{
    EdgeLetters, Plane, PlaneGrid, Volume, VolumeLayout, Window, WindowPreset,
};

/// What a viewport shows and how.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewState {
    pub plane: Plane,
    pub index: usize,
    pub window: Window,
    /// User inversion, on top of MONOCHROME1's.
    pub invert: bool,
    pub flip_h: bool,
    pub flip_v: bool,
    /// Screen points per millimetre; `None` fits the slice to the viewport.
    pub zoom: Option<f64>,
    /// Slice pixel at the viewport centre; `None` centres the slice.
    pub center_px: Option<[f64; 2]>,
    /// Thick slab: millimetres around the slice (0 = the slice alone) and how it is projected.
    pub slab_mm: f64,
    pub projection: Projection,
    /// A tilted (oblique) plane's screen right, screen down and normal in LPS; `None`: the
    /// plane's own axes.
    pub axes: Option<[Vec3; 3]>,
}

/// The thickest slab the keys and the panel set (a whole torso is ~400 mm).
pub const MAX_SLAB_MM: f64 = 200.0;

impl ViewState {
    pub fn new(plane: Plane, grid: &PlaneGrid, window: Window) -> Self {
        ViewState {
            plane,
            index: grid.count / 2,
            window,
            invert: false,
            flip_h: false,
            flip_v: false,
            zoom: None,
            center_px: None,
            slab_mm: 0.0,
            projection: Projection::Max,
            axes: None,
        }
    }

    /// The sampling grid this view shows: its plane's, or the tilted one.
    pub fn grid(&self, layout: &VolumeLayout) -> PlaneGrid {
        match self.axes {
            Some(axes) => PlaneGrid::from_axes(layout.dims, &layout.affine, self.plane, axes),
            None => PlaneGrid::from_layout(layout, self.plane),
        }
    }

    pub fn is_tilted(&self) -> bool {
        self.axes.is_some()
    }

    /// This view's axes as they are now (right, down, normal).
    pub fn current_axes(&self) -> [Vec3; 3] {
        self.axes.unwrap_or_else(|| self.plane.axes())
    }

    /// The axis that turns the screen clockwise for a positive angle: screen right times screen
    /// down as displayed (after flips), so the turn follows the pointer whichever way the plane
    /// is shown.
    pub fn screen_turn_axis(&self) -> Vec3 {
        let [right, down, _] = self.current_axes();
        let sign = |flip: bool| if flip { -1.0 } else { 1.0 };
        cross(
            scale(right, sign(self.flip_h)),
            scale(down, sign(self.flip_v)),
        )
    }

    /// `r`: back to the slice's default presentation (window, zoom, pan, flips), same slice.
    pub fn reset(&mut self, default_window: Window) {
        self.window = default_window;
        self.invert = false;
        self.flip_h = false;
        self.flip_v = false;
        self.zoom = None;
        self.center_px = None;
        self.slab_mm = 0.0;
    }

    /// `+` / `-`: the slab thicker or thinner by `delta_mm`, within 0..=MAX_SLAB_MM.
    pub fn change_slab(&mut self, delta_mm: f64) {
        self.slab_mm = (self.slab_mm + delta_mm).clamp(0.0, MAX_SLAB_MM);
    }

    /// `m`: the next projection (MIP, MinIP, mean); a slab of 10 mm when there was none.
    pub fn next_projection(&mut self) {
        if self.slab_mm <= 0.0 {
            self.slab_mm = 10.0;
            self.projection = Projection::Max;
            return;
        }
        self.projection = match self.projection {
            Projection::Max => Projection::Min,
            Projection::Min => Projection::Mean,
            Projection::Mean => Projection::Max,
        };
    }

    /// The slab as the shader samples it: the first sample's offset from the slice (in slices,
    /// zero or negative), the number of samples, and the projection's code (0 max, 1 min, 2
    /// mean); `None` for a single slice.
    pub fn slab_samples(&self, grid: &PlaneGrid) -> Option<[f32; 3]> {
        // Centred as `slab_slices` centres it; the shader skips samples outside the volume.
        let n = groundglass_study::slab::slab_len(grid.spacing[2], self.slab_mm);
        let first = -(((n - 1) / 2) as f32);
        let code = match self.projection {
            Projection::Max => 0.0,
            Projection::Min => 1.0,
            Projection::Mean => 2.0,
        };
        (n > 1).then_some([first, n as f32, code])
    }

    pub fn set_preset(&mut self, preset: WindowPreset) {
        self.window = preset.window();
    }

    /// Moves by `delta` slices, clamped to the plane.
    pub fn scroll(&mut self, delta: i64, count: usize) {
        let last = count.saturating_sub(1) as i64;
        self.index = (self.index as i64 + delta).clamp(0, last) as usize;
    }

    /// Left-drag window/level: horizontal changes the width, vertical the level (drag up = higher
    /// level, as in most PACS). The step scales with the current width so both CT and MR feel right.
    pub fn drag_window(&mut self, dx: f64, dy: f64) {
        let step = (self.window.width / 400.0).max(0.01);
        self.window.width = (self.window.width + dx * step * 2.0).max(1e-3);
        self.window.center -= dy * step * 2.0;
    }
}

/// Tilts the planes of the three-plane layout: the views other than `from` turn by `angle`
/// radians about the axis `from` is seen along (clockwise on its screen for a positive angle),
/// so the crosshair lines in `from` turn with the pointer and the planes stay perpendicular.
/// Repeating this from another view makes a double-oblique set.
pub fn tilt_others(views: &mut [ViewState], from: usize, angle: f64) {
    let Some(axis) = views
        .get(from)
        .and_then(|v| normalize(v.screen_turn_axis()))
    else {
        return;
    };
    for (i, view) in views.iter_mut().enumerate() {
        if i == from {
            continue;
        }
        let [r, d, n] = view.current_axes().map(|v| rotate(v, axis, angle));
        // Gram-Schmidt, keeping the plane's handedness (sagittal's is left-handed): many small
        // turns must not let rounding shear the planes.
        let handed = dot(cross(r, d), n).signum();
        let right = normalize(r).unwrap_or(r);
        let down = normalize(sub(d, scale(right, dot(d, right)))).unwrap_or(d);
        let normal = scale(cross(right, down), handed);
        view.axes = Some([right, down, normal]);
    }
}

/// Where a slice lands in a viewport rectangle: the affine map between screen points (relative to
/// the rectangle's top-left) and slice pixel coordinates, honouring zoom, pan and flips.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewTransform {
    pub grid: PlaneGrid,
    pub index: usize,
    pub rect_size: [f64; 2],
    /// Screen points per millimetre.
    pub zoom: f64,
    pub center_px: [f64; 2],
    pub flip_h: bool,
    pub flip_v: bool,
}

impl ViewTransform {
    pub fn new(grid: PlaneGrid, view: &ViewState, rect_size: [f64; 2]) -> Self {
        let width_mm = grid.width as f64 * grid.spacing[0];
        let height_mm = grid.height as f64 * grid.spacing[1];
        let fit = (rect_size[0] / width_mm).min(rect_size[1] / height_mm);
        let fit = if fit.is_finite() && fit > 0.0 {
            fit
        } else {
            1.0
        };
        let center = [
            (grid.width as f64 - 1.0) / 2.0,
            (grid.height as f64 - 1.0) / 2.0,
        ];
        ViewTransform {
            grid,
            index: view.index.min(grid.count.saturating_sub(1)),
            rect_size,
            zoom: view.zoom.unwrap_or(fit),
            center_px: view.center_px.unwrap_or(center),
            flip_h: view.flip_h,
            flip_v: view.flip_v,
        }
    }

    fn signs(&self) -> [f64; 2] {
        [
            if self.flip_h { -1.0 } else { 1.0 },
            if self.flip_v { -1.0 } else { 1.0 },
        ]
    }

    /// Screen point (relative to the rect) to slice pixel coordinates.
    pub fn screen_to_px(&self, p: [f64; 2]) -> [f64; 2] {
        let s = self.signs();
        [
            self.center_px[0]
                + s[0] * (p[0] - self.rect_size[0] / 2.0) / (self.zoom * self.grid.spacing[0]),
            self.center_px[1]
                + s[1] * (p[1] - self.rect_size[1] / 2.0) / (self.zoom * self.grid.spacing[1]),
        ]
    }

    /// Slice pixel coordinates to a screen point (relative to the rect).
    pub fn px_to_screen(&self, px: [f64; 2]) -> [f64; 2] {
        let s = self.signs();
        [
            self.rect_size[0] / 2.0
                + s[0] * (px[0] - self.center_px[0]) * self.zoom * self.grid.spacing[0],
            self.rect_size[1] / 2.0
                + s[1] * (px[1] - self.center_px[1]) * self.zoom * self.grid.spacing[1],
        ]
    }

    pub fn screen_to_lps(&self, p: [f64; 2]) -> Vec3 {
        let px = self.screen_to_px(p);
        self.grid.pixel_to_lps(self.index, px[0], px[1])
    }

    /// Where a patient position projects onto this slice, as a screen point.
    pub fn lps_to_screen(&self, p: Vec3) -> [f64; 2] {
        let rel = sub(p, self.grid.pixel_to_lps(self.index, 0.0, 0.0));
        let px = [
            dot(rel, self.grid.right) / self.grid.spacing[0],
            dot(rel, self.grid.down) / self.grid.spacing[1],
        ];
        self.px_to_screen(px)
    }

    /// The 4x4 matrix (column-major, for WGSL) taking (screen x, screen y, 0, 1) to voxel indices.
    pub fn screen_to_voxel(&self, layout: &VolumeLayout) -> Option<[[f32; 4]; 4]> {
        let inverse = layout.affine.inverse()?;
        let origin = self.screen_to_lps([0.0, 0.0]);
        let ex = sub(self.screen_to_lps([1.0, 0.0]), origin);
        let ey = sub(self.screen_to_lps([0.0, 1.0]), origin);
        let o = inverse.apply(origin);
        let lin = |v: Vec3| sub(inverse.apply(v), inverse.apply([0.0; 3]));
        let (cx, cy) = (lin(ex), lin(ey));
        // Third column: one slice of this plane along its normal (the slab's step).
        let cz = lin(scale(self.grid.normal, self.grid.spacing[2]));
        Some([
            [cx[0] as f32, cx[1] as f32, cx[2] as f32, 0.0],
            [cy[0] as f32, cy[1] as f32, cy[2] as f32, 0.0],
            [cz[0] as f32, cz[1] as f32, cz[2] as f32, 0.0],
            [o[0] as f32, o[1] as f32, o[2] as f32, 1.0],
        ])
    }

    /// Edge letters as displayed, after flips.
    pub fn letters(&self) -> EdgeLetters {
        let s = self.signs();
        EdgeLetters::from_axes(scale(self.grid.right, s[0]), scale(self.grid.down, s[1]))
    }

    /// Slice index that contains patient position `p` along this plane's normal.
    pub fn index_through(grid: &PlaneGrid, p: Vec3) -> usize {
        let d = dot(sub(p, grid.origin), grid.normal) / grid.spacing[2];
        d.round().clamp(0.0, grid.count.saturating_sub(1) as f64) as usize
    }
}

/// The voxel axis (i, j or k) on which every sample of a `screen_to_voxel` matrix lies at a
/// whole voxel: the screen moves nothing along it, the plane sits at a voxel centre, and the
/// slab (`slab`: its samples are taken) steps by whole voxels along it. Every untilted plane has
/// one; the shader then reads four texels a sample instead of eight. The plane's position (and
/// step) along that axis are snapped to the whole voxel they are within 1e-3 of, so rounding in
/// the matrix never makes the shader's floor pick the slice before.
pub fn whole_voxel_axis(m: &mut [[f32; 4]; 4], slab: bool) -> Option<usize> {
    let whole = |v: f32| (v - v.round()).abs() < 1e-3;
    let axis = (0..3).find(|&a| {
        m[0][a].abs() < 1e-6 && m[1][a].abs() < 1e-6 && whole(m[3][a]) && (!slab || whole(m[2][a]))
    })?;
    m[0][axis] = 0.0;
    m[1][axis] = 0.0;
    m[3][axis] = m[3][axis].round();
    if slab {
        m[2][axis] = m[2][axis].round();
    }
    Some(axis)
}

/// The modality value at a patient position (nearest voxel), or `None` outside the volume.
pub fn value_at(volume: &Volume, p: Vec3) -> Option<f64> {
    let ijk = volume.affine.inverse()?.apply(p);
    let mut idx = [0usize; 3];
    for a in 0..3 {
        let r = ijk[a].round();
        if r < 0.0 || r >= volume.dims[a] as f64 {
            return None;
        }
        idx[a] = r as usize;
    }
    Some(volume.modality_value(volume.index(idx[0], idx[1], idx[2])))
}

/// A scale bar length (mm) that is a round number and at most a quarter of the viewport.
pub fn scale_bar_mm(points_per_mm: f64, viewport_width: f64) -> f64 {
    let max_mm = viewport_width / 4.0 / points_per_mm.max(1e-9);
    let mut best = 1.0;
    for candidate in [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0] {
        if candidate <= max_mm {
            best = candidate;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundglass_study::geometry::Affine;

    /// The int16 volume `grid()` is a plane of: 200 x 200 x 30 voxels of 0.5 x 0.5 x 2 mm.
    fn layout() -> VolumeLayout {
        VolumeLayout {
            dims: [200, 200, 30],
            affine: Affine::from_axes(
                [0.5, 0.0, 0.0],
                [0.0, 0.5, 0.0],
                [0.0, 0.0, 2.0],
                [-50.0, -60.0, 10.0],
            ),
            kind: groundglass_study::VoxelKind::I16,
            modality: groundglass_study::ModalityTransform::Rescale(
                groundglass_study::Rescale::IDENTITY,
            ),
            photometric: groundglass_study::Photometric::Monochrome2,
            windows: vec![],
            voi_function: Default::default(),
            voi_lut: None,
            padding: None,
        }
    }

    fn grid() -> PlaneGrid {
        PlaneGrid {
            plane: Plane::Axial,
            right: [1.0, 0.0, 0.0],
            down: [0.0, 1.0, 0.0],
            normal: [0.0, 0.0, 1.0],
            spacing: [0.5, 0.5, 2.0],
            origin: [-50.0, -60.0, 10.0],
            width: 200,
            height: 200,
            count: 30,
        }
    }

    #[test]
    fn screen_and_pixels_round_trip_with_flips_and_zoom() {
        let view = ViewState {
            zoom: Some(3.0),
            center_px: Some([120.0, 80.0]),
            flip_h: true,
            ..ViewState::new(Plane::Axial, &grid(), Window::new(40.0, 400.0))
        };
        let t = ViewTransform::new(grid(), &view, [400.0, 300.0]);
        let px = t.screen_to_px([10.0, 250.0]);
        let back = t.px_to_screen(px);
        assert!((back[0] - 10.0).abs() < 1e-9 && (back[1] - 250.0).abs() < 1e-9);
        // Flipped horizontally: screen right shows patient right.
        assert_eq!(t.letters().right, "R");
        assert_eq!(t.letters().left, "L");
    }

    #[test]
    fn fit_shows_the_whole_slice_centred() {
        let view = ViewState::new(Plane::Axial, &grid(), Window::new(40.0, 400.0));
        let t = ViewTransform::new(grid(), &view, [400.0, 200.0]);
        // 100 mm square slice in a 400x200 rect: 2 points per mm, centred.
        assert!((t.zoom - 2.0).abs() < 1e-12);
        let top_left = t.px_to_screen([-0.5, -0.5]);
        assert!(
            (top_left[0] - 100.0).abs() < 1e-9 && top_left[1].abs() < 1e-9,
            "{top_left:?}"
        );
    }

    #[test]
    fn screen_to_voxel_matrix_matches_the_geometry() {
        let layout = layout();
        let view = ViewState {
            index: 7,
            ..ViewState::new(Plane::Axial, &grid(), Window::new(0.0, 1.0))
        };
        let t = ViewTransform::new(grid(), &view, [400.0, 400.0]);
        let m = t.screen_to_voxel(&layout).expect("matrix");
        let p = [123.0_f32, 45.0];
        let ijk: Vec<f32> = (0..3)
            .map(|r| m[0][r] * p[0] + m[1][r] * p[1] + m[3][r])
            .collect();
        let px = t.screen_to_px([123.0, 45.0]);
        assert!(
            (f64::from(ijk[0]) - px[0]).abs() < 1e-3 && (f64::from(ijk[1]) - px[1]).abs() < 1e-3
        );
        assert!((ijk[2] - 7.0).abs() < 1e-4);
        // The slab's step: one 2 mm slice along the normal is one voxel along k.
        assert_eq!(m[2], [0.0, 0.0, 1.0, 0.0]);
    }

    fn three_views() -> [ViewState; 3] {
        [Plane::Axial, Plane::Coronal, Plane::Sagittal]
            .map(|p| ViewState::new(p, &grid(), Window::new(40.0, 400.0)))
    }

    /// The screen angle (degrees, clockwise, modulo 180) of the line where `other` cuts `view`,
    /// as displayed (after flips).
    fn line_angle(view: &ViewState, other: &ViewState) -> f64 {
        let [right, down, normal] = view.current_axes();
        let along = cross(normal, other.current_axes()[2]);
        let sign = |flip: bool| if flip { -1.0 } else { 1.0 };
        let (x, y) = (
            dot(along, right) * sign(view.flip_h),
            dot(along, down) * sign(view.flip_v),
        );
        y.atan2(x).to_degrees().rem_euclid(180.0)
    }

    fn assert_perpendicular(views: &[ViewState; 3]) {
        for (i, a) in views.iter().enumerate() {
            let [r, d, n] = a.current_axes();
            for (u, v) in [(r, d), (d, n), (r, n)] {
                assert!(dot(u, v).abs() < 1e-9, "view {i} axes not orthogonal");
            }
            for b in &views[i + 1..] {
                assert!(
                    dot(n, b.current_axes()[2]).abs() < 1e-9,
                    "normals not perpendicular"
                );
            }
        }
    }

    #[test]
    fn tilting_turns_the_crosshair_lines_with_the_pointer_and_keeps_the_planes_perpendicular() {
        let mut views = three_views();
        assert!((line_angle(&views[0], &views[1]) - 0.0).abs() < 1e-9);
        assert!((line_angle(&views[0], &views[2]) - 90.0).abs() < 1e-9);
        tilt_others(&mut views, 0, 30f64.to_radians());
        assert!(!views[0].is_tilted(), "the plane turned in keeps its axes");
        assert!(views[1].is_tilted() && views[2].is_tilted());
        assert!((line_angle(&views[0], &views[1]) - 30.0).abs() < 1e-9);
        assert!((line_angle(&views[0], &views[2]) - 120.0).abs() < 1e-9);
        assert_perpendicular(&views);
        // Coronal tilted 30 degrees about the axial normal faces between P and L.
        let normal = views[1].current_axes()[2].map(|v| (v * 1e6).round() / 1e6);
        assert_eq!(normal, [-0.5, 0.866025, 0.0]);
        // A second turn from the tilted coronal makes the set double-oblique.
        tilt_others(&mut views, 1, (-20f64).to_radians());
        assert!(views[0].is_tilted());
        assert!((line_angle(&views[1], &views[0]) - 160.0).abs() < 1e-9);
        assert_perpendicular(&views);
        // Many small turns back and forth do not shear them.
        for i in 0..2000 {
            tilt_others(&mut views, i % 3, if i % 2 == 0 { 0.013 } else { -0.011 });
        }
        assert_perpendicular(&views);
    }

    #[test]
    fn a_flipped_view_tilts_the_way_it_is_seen() {
        let mut views = three_views();
        views[0].flip_h = true;
        tilt_others(&mut views, 0, 25f64.to_radians());
        // Displayed: the coronal line turned clockwise by 25 degrees from horizontal.
        assert!((line_angle(&views[0], &views[1]) - 25.0).abs() < 1e-9);
    }

    #[test]
    fn untilted_planes_sample_whole_voxels_along_one_axis_and_tilted_ones_do_not() {
        let layout = layout();
        let mut views = three_views();
        for (view, axis) in views.iter_mut().zip([2, 1, 0]) {
            view.index = 7;
            let t = ViewTransform::new(view.grid(&layout), view, [300.0, 300.0]);
            let mut m = t.screen_to_voxel(&layout).expect("matrix");
            assert_eq!(
                whole_voxel_axis(&mut m, true),
                Some(axis),
                "{:?}",
                view.plane
            );
            assert_eq!(m[3][axis].fract(), 0.0);
        }
        tilt_others(&mut views, 0, 0.3);
        let t = ViewTransform::new(views[1].grid(&layout), &views[1], [300.0, 300.0]);
        let mut m = t.screen_to_voxel(&layout).expect("matrix");
        assert_eq!(
            whole_voxel_axis(&mut m, false),
            None,
            "a tilted coronal plane"
        );
    }

    #[test]
    fn slab_keys_set_thickness_and_projection_and_the_samples_follow() {
        let g = grid();
        let mut view = ViewState::new(Plane::Axial, &g, Window::new(40.0, 400.0));
        assert_eq!(view.slab_samples(&g), None);
        view.next_projection();
        // 10 mm at 2 mm slices: five samples, two before the slice.
        assert_eq!(view.slab_samples(&g), Some([-2.0, 5.0, 0.0]));
        view.next_projection();
        view.change_slab(-3.0);
        assert_eq!(view.slab_samples(&g), Some([-1.0, 4.0, 1.0]));
        view.change_slab(1000.0);
        assert_eq!(view.slab_mm, MAX_SLAB_MM);
        view.reset(Window::new(40.0, 400.0));
        assert_eq!(view.slab_samples(&g), None);
    }
}
