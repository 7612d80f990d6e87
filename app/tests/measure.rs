//! `groundglass measure` and `slice --slab` on the real head CT, against numpy's figures for the same
//! voxels (`tests/fixtures/make_measure_fixture.py`).

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_groundglass"))
}

fn root(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn fixture() -> serde_json::Value {
    let text = std::fs::read_to_string(root("tests/fixtures/measure/ct_head_invesalius.json"))
        .expect("fixture");
    serde_json::from_str(&text).expect("json")
}

fn measure(args: &[&str]) -> Result<serde_json::Value, String> {
    let f = fixture();
    let out = bin()
        .arg("measure")
        .arg(root(f["series"].as_str().expect("series")))
        .args(["--index", &f["index"].to_string(), "--json"])
        .args(args)
        .output()
        .expect("run");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// A fixture's coordinates as the command line takes them: "x0,y0,x1,y1".
fn csv(numbers: &serde_json::Value) -> String {
    let numbers = numbers.as_array().expect("numbers");
    numbers
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn close(got: &serde_json::Value, expected: &serde_json::Value, key: &str, tol: f64) {
    let (g, e) = (got[key].as_f64(), expected[key].as_f64());
    let (Some(g), Some(e)) = (g, e) else {
        panic!("{key}: {got} vs {expected}");
    };
    assert!(
        (g - e).abs() <= tol * e.abs().max(1.0),
        "{key}: {g} vs numpy {e}"
    );
}

#[test]
fn region_statistics_equal_numpys_on_the_same_voxels() {
    let f = fixture();
    for region in f["regions"].as_array().expect("regions") {
        // A rectangle's or an ellipse's box, or a freehand outline's vertices.
        let coordinates = match region.get("points") {
            Some(points) => points,
            None => &region["box"],
        };
        let b = csv(coordinates);
        let option = format!("--{}", region["kind"].as_str().expect("kind"));
        let got = measure(&[&option, &b]).expect("measure");
        assert_eq!(got["voxels"], region["voxels"], "{option} {b}: {got}");
        assert_eq!(got["unit"], "HU");
        for key in ["mean", "sd", "min", "max", "area_mm2"] {
            close(&got, region, key, 1e-9);
        }
    }
    for line in f["lines"].as_array().expect("lines") {
        let l = csv(&line["line"]);
        let got = measure(&["--line", &l]).expect("measure");
        close(&got, line, "length_mm", 1e-9);
    }
}

/// `measure --json OPTION VALUE` on the fixture's oblique series.
fn measure_oblique(option: &str, value: &str) -> serde_json::Value {
    let f = fixture();
    let o = &f["oblique"];
    let out = bin()
        .arg("measure")
        .arg(root(o["series"].as_str().expect("series")))
        .args(["--index", &o["index"].to_string(), "--json", option, value])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn lengths_on_an_oblique_series_equal_the_patient_positions_distance() {
    let f = fixture();
    for line in f["oblique"]["lines"].as_array().expect("lines") {
        let got = measure_oblique("--line", &csv(&line["line"]));
        close(&got, line, "length_mm", 1e-9);
    }
}

#[test]
fn angles_on_an_oblique_series_equal_the_patient_positions_angle() {
    let f = fixture();
    for angle in f["oblique"]["angles"].as_array().expect("angles") {
        let got = measure_oblique("--angle", &csv(&angle["angle"]));
        close(&got, angle, "angle_deg", 1e-9);
    }
}

#[test]
fn measure_takes_negative_coordinates_and_refuses_bad_input_clearly() {
    // Typed as users type them: a box that starts off the image is clipped to it.
    let clipped = measure(&["--rect", "-10,-10,0,0"]).expect("measure");
    assert_eq!(clipped["voxels"], 1);
    let point = measure(&["--point", "100,90"]).expect("measure");
    assert!(point["value"].is_number(), "{point}");
    for (args, says) in [
        (
            vec!["--rect", "1,2,3"],
            "expected 4 comma-separated numbers",
        ),
        (vec!["--line", "1,2,x,4"], "\"x\" is not a number"),
        (
            vec!["--ellipse", "400,400,500,500"],
            "no pixel centre inside it",
        ),
        (vec!["--point", "-3,5"], "outside the slice"),
        (
            vec!["--polygon", "0,0,10,10"],
            "X,Y pairs of three or more vertices",
        ),
        (
            vec!["--polygon", "0,0,10,10,0,10,5"],
            "X,Y pairs of three or more vertices",
        ),
        (vec!["--angle", "1,1,1,1,5,5"], "an arm has no length"),
        (
            vec!["--angle", "1,1,2,2"],
            "expected 6 comma-separated numbers",
        ),
        (
            vec!["--line", "0,0,1,1", "--rect", "0,0,1,1"],
            "cannot be used with",
        ),
    ] {
        let err = measure(&args).expect_err("refused");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let none = bin()
        .arg("measure")
        .arg(root("../shared/testdata/dicom/series/ct_head_invesalius"))
        .output()
        .expect("run");
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("required"));
}

#[test]
fn slice_writes_slabs_and_takes_a_negative_window() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-measure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let series = root("../shared/testdata/dicom/series/ct_head_invesalius");
    let grey_sum = |path: &std::path::Path| -> u64 {
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(path).expect("png"),
        ));
        let mut reader = decoder.read_info().expect("png");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("frame");
        buf[..info.buffer_size()]
            .iter()
            .map(|&b| u64::from(b))
            .sum()
    };
    let mut sums = Vec::new();
    for extra in [
        vec![],
        vec!["--slab", "15", "--projection", "mip"],
        vec!["--slab", "15", "--projection", "minip"],
        vec!["--slab", "15", "--projection", "mean"],
    ] {
        let out_path = dir.join(format!("slab-{}.png", sums.len()));
        let out = bin()
            .arg("slice")
            .arg(&series)
            .args(["--plane", "coronal", "--window", "-600,1500", "--out"])
            .arg(&out_path)
            .args(&extra)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        sums.push(grey_sum(&out_path));
    }
    let [single, mip, minip, mean] = sums[..] else {
        unreachable!()
    };
    assert!(mip > single && minip < single, "{sums:?}");
    assert!(minip < mean && mean < mip, "{sums:?}");
    for (args, says) in [
        (vec!["--slab", "-5"], "must be a positive number"),
        (
            vec!["--slab", "5", "--projection", "sum"],
            "expected mip, minip or mean",
        ),
        (vec!["--projection", "mip"], "--slab"),
    ] {
        let out = bin()
            .arg("slice")
            .arg(&series)
            .arg("--out")
            .arg(dir.join("bad.png"))
            .args(&args)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{args:?}: {err}"
        );
    }
}
