//! Tissue to intensity: the modality's value for each tissue, the few position-dependent effects
//! (denser dependent lung on CT, a smooth coil bias field on MR), then Gaussian noise (Rician-like
//! magnitude on MR), rounded to 16-bit integers.

use crate::canvas::Canvas;
use crate::config::{Modality, PhantomConfig};
use crate::rng::{NormalTable, Rng};
use crate::tissue::{Intensities, Tissue};

pub fn values(canvas: &Canvas, config: &PhantomConfig) -> Vec<i16> {
    let mut rng = Rng::stream(config.seed, "intensity");
    let table = Intensities::new(config.modality, config.contrast, &mut rng);
    let mr = config.modality == Modality::Mr;
    // Bias: 1 + linear terms + a central dip/bump, at most about +-20 %.
    let bias = [
        rng.range(-0.08, 0.08),
        rng.range(-0.08, 0.08),
        rng.range(-0.06, 0.06),
        rng.range(-0.12, 0.02),
    ];
    let lung = Tissue::Lung as u8;
    let normals = NormalTable::new();
    let mut noise = Rng::stream(config.seed, "noise");
    let sigma = config.noise;
    let [nx, ny, nz] = canvas.dims;
    let mut out = vec![0i16; nx * ny * nz];
    let mut pending = [0f32; 4];
    let mut left = 0;
    for k in 0..nz {
        let z = canvas.coord(2, k) / 144.0;
        for j in 0..ny {
            let y = canvas.coord(1, j);
            let row = canvas.index(0, j, k);
            for i in 0..nx {
                let t = canvas.tissue[row + i];
                let mut v = table.of(t);
                if mr {
                    let x = canvas.coord(0, i) / 176.0;
                    let yn = y / 176.0;
                    v *= (1.0
                        + bias[0] * x
                        + bias[1] * yn
                        + bias[2] * z
                        + bias[3] * (x * x + yn * yn)) as f32;
                } else if t == lung {
                    // Gravity: the dependent (posterior) lung is denser in a supine patient.
                    v += 0.3 * y as f32;
                }
                if sigma > 0.0 {
                    if left == 0 {
                        pending = normals.four(noise.next_u64());
                        left = 4;
                    }
                    left -= 1;
                    v += sigma * pending[left];
                }
                if mr {
                    v = v.abs();
                }
                out[row + i] = v.round().clamp(-32768.0, 32767.0) as i16;
            }
        }
    }
    out
}
