// One MPR slice of the volume texture, drawn into a viewport rectangle.
// The volume holds raw stored values (uploaded once); the plane's resampling, the modality rescale,
// window/level and MONOCHROME1 inversion all happen here, so scrolling or windowing uploads nothing.
// TEXEL is replaced by i32, u32 or f32 to match the texture's sample type, and EXACT_AXIS by the
// voxel axis (0, 1, 2) on which every sample of the plane lies at a whole voxel, or -1 (a tilted
// plane): one pipeline per value, so the choice costs no branch per pixel (a software adapter
// runs both sides of a branch it cannot prove uniform). The same for the other constants:
// PLAIN (the texture neither folded nor an overview: a texel is its voxel), DETAIL (an overview
// with full resolution where the user reads), THICK (a thick slab's projection) and LABELS (a
// mask overlay to blend).
const EXACT_AXIS: i32 = EXACT;
const PLAIN: bool = PLAIN_VOLUME;
const DETAIL: bool = DETAIL_SLAB;
const THICK: bool = THICK_SLAB;
const LABELS: bool = LABEL_OVERLAY;

struct Params {
    // (screen x, screen y, 0, 1) in points relative to the viewport -> voxel (i, j, k); its third
    // column is one slice of the plane along its normal, in voxels (the slab's step)
    screen_to_voxel: mat4x4<f32>,
    rect_size: vec4<f32>,
    dims: vec4<f32>,
    // centre, width, rescale slope, rescale intercept
    window: vec4<f32>,
    // invert (0/1), colour (0/1), VOI function (0 linear, 1 linear exact, 2 sigmoid),
    // label overlay opacity (0 hides it)
    flags: vec4<f32>,
    // thick slab: first sample's offset in slices, samples (<= 1: the slice alone),
    // projection (0 maximum, 1 minimum, 2 mean), and EXACT_AXIS (the pipeline is chosen by it)
    slab: vec4<f32>,
};

// Colours of label ids (modulo 16); alpha scales the overlay opacity.
struct Palette {
    colours: array<vec4<f32>, 16>,
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var volume: texture_3d<TEXEL>;
// Mask labels, voxel for voxel with the volume (0 = none).
@group(0) @binding(2) var labels: texture_3d<u32>;
@group(0) @binding(3) var<uniform> palette: Palette;
// A volume longer than the 3D-texture limit on one axis, folded (app/src/render/fold.rs): that
// axis (-1: not folded), voxels per part, parts laid along the next axis before the one after;
// and a volume over the GPU memory budget, shown as an overview: every `step`-th voxel along
// each axis (1: all of them), with full resolution where the user reads (app/src/render/detail.rs).
struct Folding {
    fold: vec4<f32>,
    // step, unused x 3
    overview: vec4<f32>,
    // the detail slab: its first slice (voxel k), its slices (0: none yet), unused x 2
    detail: vec4<f32>,
};
@group(0) @binding(4) var<uniform> folding: Folding;
// The detail slab's voxels and labels at every voxel: whole slices along k, slice k in layer
// k mod its slices (a ring, so moving it uploads only the slices that come in). 1 x 1 x 1 and
// never read without DETAIL.
@group(0) @binding(5) var detail_volume: texture_3d<TEXEL>;
@group(0) @binding(6) var detail_labels: texture_3d<u32>;

// Where voxel p is in the detail slab: (i, j, layer) and 1 in w when the slab holds its slice.
fn in_detail(voxel: vec3<i32>) -> vec4<i32> {
    let z = f32(voxel.z);
    let n = max(folding.detail.y, 1.0);
    let held = z >= folding.detail.x && z < folding.detail.x + folding.detail.y;
    let layer = z - n * floor(z / n);
    return vec4<i32>(voxel.x, voxel.y, i32(layer), select(0, 1, held));
}

// The texel that holds voxel p: within part n of the long axis, the voxel moves by n's place
// along the two other axes (the same arithmetic as Fold::texel).
fn fold(voxel: vec3<i32>) -> vec3<i32> {
    if PLAIN {
        return voxel;
    }
    // Integer division has no vector instruction on a CPU: a software adapter would run it a
    // pixel at a time. In f32 these are exact (voxel indices < 2^24) and run as vectors.
    let step = folding.overview.x;
    let p = vec3<i32>(floor(vec3<f32>(voxel) / step));
    let axis = i32(folding.fold.x);
    if axis < 0 {
        return p;
    }
    let part_len = folding.fold.y;
    let across = folding.fold.z;
    let dims = ceil(params.dims.xyz / step);
    let b = (axis + 1) % 3;
    let c = (axis + 2) % 3;
    let along = f32(p[axis]);
    let part = floor(along / part_len);
    let row = floor(part / across);
    var q = p;
    q[axis] = i32(along - part * part_len);
    q[b] = p[b] + i32((part - row * across) * dims[b]);
    q[c] = p[c] + i32(row * dims[c]);
    return q;
}

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    // One triangle covering the viewport that egui_wgpu sets to the callback's rectangle.
    let x = f32(i32(index & 1u) * 4 - 1);
    let y = f32(i32(index >> 1u) * 4 - 1);
    var out: VertexOut;
    out.position = vec4<f32>(x, y, 0.0, 1.0);
    out.uv = vec2<f32>(x * 0.5 + 0.5, 0.5 - y * 0.5);
    return out;
}

