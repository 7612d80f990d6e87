//! Servers that misbehave on purpose, on loopback inside a private network namespace: silent,
//! stalling mid-transfer, refusing with 403, answering what is not JSON or not multipart,
//! closing mid-answer, answering HTTP on a DICOM port, aborting or dropping an association. A
//! real PACS does these only by accident, so each is a small listener written here; every case
//! must end in an error that names the server and what went wrong, within the timeout.
//! (Refused connections, wrong AE titles, 401 and 404 are checked against Orthanc itself, in
//! `orthanc.rs`.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dicom_ul::association::server::ServerAssociationOptions;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use groundglass_pacs::{retrieve, PacsError, Server, StudyQuery};
use groundglass_tests::netns::in_private_network;

/// The timeout the client runs under here (`GROUNDGLASS_PACS_TIMEOUT_S`), and how long a case
/// may take in all before it counts as a hang.
const TIMEOUT_S: u64 = 2;
const HANG: Duration = Duration::from_secs(10);

#[test]
fn bad_servers_end_in_clear_errors() {
    if in_private_network("bad_servers_end_in_clear_errors") {
        // The namespace's test process runs this one test on one thread.
        std::env::set_var(
            groundglass_pacs::timeouts::TIMEOUT_VARIABLE,
            TIMEOUT_S.to_string(),
        );
        web_cases();
        dimse_cases();
    }
}

/// A listener on a free loopback port that handles one connection with `behave`.
fn serve_once(behave: impl FnOnce(TcpStream) + Send + 'static) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("address").port();
    let handle = std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            behave(stream);
        }
    });
    (port, handle)
}

/// Reads an HTTP request's head (up to the blank line) so that the answer follows it.
fn read_request(stream: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 << 10 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
}

/// An HTTP server that reads the request, writes `answer`, then holds the connection open for
/// `hold` (a stall) before closing it.
fn http_once(answer: Vec<u8>, hold: Duration) -> (Server, JoinHandle<()>) {
    let (port, handle) = serve_once(move |mut stream| {
        read_request(&mut stream);
        let _ = stream.write_all(&answer);
        let _ = stream.flush();
        std::thread::sleep(hold);
    });
    let server = Server::parse(&format!("http://127.0.0.1:{port}/dicom-web"), "GGTEST")
        .expect("web address");
    (server, handle)
}

