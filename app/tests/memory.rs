//! A volume larger than the memory available is refused before anything is allocated, with a
//! message that says what it needs: the real binary on a real (sparse) NIfTI file.

use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::Command;

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata")
        .join(rel)
}

#[test]
fn a_volume_larger_than_the_free_memory_is_refused_not_killed() {
    let Some(available) = groundglass_study::error::available_memory_bytes() else {
        eprintln!("skipped: this system does not say how much memory is available");
        return;
    };
    // int16, 32767 x 32767 x Z: Z slices of 2.1 GB, 4 GB more than is free.
    let slice = 32767u64 * 32767 * 2;
    let z = (available + 4_000_000_000).div_ceil(slice);
    let bytes = slice * z;
    assert!(z < 32767, "{available} bytes available");
    // The header of a real big-endian NIfTI-1 file with its dimensions changed; the data is a hole
    // (a sparse file: nothing is written to disk).
    let mut header = std::fs::read(testdata("nifti/nibabel_anatomical.nii")).expect("nifti");
    header.truncate(352);
    for (i, d) in [3i16, 32767, 32767, z as i16].iter().enumerate() {
        header[40 + 2 * i..42 + 2 * i].copy_from_slice(&d.to_be_bytes());
    }
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-huge-{}.nii", std::process::id()));
    let mut file = std::fs::File::create(&path).expect("create");
    file.write_all(&header).expect("header");
    file.seek(SeekFrom::Start(352 + bytes - 1)).expect("seek");
    file.write_all(&[0]).expect("last byte");
    drop(file);
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_groundglass"))
        .arg("slice")
        .arg(&path)
        .arg("--out")
        .arg(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gg-huge.png"))
        .output()
        .expect("run");
    let _ = std::fs::remove_file(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit code, not a signal: {err}");
    if bytes <= groundglass_study::error::MAX_VOLUME_BYTES {
        assert!(
            err.contains("needs") && err.contains("available") && err.contains("GB"),
            "{err}"
        );
    } else {
        assert!(err.contains("refusing to allocate"), "{err}");
    }
    assert!(err.contains("gg-huge-"), "names the file: {err}");
    assert!(started.elapsed().as_secs() < 30, "refused before reading");
}