fn texel(p: vec3<i32>) -> vec4<f32> {
    let v = vec4<f32>(textureLoad(volume, fold(p), 0));
    if DETAIL {
        // Both loads, then a select: no branch per pixel.
        let d = in_detail(p);
        return select(v, vec4<f32>(textureLoad(detail_volume, d.xyz, 0)), d.w == 1);
    }
    return v;
}

fn label_at(p: vec3<i32>) -> u32 {
    let l = textureLoad(labels, fold(p), 0).r;
    if DETAIL {
        let d = in_detail(p);
        return select(l, textureLoad(detail_labels, d.xyz, 0).r, d.w == 1);
    }
    return l;
}

// Trilinear interpolation with textureLoad: integer textures cannot be filtered by samplers.
fn sample_volume(ijk: vec3<f32>) -> vec4<f32> {
    let hi = vec3<i32>(params.dims.xyz) - vec3<i32>(1);
    let c = clamp(ijk, vec3<f32>(0.0), params.dims.xyz - vec3<f32>(1.0));
    let f = floor(c);
    let t = c - f;
    let p0 = vec3<i32>(f);
    let p1 = min(p0 + vec3<i32>(1), hi);
    // Along the exact axis four texels do, not eight.
    if EXACT_AXIS == 2 {
        let a = mix(texel(p0), texel(vec3<i32>(p1.x, p0.y, p0.z)), t.x);
        let b = mix(texel(vec3<i32>(p0.x, p1.y, p0.z)), texel(vec3<i32>(p1.x, p1.y, p0.z)), t.x);
        return mix(a, b, t.y);
    } else if EXACT_AXIS == 1 {
        let a = mix(texel(p0), texel(vec3<i32>(p1.x, p0.y, p0.z)), t.x);
        let b = mix(texel(vec3<i32>(p0.x, p0.y, p1.z)), texel(vec3<i32>(p1.x, p0.y, p1.z)), t.x);
        return mix(a, b, t.z);
    } else if EXACT_AXIS == 0 {
        let a = mix(texel(p0), texel(vec3<i32>(p0.x, p1.y, p0.z)), t.y);
        let b = mix(texel(vec3<i32>(p0.x, p0.y, p1.z)), texel(vec3<i32>(p0.x, p1.y, p1.z)), t.y);
        return mix(a, b, t.z);
    }
    let c00 = mix(texel(p0), texel(vec3<i32>(p1.x, p0.y, p0.z)), t.x);
    let c10 = mix(texel(vec3<i32>(p0.x, p1.y, p0.z)), texel(vec3<i32>(p1.x, p1.y, p0.z)), t.x);
    let c01 = mix(texel(vec3<i32>(p0.x, p0.y, p1.z)), texel(vec3<i32>(p1.x, p0.y, p1.z)), t.x);
    let c11 = mix(texel(vec3<i32>(p0.x, p1.y, p1.z)), texel(p1), t.x);
    return mix(mix(c00, c10, t.y), mix(c01, c11, t.y), t.z);
}