fn http_answer(status: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n").into_bytes();
    for h in headers {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

fn query() -> StudyQuery {
    StudyQuery {
        limit: 10,
        ..Default::default()
    }
}

fn out_dir(case: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gg-bad-server-{}-{case}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs `call`, which must fail within [`HANG`]; checks that the message names `server` and
/// says `says`, and that `ok` holds of the error.
fn expect_error<T: std::fmt::Debug>(
    case: &str,
    server: &Server,
    says: &str,
    ok: impl Fn(&PacsError) -> bool,
    call: impl FnOnce() -> Result<T, PacsError>,
) {
    let started = Instant::now();
    let e = call().expect_err(case);
    let took = started.elapsed();
    let text = e.to_string();
    eprintln!("{case}: {text} ({:.1} s)", took.as_secs_f64());
    assert!(took < HANG, "{case}: took {took:?}, a hang: {text}");
    assert!(ok(&e), "{case}: the wrong kind of error: {e:?}");
    assert!(
        text.contains(&server.name()),
        "{case}: the message does not name the server {}: {text}",
        server.name()
    );
    assert!(text.contains(says), "{case}: expected `{says}` in: {text}");
}

fn web_cases() {
    let hold = Duration::from_secs(TIMEOUT_S + 2);

    let (server, t) = http_once(Vec::new(), hold);
    expect_error(
        "silent web server",
        &server,
        &format!("no answer within {TIMEOUT_S} s"),
        |e| matches!(e, PacsError::Timeout { .. }),
        || groundglass_pacs::search(&server, &query()),
    );
    t.join().expect("server thread");

    let (server, t) = http_once(
        http_answer("403 Forbidden", &["Content-Length: 9"], b"forbidden"),
        Duration::ZERO,
    );
    expect_error(
        "403",
        &server,
        "HTTP 403: these credentials may not do this",
        |e| matches!(e, PacsError::Status { status: 403, .. }),
        || groundglass_pacs::search(&server, &query()),
    );
    t.join().expect("server thread");

    for (case, body, says) in [
        ("an HTML page", &b"<html>proxy login</html>"[..], "not JSON"),
        (
            "a JSON object",
            &b"{\"0020000D\": {}}"[..],
            "not a JSON array",
        ),
    ] {
        let length = format!("Content-Length: {}", body.len());
        let (server, t) = http_once(
            http_answer(
                "200 OK",
                &["Content-Type: application/dicom+json", &length],
                body,
            ),
            Duration::ZERO,
        );
        expect_error(
            case,
            &server,
            says,
            |e| matches!(e, PacsError::Malformed { .. }),
            || groundglass_pacs::search(&server, &query()),
        );
        t.join().expect("server thread");
    }

    // Promises 4,000 bytes of JSON, sends 20 and closes.
    let (server, t) = http_once(
        http_answer(
            "200 OK",
            &[
                "Content-Type: application/dicom+json",
                "Content-Length: 4000",
            ],
            b"[{\"0020000D\": {\"vr\"",
        ),
        Duration::ZERO,
    );
    expect_error(
        "search answer cut short",
        &server,
        "broke off",
        |e| matches!(e, PacsError::BrokeOff { .. }),
        || groundglass_pacs::search(&server, &query()),
    );
    t.join().expect("server thread");

    // Retrievals: the instances are written as they arrive, so each failure must also leave no
    // "finished" marker behind (a half-received series is never taken for a complete one).
    let retrieve_case =
        |case: &str, answer: Vec<u8>, hold: Duration, says: &str, kind: fn(&PacsError) -> bool| {
            let (server, t) = http_once(answer, hold);
            let dir = out_dir(case);
            expect_error(case, &server, says, kind, || {
                groundglass_pacs::retrieve(&server, "1.2.3", None, &dir, |_| {
                    ControlFlow::Continue(())
                })
            });
            assert!(retrieve::finished(&dir).is_none(), "{case}: a marker");
            let _ = std::fs::remove_dir_all(&dir);
            t.join().expect("server thread");
        };
    retrieve_case(
        "not multipart",
        http_answer(
            "200 OK",
            &["Content-Type: application/dicom", "Content-Length: 4"],
            b"DICM",
        ),
        Duration::ZERO,
        "expected a multipart/related answer",
        |e| matches!(e, PacsError::Malformed { .. }),
    );
    retrieve_case(
        "multipart without its boundary",
        http_answer(
            "200 OK",
            &[
                "Content-Type: multipart/related; type=\"application/dicom\"; boundary=b0",
                "Content-Length: 22",
            ],
            b"no boundary here at al",
        ),
        Duration::ZERO,
        "malformed",
        |e| matches!(e, PacsError::Malformed { .. }),
    );
    let part_start = b"--b0\r\nContent-Type: application/dicom\r\n\r\n\0\0\0\0";
    retrieve_case(
        "transfer stalls",
        http_answer(
            "200 OK",
            &[
                "Content-Type: multipart/related; type=\"application/dicom\"; boundary=b0",
                "Content-Length: 1000000",
            ],
            part_start,
        ),
        hold,
        &format!("no answer within {TIMEOUT_S} s"),
        |e| matches!(e, PacsError::Timeout { .. }),
    );
    retrieve_case(
        "transfer cut short",
        http_answer(
            "200 OK",
            &[
                "Content-Type: multipart/related; type=\"application/dicom\"; boundary=b0",
                "Content-Length: 1000000",
            ],
            part_start,
        ),
        Duration::ZERO,
        "broke off",
        |e| matches!(e, PacsError::BrokeOff { .. }),
    );
}

/// A DIMSE peer for `behave`, as the client addresses it.
fn dimse_once(behave: impl FnOnce(TcpStream) + Send + 'static) -> (Server, JoinHandle<()>) {
    let (port, handle) = serve_once(behave);
    let server =
        Server::parse(&format!("dicom://PACS@127.0.0.1:{port}"), "GGTEST").expect("dimse address");
    (server, handle)
}

/// Accepts the association (any AE title, the query/retrieve classes), then does `after` with
/// the first PDU the client sends.
fn associate(
    stream: TcpStream,
    after: impl FnOnce(dicom_ul::association::ServerAssociation<TcpStream>),
) {
    let options = ServerAssociationOptions::new()
        .accept_any()
        .ae_title("PACS")
        .promiscuous(true);
    let mut association = options
        .establish(stream)
        .expect("the client asks for an association");
    let _ = association.receive();
    after(association);
}

fn dimse_cases() {
    let hold = Duration::from_secs(TIMEOUT_S + 2);

    let (server, t) = dimse_once(move |_stream| std::thread::sleep(hold));
    expect_error(
        "silent DICOM peer",
        &server,
        &format!("no answer within {TIMEOUT_S} s"),
        |e| matches!(e, PacsError::Timeout { .. }),
        || groundglass_pacs::echo(&server),
    );
    t.join().expect("server thread");

    // A tired user gives the DICOMweb port as a DICOM one: an HTTP answer to an A-ASSOCIATE-RQ.
    let (server, t) = dimse_once(|mut stream| {
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf);
        let _ = stream.write_all(&http_answer("400 Bad Request", &["Content-Length: 0"], b""));
    });
    expect_error(
        "HTTP on a DICOM port",
        &server,
        "the peer answered in HTTP, not DICOM: is this the DICOMweb port?",
        |e| matches!(e, PacsError::Association { .. }),
        || groundglass_pacs::echo(&server),
    );
    t.join().expect("server thread");

    let (server, t) = dimse_once(|stream| {
        associate(stream, |association| {
            let _ = association.abort();
        })
    });
    expect_error(
        "association aborted during a search",
        &server,
        "aborted by the peer",
        |e| matches!(e, PacsError::Association { .. }),
        || groundglass_pacs::search(&server, &query()),
    );
    t.join().expect("server thread");

    // The connection dropped without a word in the middle of a C-GET.
    let (server, t) = dimse_once(|stream| associate(stream, drop));
    let dir = out_dir("dimse-dropped");
    expect_error(
        "connection dropped during a retrieval",
        &server,
        "association rejected or aborted",
        |e| matches!(e, PacsError::Association { .. }),
        || groundglass_pacs::retrieve(&server, "1.2.3", None, &dir, |_| ControlFlow::Continue(())),
    );
    assert!(
        retrieve::finished(&dir).is_none(),
        "a dropped C-GET leaves no marker"
    );
    let _ = std::fs::remove_dir_all(&dir);
    t.join().expect("server thread");

    // An answer to a C-FIND that is not a DIMSE command.
    let (server, t) = dimse_once(|stream| {
        associate(stream, |mut association| {
            let id = association
                .presentation_contexts()
                .first()
                .map_or(1, |pc| pc.id);
            let _ = association.send(&Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: id,
                    value_type: PDataValueType::Command,
                    is_last: true,
                    data: b"this is not a command set".to_vec(),
                }],
            });
            std::thread::sleep(Duration::from_millis(200));
        })
    });
    expect_error(
        "a command that does not parse",
        &server,
        "malformed",
        |e| matches!(e, PacsError::Malformed { .. }),
        || groundglass_pacs::search(&server, &query()),
    );
    t.join().expect("server thread");
}
