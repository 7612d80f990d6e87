#![no_main]
#[path = "common.rs"]
mod common;

// The same loader behind gzip: the input is taken as the compressed file (the decompressor's
// errors and the header read from a stream), and a header that passes goes on to the voxels.
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::run(data, "input.nii.gz"));