fn voi(value: f32) -> f32 {
    let c = params.window.x;
    let w = max(params.window.y, 1e-6);
    let function = params.flags.z;
    if function > 1.5 {
        return 1.0 / (1.0 + exp(-4.0 * (value - c) / w));
    }
    if function > 0.5 {
        return clamp((value - c) / w + 0.5, 0.0, 1.0);
    }
    // DICOM LINEAR (PS3.3 C.11.2.1.2.1)
    let wl = max(w, 1.0);
    return clamp((value - (c - 0.5)) / max(wl - 1.0, 1e-6) + 0.5, 0.0, 1.0);
}

// Blends the label at the nearest voxel over the grey or colour value.
fn overlay(rgb: vec3<f32>, ijk: vec3<f32>) -> vec3<f32> {
    if !LABELS {
        return rgb;
    }
    let p = vec3<i32>(clamp(round(ijk), vec3<f32>(0.0), params.dims.xyz - vec3<f32>(1.0)));
    let label = label_at(p);
    if label == 0u {
        return rgb;
    }
    let c = palette.colours[label % 16u];
    return mix(rgb, c.rgb, clamp(params.flags.w * c.a, 0.0, 1.0));
}

fn inside(ijk: vec3<f32>) -> bool {
    return all(ijk >= vec3<f32>(-0.5)) && all(ijk <= params.dims.xyz - vec3<f32>(0.5));
}

// The slab's samples along the normal, projected (maximum, minimum or mean; per channel for
// colour). Grey values are rescaled first, so a negative slope projects the right way round.
// Samples outside the volume do not take part.
fn project_slab(centre: vec3<f32>, colour: bool) -> vec4<f32> {
    let step = (params.screen_to_voxel * vec4<f32>(0.0, 0.0, 1.0, 0.0)).xyz;
    let count = i32(params.slab.y);
    let mode = params.slab.z;
    var acc = vec4<f32>(0.0);
    var n = 0;
    for (var s = 0; s < count; s = s + 1) {
        let p = centre + step * (params.slab.x + f32(s));
        if !inside(p) {
            continue;
        }
        var v = sample_volume(p);
        if !colour {
            v = vec4<f32>(v.r * params.window.z + params.window.w);
        }
        if n == 0 {
            acc = v;
        } else if mode < 0.5 {
            acc = max(acc, v);
        } else if mode < 1.5 {
            acc = min(acc, v);
        } else {
            acc = acc + v;
        }
        n = n + 1;
    }
    if mode > 1.5 && n > 0 {
        acc = acc / f32(n);
    }
    return acc;
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let local = in.uv * params.rect_size.xy;
    let ijk = (params.screen_to_voxel * vec4<f32>(local, 0.0, 1.0)).xyz;
    if !inside(ijk) {
        return vec4<f32>(0.0, 0.0, 0.0, 1.0);
    }
    let colour = params.flags.y > 0.5;
    let slab = THICK;
    var s: vec4<f32>;
    if slab {
        s = project_slab(ijk, colour);
    } else {
        s = sample_volume(ijk);
    }
    if colour {
        // Colour data (RGB or palette applied at load): shown as stored.
        return vec4<f32>(overlay(s.rgb, ijk), 1.0);
    }
    var value = s.r;
    if !slab {
        value = s.r * params.window.z + params.window.w;
    }
    var g = voi(value);
    if params.flags.x > 0.5 {
        g = 1.0 - g;
    }
    // The target is an sRGB-agnostic egui surface: grey levels go out linearly like egui's own.
    return vec4<f32>(overlay(vec3<f32>(g), ijk), 1.0);
}
