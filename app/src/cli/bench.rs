//! `groundglass bench load PATH`: in-process timings of opening and loading a series, for the
//! benchmark script (`bench/load.sh`), which sets them against the peers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use clap::{Args, Subcommand};
use groundglass_study::{open, LoadObserver, VoxelSlice};
use serde::Serialize;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Subcommand, Debug)]
pub enum BenchWhat {
    /// Open a path and load its first series; print timings as JSON.
    Load {
        path: PathBuf,
        /// Series index.
        #[arg(long, default_value_t = 0)]
        series: usize,
    },
    /// Frame times of the viewer (offscreen, wgpu, each frame read back) while scrolling and
    /// dragging the window, and the texture uploads made meanwhile (expected: none); with
    /// `--window`, in a real window (a display is needed) without read-back or vsync, and where
    /// each frame's time goes.
    Frames {
        path: PathBuf,
        /// Frames per phase (scroll, window drag).
        #[arg(long, default_value_t = 60)]
        frames: usize,
        #[arg(long, default_value = "1280x800")]
        size: String,
        #[arg(long)]
        window: bool,
    },
    /// Time to first token and tokens/s of a checkpoint on random pixels (prefill of the image
    /// tokens plus a short prompt, then cached greedy steps without stopping at end-of-sequence),
    /// the same loop `bench/model_torch.py` times in PyTorch.
    Model(super::bench_model::BenchModelArgs),
    /// A load test of a model server: 1, 2, 4, 8, 16 concurrent clients (bounded).
    Serve(super::bench_serve::BenchServeArgs),
    /// Top-1 agreement and KL divergence of a precision's prefill logits against f32's (what
    /// bf16, q8_0 and q4_k cost in accuracy), on fixed random pixels, CPU.
    Agreement(super::bench_agreement::BenchAgreementArgs),
    /// RadGrounder's vocabulary at full size: load time of a tokenizer.json (e.g. the one
    /// `bench/make_gemma_tokenizer.py` writes) and MIS-SemSam's neighbour table over a random
    /// embedding of that many rows, timed on its first `--rows` query rows (the build is linear in
    /// them) and extrapolated to the whole table.
    Vocab(super::bench_vocab::BenchVocabArgs),
    /// GFLOPS of the prefill's bf16 products on the 3B model's shapes (273 tokens; the vision
    /// tower's 256), each kernel this CPU runs: AMX tiles, `vdpbf16ps`, and bf16 widened to f32.
    Matmul {
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// This machine's memory read bandwidth over all threads (the limit of batch-1 decoding,
    /// which reads every weight once per token): GB/s reading a buffer far larger than the caches,
    /// and what the decoding GEMV reads of a bf16 matrix that size (one row of activations at
    /// K = 2304 and 9216, eight rows at 2304).
    Bandwidth {
        /// Buffer size in MiB.
        #[arg(long, default_value_t = 2048)]
        mib: usize,
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

#[derive(Serialize)]
struct LoadTimings {
    path: PathBuf,
    slices: usize,
    voxel_bytes: usize,
    /// Headers read and series grouped.
    open_ms: f64,
    /// From the start of loading the chosen series to its first decoded slice.
    first_slice_ms: f64,
    /// From the start of loading to the whole volume.
    load_ms: f64,
    total_ms: f64,
    /// Peak resident memory of the process (VmHWM), bytes.
    peak_rss_bytes: Option<u64>,
}

struct FirstSlice {
    start: Instant,
    first: Mutex<Option<f64>>,
}

impl LoadObserver for FirstSlice {
    fn slice_ready(&self, _k: usize, _done: usize, _total: usize, _slice: VoxelSlice<'_>) {
        if let Ok(mut f) = self.first.lock() {
            f.get_or_insert_with(|| self.start.elapsed().as_secs_f64() * 1e3);
        }
    }
}

/// The best of `runs` (at least one) timings of `product`, as GB/s over `bytes`; what it returns
/// is dropped after the clock stops.
fn best_gb_per_s<T>(runs: usize, bytes: usize, mut product: impl FnMut() -> T) -> f64 {
    let mut best = 0f64;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let out = product();
        let s = t.elapsed().as_secs_f64();
        std::hint::black_box(out);
        best = best.max(bytes as f64 / s / 1e9);
    }
    best
}

fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        BenchWhat::Frames {
            path,
            frames,
            size,
            window: false,
        } => super::bench_frames::run(&path, frames, &size),
        BenchWhat::Frames {
            path,
            frames,
            size,
            window: true,
        } => super::bench_window::run(&path, frames, &size),
        BenchWhat::Model(args) => super::bench_model::run(args),
        BenchWhat::Serve(args) => super::bench_serve::run(args),
        BenchWhat::Agreement(args) => super::bench_agreement::run(args),
        BenchWhat::Vocab(args) => super::bench_vocab::run(args),
        BenchWhat::Matmul { runs } => super::bench_matmul::run(runs),
        BenchWhat::Bandwidth { mib, runs } => {
            let best = groundglass_model::kernels::read_bandwidth_gb_per_s(mib, runs);
            // The decoding kernel over a bf16 matrix of the same size at Gemma 2's width (K = 2304)
            // and at its MLP's (9216, whose activations leave L1), for one row of activations and
            // for eight (`serve`'s batch): GB/s of weights read.
            let gemv_gb_per_s = |k: usize, m: usize| {
                let n = mib * 1024 * 1024 / 2 / k;
                let w = vec![half::bf16::from_f32(0.5); n * k];
                let x = vec![1f32; m * k];
                let mut y = vec![0f32; m * n];
                best_gb_per_s(runs, n * k * 2, || {
                    groundglass_model::kernels::gemv::gemv(&x, m, k, &w, n, &mut y);
                })
            };
            // Candle's quantized product (what `--dtype q8_0|q4_k` decodes with) over a matrix
            // of the same bytes, one row of activations: GB/s of quantized weights read.
            let k = 2304;
            // A matrix of about `mib` MiB of `dtype` blocks, a multiple of 16 rows as every
            // matrix of the model (Candle's VNNI tiles need it): one quantized 16-row tile
            // repeated (quantizing it whole at f32 would take four times its bytes).
            let quantized_matrix = |dtype: candle_core::quantized::GgmlDType| {
                use candle_core::{quantized, Device, Tensor};
                let row_bytes = k / dtype.block_size() * dtype.type_size();
                let n = mib * 1024 * 1024 / row_bytes / 16 * 16;
                let bytes = Tensor::arange(0f32, (16 * k) as f32, &Device::Cpu)
                    .and_then(|t| t.reshape((16, k)))
                    .and_then(|t| t.affine(1e-4, -1.0))
                    .and_then(|t| quantized::QTensor::quantize(&t, dtype))
                    .and_then(|q| q.data().map(|d| d.repeat(n / 16)));
                (bytes, n, row_bytes)
            };
            let quantized_gb_per_s = |dtype: candle_core::quantized::GgmlDType| {
                use candle_core::{quantized, Device, Tensor};
                let (bytes, n, row_bytes) = quantized_matrix(dtype);
                let w = bytes
                    .and_then(|bytes| {
                        quantized::ggml_file::qtensor_from_ggml(
                            dtype,
                            &bytes,
                            vec![n, k],
                            &Device::Cpu,
                        )
                    })
                    .and_then(quantized::QMatMul::from_qtensor);
                let x = Tensor::ones((1, k), candle_core::DType::F32, &Device::Cpu);
                let (Ok(w), Ok(x)) = (w, x) else {
                    return 0.0;
                };
                // One product first, untimed: Candle repacks the matrix on its first use.
                if candle_core::Module::forward(&w, &x).is_err() {
                    return 0.0;
                }
                best_gb_per_s(runs, n * row_bytes, || candle_core::Module::forward(&w, &x))
            };
            // This crate's q4_k and q8_0 kernels over the same matrices (what decoding uses
            // where the CPU has AVX-512 VNNI): GB/s of GGML's bytes, as Candle's figures (the
            // q4_k tiles are 1.03x those, the q8_0 tiles the same).
            let packed_gb_per_s = |dtype: candle_core::quantized::GgmlDType| {
                use groundglass_model::kernels::{q4k, q8_0};
                let (bytes, n, row_bytes) = quantized_matrix(dtype);
                let Ok(bytes) = bytes else {
                    return 0.0;
                };
                let x = vec![1f32; k];
                let mut y = vec![0f32; n];
                let bytes_read = n * row_bytes;
                match dtype {
                    candle_core::quantized::GgmlDType::Q4K => {
                        match q4k::PackedQ4K::from_q4k_blocks(&bytes, n, k) {
                            Ok(w) => {
                                best_gb_per_s(runs, bytes_read, || q4k::product(&x, 1, &w, &mut y))
                            }
                            Err(_) => 0.0,
                        }
                    }
                    _ => match q8_0::PackedQ8_0::from_q8_0_blocks(&bytes, n, k) {
                        Ok(w) => {
                            best_gb_per_s(runs, bytes_read, || q8_0::product(&x, 1, &w, &mut y))
                        }
                        Err(_) => 0.0,
                    },
                }
            };
            println!(
                "{}",
                serde_json::json!({
                    "read_gb_per_s": best,
                    "gemv_q8_0_gb_per_s": quantized_gb_per_s(candle_core::quantized::GgmlDType::Q8_0),
                    "gemv_q4_k_gb_per_s": quantized_gb_per_s(candle_core::quantized::GgmlDType::Q4K),
                    "gemv_q8_0_packed_gb_per_s": packed_gb_per_s(candle_core::quantized::GgmlDType::Q8_0),
                    "gemv_q4_k_packed_gb_per_s": packed_gb_per_s(candle_core::quantized::GgmlDType::Q4K),
                    "q8_0_packed_kernel": groundglass_model::kernels::q8_0::available(),
                    "q4_k_packed_kernel": groundglass_model::kernels::q4k::available(),
                    "gemv_bf16_gb_per_s": gemv_gb_per_s(2304, 1),
                    "gemv_bf16_k9216_gb_per_s": gemv_gb_per_s(9216, 1),
                    "gemv_bf16_batch8_gb_per_s": gemv_gb_per_s(2304, 8),
                    "threads": rayon::current_num_threads(),
                    "mib": mib,
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        BenchWhat::Load { path, series } => {
            let t0 = Instant::now();
            let study = open(&path)?;
            let open_ms = t0.elapsed().as_secs_f64() * 1e3;
            let s = study
                .series
                .get(series)
                .ok_or_else(|| anyhow::anyhow!("no series {series} in {}", path.display()))?;
            let observer = FirstSlice {
                start: Instant::now(),
                first: Mutex::new(None),
            };
            let volume = s.load(0, &observer)?;
            let load_ms = observer.start.elapsed().as_secs_f64() * 1e3;
            let timings = LoadTimings {
                path,
                slices: volume.dims[2],
                voxel_bytes: volume.voxels.as_bytes().len(),
                open_ms,
                first_slice_ms: observer
                    .first
                    .lock()
                    .ok()
                    .and_then(|f| *f)
                    .unwrap_or(load_ms),
                load_ms,
                total_ms: t0.elapsed().as_secs_f64() * 1e3,
                peak_rss_bytes: peak_rss(),
            };
            println!("{}", serde_json::to_string(&timings)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
