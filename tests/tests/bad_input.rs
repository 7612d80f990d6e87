//! Bad files fail with a clear message naming the file and the problem; never a panic or a hang.

mod common;

use std::io::Write;
use std::path::PathBuf;

use common::*;
use groundglass_study::{open, NoProgress, StudyError};

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

/// Opens and loads every series; returns the first error's message.
fn first_error(path: &std::path::Path) -> String {
    match open(path) {
        Err(e) => e.to_string(),
        Ok(study) => {
            if let Some(e) = study.errors.first() {
                return e.to_string();
            }
            for s in &study.series {
                if let Err(e) = s.load(0, &NoProgress) {
                    return e.to_string();
                }
            }
            panic!("{} loaded without error", path.display());
        }
    }
}

fn gunzip(path: &std::path::Path) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open"))
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

#[test]
fn truncated_pixel_data_names_the_file() {
    let err = first_error(&testdata("dicom/edge-cases/pydicom_MR_truncated.dcm"));
    assert!(
        err.contains("pydicom_MR_truncated.dcm") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn garbage_and_cut_headers_fail_cleanly() {
    let garbage = temp_file("garbage.dcm", &[0x5a; 4000]);
    let err = first_error(&garbage);
    assert!(err.contains("garbage.dcm"), "{err}");

    let real = std::fs::read(testdata("dicom/transfer-syntax/pydicom_CT_small.dcm")).expect("read");
    for cut in [10, 131, 200, 700, 1200, real.len() / 2] {
        let path = temp_file(&format!("cut{cut}.dcm"), &real[..cut]);
        let err = first_error(&path);
        assert!(
            err.contains(&format!("cut{cut}.dcm")),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn unsupported_transfer_syntax_is_named() {
    // HTJ2K has no decoder in this build: the message names the syntax and the file.
    // Same bytes as a JPEG 2000 file, with the meta group's transfer syntax UID (same length)
    // changed to HTJ2K lossless.
    let mut bytes = std::fs::read(testdata(
        "dicom/transfer-syntax/pydicom_MR_small_jp2klossless.dcm",
    ))
    .expect("read");
    let from = b"1.2.840.10008.1.2.4.90";
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("J2K UID in the meta group");
    bytes[at..at + from.len()].copy_from_slice(b"1.2.840.10008.1.2.4.201"[..from.len()].as_ref());
    bytes[at..at + from.len()].copy_from_slice(b"1.2.840.10008.1.2.4.20");
    let path = temp_file("htj2k.dcm", &bytes);
    let err = first_error(&path);
    assert!(
        err.contains("htj2k.dcm") && err.contains("1.2.840.10008.1.2.4.20"),
        "{err}"
    );
}

#[test]
fn absurd_dicom_sizes_are_refused_before_allocating() {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let mut obj = dicom_object::open_file(testdata("dicom/transfer-syntax/pydicom_CT_small.dcm"))
        .expect("open");
    obj.put(DataElement::new(
        tags::ROWS,
        VR::US,
        PrimitiveValue::from(65535_u16),
    ));
    obj.put(DataElement::new(
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(65535_u16),
    ));
    obj.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from("99999"),
    ));
    let path = temp_file("huge.dcm", b"");
    obj.write_to_file(&path).expect("write");
    let err = first_error(&path);
    assert!(err.contains("huge.dcm") && err.contains("need"), "{err}");
}

fn patched_nifti(name: &str, patch: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = gunzip(&testdata("nifti/nibabel_standard.nii.gz"));
    patch(&mut bytes);
    temp_file(name, &bytes)
}

#[test]
fn nifti_allocation_bombs_and_truncation_fail_cleanly() {
    // dims 30000^3 of uint8: 27 TB.
    let bomb = patched_nifti("bomb.nii", |b| {
        for axis in 1..4 {
            b[40 + 2 * axis..42 + 2 * axis].copy_from_slice(&30000_i16.to_le_bytes());
        }
    });
    let err = first_error(&bomb);
    assert!(
        err.contains("bomb.nii") && err.contains("refusing"),
        "{err}"
    );

    let cut = patched_nifti("cut.nii", |b| b.truncate(b.len() - 20));
    let err = first_error(&cut);
    assert!(
        err.contains("cut.nii") && err.contains("truncated"),
        "{err}"
    );

    let bad_dims = patched_nifti("negdim.nii", |b| {
        b[42..44].copy_from_slice(&(-5_i16).to_le_bytes())
    });
    let err = first_error(&bad_dims);
    assert!(
        err.contains("negdim.nii") && err.contains("dim[1]"),
        "{err}"
    );

    let bad_size = patched_nifti("size.nii", |b| {
        b[0..4].copy_from_slice(&1234_i32.to_le_bytes())
    });
    let err = first_error(&bad_size);
    assert!(err.contains("size.nii") && err.contains("1234"), "{err}");

    // A gzip stream cut short.
    let gz = std::fs::read(testdata("nifti/nibabel_standard.nii.gz")).expect("read");
    let cut_gz = temp_file("cut.nii.gz", &gz[..gz.len() / 2]);
    let err = first_error(&cut_gz);
    assert!(err.contains("cut.nii.gz"), "{err}");
}

#[test]
fn empty_folder_and_missing_path_say_so() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut f = std::fs::File::create(dir.join("notes.txt")).expect("file");
    writeln!(f, "hello").expect("write");
    let err = open(&dir).expect_err("no images");
    assert!(matches!(err, StudyError::NoImages { .. }), "{err}");
    let err = open(&dir.join("missing")).expect_err("missing").to_string();
    assert!(err.contains("missing"), "{err}");
}

/// Preamble, magic and a meta group declaring explicit VR little endian, then `body`.
fn dicom_with_body(body: &[u8]) -> Vec<u8> {
    dicom_with_syntax(b"1.2.840.10008.1.2.1\0", body)
}

/// Preamble, magic and a meta group declaring the transfer syntax `ts` (even length), then `body`.
fn dicom_with_syntax(ts: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    let mut meta = Vec::new();
    meta.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I']);
    meta.extend_from_slice(&(ts.len() as u16).to_le_bytes());
    meta.extend_from_slice(ts);
    out.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(body);
    out
}

#[test]
fn a_huge_declared_length_is_refused_before_parsing() {
    // (0009,1010) OB claiming 4 GB in a file of a few hundred bytes: found by cargo fuzz, where
    // dicom-parser reserved and zeroed the declared length before reading.
    let mut body = vec![0x09, 0x00, 0x10, 0x10, b'O', b'B', 0, 0];
    body.extend_from_slice(&0xFFFF_FFF0_u32.to_le_bytes());
    body.extend_from_slice(&[0u8; 16]);
    let path = temp_file("huge-length.dcm", &dicom_with_body(&body));
    let err = first_error(&path);
    assert!(
        err.contains("huge-length.dcm") && err.contains("(0009,1010)") && err.contains("claims"),
        "{err}"
    );
}

/// A binary value that is not a whole number of values: dicom-parser reads the whole ones and
/// takes the rest for the next header. Found by the `dicom_file` fuzz target: a PixelRepresentation
/// mutated to FD with 2 bytes made the next element's bytes claim 4 GB, zeroed in a 107 kB file.
#[test]
fn a_binary_value_of_a_partial_length_is_refused_before_parsing() {
    let mut explicit = vec![0x28, 0x00, 0x03, 0x01, b'F', b'D', 2, 0, 1, 0];
    explicit.extend_from_slice(&[0x28, 0x00, 0x20, 0x01, b'S', b'S', 2, 0, 0x30, 0xF8]);
    explicit.extend_from_slice(&[0u8; 64]);
    let path = temp_file("partial-fd.dcm", &dicom_with_body(&explicit));
    let err = first_error(&path);
    assert!(
        err.contains("partial-fd.dcm")
            && err.contains("(0028,0103)")
            && err.contains("FD with 2 bytes, not a whole number of 8-byte values"),
        "{err}"
    );
    // Implicit VR: the VR comes from the dictionary; Rows (0028,0010) is US.
    let mut implicit = vec![0x28, 0x00, 0x10, 0x00, 3, 0, 0, 0, 1, 2, 3];
    implicit.extend_from_slice(&[0u8; 64]);
    let path = temp_file(
        "partial-us.dcm",
        &dicom_with_syntax(b"1.2.840.10008.1.2\0", &implicit),
    );
    let err = first_error(&path);
    assert!(
        err.contains("partial-us.dcm") && err.contains("(0028,0010)") && err.contains("US with 3"),
        "{err}"
    );
}

/// An element that runs past the end of the defined-length item holding it: dicom-parser then
/// reads from the wrong byte (found by the `dicom_file` fuzz target: an item of 13 bytes holding a
/// sequence delimiter and the start of the next sequence made it zero 4 GB for a 2 kB file).
#[test]
fn an_element_past_the_end_of_its_item_is_refused_before_parsing() {
    let mut body = vec![
        0x08, 0x00, 0x12, 0x21, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    body.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 13, 0, 0, 0]);
    body.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    body.extend_from_slice(&[
        0x08, 0x00, 0x15, 0x92, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    body.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
    body.extend_from_slice(&[0u8; 64]);
    let path = temp_file("straddling-item.dcm", &dicom_with_body(&body));
    let err = first_error(&path);
    assert!(
        err.contains("straddling-item.dcm")
            && err.contains("end a sequence or item without holding a whole element"),
        "{err}"
    );
}

#[test]
fn fuzz_regressions_fail_cleanly() {
    let dir = repo_root().join("fuzz/regressions");
    for entry in std::fs::read_dir(&dir).expect("regressions") {
        let path = entry.expect("entry").path();
        // Each must either load or give an error naming the file; none may abort or hang.
        if let Ok(study) = open(&path) {
            for s in &study.series {
                if let Err(e) = s.load(0, &NoProgress) {
                    assert!(
                        e.to_string()
                            .contains(path.file_name().expect("name").to_string_lossy().as_ref()),
                        "{e}"
                    );
                }
            }
        }
    }
}

/// A 226-byte `.nii.gz` whose header declares 10.4 GB of voxels (found by the `nifti_gz_file`
/// fuzz target after 58 minutes: the loader zeroed the volume before the stream proved short, which
/// a machine with the memory lets pass): refused before allocating, since deflate packs at most
/// 1032 bytes into one. An all-zero volume, gzip's best case, still loads.
#[test]
fn a_gzip_nifti_declaring_more_than_deflate_can_hold_is_refused_before_allocating() {
    let path = repo_root().join("fuzz/regressions/nifti_gz_declared_beyond_deflate.nii.gz");
    let study = open(&path).expect("the header is readable");
    let e = study.series[0].load(0, &NoProgress).expect_err("refused");
    let text = e.to_string();
    assert!(
        text.contains("nifti_gz_declared_beyond_deflate.nii.gz")
            && text.contains("226 bytes of gzip hold at most 233232 bytes"),
        "{text}"
    );

    // 128 x 128 x 256 int16 zeros (8 MB) in about 8 kB: a ratio near deflate's limit, loaded.
    let dir = std::env::temp_dir().join(format!("gg-zeros-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let zeros = dir.join("zeros.nii.gz");
    let mut header = vec![0u8; 352];
    header[0..4].copy_from_slice(&348i32.to_le_bytes());
    for (i, d) in [3i16, 128, 128, 256, 1, 1, 1, 1].iter().enumerate() {
        header[40 + 2 * i..42 + 2 * i].copy_from_slice(&d.to_le_bytes());
    }
    header[70..72].copy_from_slice(&4i16.to_le_bytes()); // int16
    header[72..74].copy_from_slice(&16i16.to_le_bytes());
    for (i, p) in [1f32, 1.0, 1.0, 1.0].iter().enumerate() {
        header[76 + 4 * i..80 + 4 * i].copy_from_slice(&p.to_le_bytes());
    }
    header[108..112].copy_from_slice(&352f32.to_le_bytes());
    header[344..348].copy_from_slice(b"n+1\0");
    let mut raw = header;
    raw.resize(352 + 128 * 128 * 256 * 2, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &raw).expect("gzip");
    let bytes = gz.finish().expect("gzip");
    assert!(
        raw.len() / bytes.len() > 900,
        "{} -> {}",
        raw.len(),
        bytes.len()
    );
    std::fs::write(&zeros, &bytes).expect("write");
    let study = open(&zeros).expect("opens");
    let volume = study.series[0]
        .load(0, &NoProgress)
        .expect("an all-zero volume loads");
    assert_eq!(volume.dims, [128, 128, 256]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A JPEG 2000 frame whose SIZ marker declares 512 x 16,384,512 pixels (found by the `dicom_file`
/// fuzz target: openjp2 asked for 32 GB): refused from the codestream's header, before the codec.
#[test]
fn a_compressed_frame_larger_than_its_header_is_refused_before_decoding() {
    let path = repo_root().join("fuzz/regressions/dicom_jpeg2000_declared_size.dcm");
    let study = open(&path).expect("the header is readable");
    let e = study.series[0].load(0, &NoProgress).expect_err("refused");
    let text = e.to_string();
    assert!(
        text.contains("dicom_jpeg2000_declared_size.dcm")
            && text.contains("declares 512 x 16384512 pixels"),
        "{text}"
    );
}

/// An RLE Lossless frame whose header declares 1,392,508,931 segments in a 664-byte fragment
/// (found by the `dicom_file` fuzz target: dicom-rs's decoder asked for 5.6 GB of offsets before
/// reading them): refused from the header, before the decoder.
#[test]
fn an_rle_frame_with_an_impossible_segment_count_is_refused_before_decoding() {
    let path = repo_root().join("fuzz/regressions/dicom_rle_segment_count.dcm");
    let study = open(&path).expect("the header is readable");
    let e = study.series[0].load(0, &NoProgress).expect_err("refused");
    let text = e.to_string();
    assert!(
        text.contains("dicom_rle_segment_count.dcm")
            && text.contains("the RLE header declares 1392508931 segments"),
        "{text}"
    );
}

/// A 9.8 kB JPEG file declaring 8,241 frames of 1024 x 256 in one fragment (found by the
/// `dicom_file` fuzz target: the loader zeroed 4.3 GB for them): refused before the volume is
/// allocated, each compressed frame needing a fragment of its own.
#[test]
fn a_multi_frame_file_with_fewer_fragments_than_frames_is_refused_before_allocating() {
    let path = repo_root().join("fuzz/regressions/dicom_frames_without_fragments.dcm");
    let study = open(&path).expect("the header is readable");
    let e = study.series[0].load(0, &NoProgress).expect_err("refused");
    let text = e.to_string();
    assert!(
        text.contains("dicom_frames_without_fragments.dcm")
            && text.contains("declares 8241 frames of compressed pixel data but holds 1 fragment"),
        "{text}"
    );
}

/// A PyTorch checkpoint whose pickle declares a 3.2 GB string in 270 KB (found by the
/// `checkpoint_file` fuzz target, which left the zip's CRC stale): refused with a message naming
/// the file before Candle's reader would allocate it. (A lying length under a correct CRC is
/// `pickle_guard`'s unit test.)
#[test]
fn a_checkpoint_pickle_that_lies_about_a_length_is_refused() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-bad-pickle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(
        repo_root().join("assets/models/demo/config.json"),
        dir.join("config.json"),
    )
    .expect("config");
    std::fs::copy(
        repo_root().join("fuzz/regressions/checkpoint/pytorch_model.bin"),
        dir.join("pytorch_model.bin"),
    )
    .expect("weights");
    let e = groundglass_model::checkpoint::stored_dtype(&dir).expect_err("refused");
    let text = e.to_string();
    assert!(
        text.contains("pytorch_model.bin") && text.contains("not a readable PyTorch checkpoint"),
        "{text}"
    );
    let e = groundglass_model::Checkpoint::open(
        &dir,
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .err()
    .expect("refused");
    assert!(e.to_string().contains("data.pkl"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
