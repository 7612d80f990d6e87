#![no_main]
// A checkpoint's weight file as a user may point at it: safetensors (its header is JSON with
// offsets) or PyTorch's zip of pickles. The first byte picks the format; the rest is the file,
// beside the demo model's real config.json, so a header that reads goes on to the tensors.

use groundglass_model::checkpoint::{stored_dtype, Checkpoint};

const CONFIG: &[u8] = include_bytes!("../../assets/models/demo/config.json");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("gg-fuzz-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_err() || std::fs::write(dir.join("config.json"), CONFIG).is_err() {
        return;
    }
    let name = if pick % 2 == 0 { "model.safetensors" } else { "pytorch_model.bin" };
    if std::fs::write(dir.join(name), file).is_err() {
        return;
    }
    let _ = stored_dtype(&dir);
    let _ = Checkpoint::open(&dir, candle_core::DType::F32, &candle_core::Device::Cpu);
});
