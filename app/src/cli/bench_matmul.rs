//! `groundglass bench matmul`: the prefill's bf16 products on the 3B model's shapes, timed for
//! each kernel this CPU runs, so that BENCHMARKS.md's kernel figures can be made again.

use std::process::ExitCode;
use std::time::Instant;

use groundglass_model::kernels::{amx, matmul};

/// (tokens, K, N): Gemma 2 2B's attention (q), MLP up and down at 273 tokens; SigLIP So400m's
/// MLP at 256.
const SHAPES: [(usize, usize, usize); 5] = [
    (273, 2304, 2048),
    (273, 2304, 9216),
    (273, 9216, 2304),
    (256, 1152, 4304),
    (256, 4304, 1152),
];

/// `C = A · Wᵀ` with bf16 weights, as every prefill kernel takes it.
type Kernel = fn(&[f32], usize, usize, &[half::bf16], usize, &mut [f32]);

pub fn run(runs: usize) -> anyhow::Result<ExitCode> {
    let mut kernels: Vec<(&str, Kernel)> = Vec::new();
    if amx::available() {
        kernels.push(("amx", amx::matmul_wt_bf16));
    }
    if matmul::bf16_available() {
        kernels.push(("vdpbf16ps", matmul::matmul_wt_bf16));
    }
    if matmul::available() {
        kernels.push(("f32_widened", matmul::matmul_wt::<half::bf16>));
    }
    if kernels.is_empty() {
        anyhow::bail!("this CPU runs none of the prefill kernels (they need AVX-512F)");
    }
    let mut rows = Vec::new();
    for (m, k, n) in SHAPES {
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i % 97) as f32 - 48.0) / 97.0)
            .collect();
        let w: Vec<half::bf16> = (0..n * k)
            .map(|i| half::bf16::from_f32(((i % 89) as f32 - 44.0) / 89.0))
            .collect();
        let mut c = vec![0f32; m * n];
        for (name, kernel) in &kernels {
            let mut best = f64::MAX;
            for _ in 0..runs.max(1) {
                let t = Instant::now();
                kernel(&a, m, k, &w, n, &mut c);
                best = best.min(t.elapsed().as_secs_f64());
            }
            std::hint::black_box(&c);
            let gflops = 2.0 * (m * k * n) as f64 / best / 1e9;
            eprintln!(
                "{name:>12} {m} x {k} x {n}: {:7.2} ms, {gflops:5.0} GFLOPS",
                best * 1e3
            );
            rows.push(serde_json::json!({"kernel": name, "m": m, "k": k, "n": n, "ms": best * 1e3, "gflops": gflops}));
        }
    }
    println!(
        "{}",
        serde_json::json!({"threads": rayon::current_num_threads(), "products": rows})
    );
    Ok(ExitCode::SUCCESS)
}
