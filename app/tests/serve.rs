//! `groundglass serve` and `ask --remote`, real processes on loopback in a private network
//! namespace: the remote answer is the local one, also for requests decoded together and when
//! streamed; a client that leaves or cancels is no longer decoded for; a missing token, a broken request, an
//! oversized body, a task the checkpoint cannot do and an unknown path are answered with a
//! status and a JSON error naming what is wrong; the server keeps serving after each.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use groundglass_tests::answer_of;
use groundglass_tests::netns::in_private_network;
use groundglass_tests::serving::Serving;

const PORT: u16 = 18091;

fn root(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn groundglass() -> Command {
    Command::new(env!("CARGO_BIN_EXE_groundglass"))
}

/// Starts the server and waits for its "serving" line.
fn serve() -> Serving {
    let mut c = groundglass();
    c.args(["serve", "--model"])
        .arg(root("assets/models/demo"))
        .args([
            "--listen",
            &format!("127.0.0.1:{PORT}"),
            "--token",
            "s3cret",
        ])
        .args(["--max-body-mb", "2", "--read-timeout-s", "3"]);
    Serving::start(c)
}

/// `ask` on the demo study's slice 40; the JSON without its timings.
fn ask(args: &[&str], token: Option<&str>) -> Result<serde_json::Value, String> {
    answer_of(ask_command(args, token).output().expect("ask runs"))
}

/// The `ask` command [`ask`] runs.
fn ask_command(args: &[&str], token: Option<&str>) -> Command {
    let mut c = groundglass();
    c.arg("ask")
        .arg(root("assets/demo/study"))
        .args(["--index", "40", "--json"])
        .args(args);
    match token {
        Some(t) => c.env("GROUNDGLASS_REMOTE_TOKEN", t),
        None => c.env_remove("GROUNDGLASS_REMOTE_TOKEN"),
    };
    c
}

/// The demo study's slice 40 and its modality.
fn demo_slice() -> (groundglass_study::SliceImage, String) {
    let study = groundglass_study::open(&root("assets/demo/study")).expect("demo study");
    let series = &study.series[0];
    let volume = series
        .load(0, &groundglass_study::NoProgress)
        .expect("demo volume");
    let slice = groundglass_study::extract(&volume, groundglass_study::Plane::Acquired, 40);
    (slice, series.modality.clone())
}

fn grounded_request() -> groundglass_model::prompt::Request {
    use groundglass_model::prompt::{Lang, Request, Task};
    Request {
        task: Task::Grounded,
        lang: Lang::En,
        clinical: None,
        question: None,
        options: vec![],
    }
}

/// The head of a chat request with the server's token and a body of `length` bytes, the
/// connection kept open (for tests that leave it, or never finish the body).
fn chat_head(length: usize) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer s3cret\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

/// A raw HTTP request; the status and the body.
fn http(method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", PORT)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    // A refused body may be cut short by the server: that is its right.
    let _ = s.write_all(body);
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn serve_answers_as_a_local_model_and_refuses_bad_requests_clearly() {
    if in_private_network("serve_answers_as_a_local_model_and_refuses_bad_requests_clearly") {
        inside_the_namespace();
    }
}

fn inside_the_namespace() {
    let server = serve();
    let url = format!("http://127.0.0.1:{PORT}");
    let model = root("assets/models/demo");
    let model = model.to_str().expect("path");

    // The same answer, findings and their patient positions included, for two tasks.
    for task in [
        &["--task", "grounded"][..],
        &["--task", "vqa", "--question", "Is the liver visible?"][..],
    ] {
        let local = ask(&[&["--model", model][..], task].concat(), None).expect("local ask");
        let remote =
            ask(&[&["--remote", &url][..], task].concat(), Some("s3cret")).expect("remote ask");
        assert_eq!(local, remote, "{task:?}");
    }
    // MIS-SemSam with the table the server built at start (k = 8, its default): the local
    // answer; another k is refused with the ones it has, not built while others wait.
    let semsam = ["--task", "grounded", "--semsam"];
    let local = ask(&[&["--model", model][..], &semsam].concat(), None).expect("local SemSam");
    let remote =
        ask(&[&["--remote", &url][..], &semsam].concat(), Some("s3cret")).expect("remote SemSam");
    assert_eq!(local, remote, "SemSam");
    let e = ask(
        &[&["--remote", &url][..], &semsam, &["--semsam-k", "3"]].concat(),
        Some("s3cret"),
    )
    .expect_err("a k without a table");
    assert!(e.contains("400") && e.contains("k in [8]"), "{e}");
    let grounded = ask(&["--remote", &url, "--task", "grounded"], Some("s3cret")).expect("ask");
    assert!(
        !grounded["findings"]
            .as_array()
            .expect("findings")
            .is_empty(),
        "the demo model grounds something on slice 40"
    );

    // Refusals, each with a status and a message, and the server still there after each.
    let e = ask(&["--remote", &url, "--task", "grounded"], None).expect_err("no token");
    assert!(e.contains("401") && e.contains("bearer token"), "{e}");
    // The token from a file (first line, trimmed), which wins over the environment; a wrong,
    // empty or missing file is named.
    let dir = std::env::temp_dir().join(format!("gg-serve-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("token folder");
    let token_file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("token file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .expect("chmod 600");
        }
        path.to_string_lossy().into_owned()
    };
    let grounded_with = |file: &str, env: Option<&str>| {
        ask(
            &[
                "--remote",
                &url,
                "--task",
                "grounded",
                "--remote-token-file",
                file,
            ],
            env,
        )
    };
    let right = token_file("right", "s3cret\n");
    let with_file =
        grounded_with(&right, Some("not-the-token")).expect("ask with the token from a file");
    assert_eq!(with_file, grounded);
    let e = grounded_with(&token_file("wrong", "guess\n"), None).expect_err("a wrong token");
    assert!(e.contains("401") && !e.contains("guess"), "{e}");
    let empty = token_file("empty", "\n");
    let e = grounded_with(&empty, None).expect_err("an empty token file");
    assert!(
        e.contains(&empty) && e.contains("first line is empty"),
        "{e}"
    );
    let missing = dir.join("missing").to_string_lossy().into_owned();
    let e = grounded_with(&missing, None).expect_err("no token file");
    assert!(
        e.contains(&missing) && e.contains("cannot read the token"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    let e = ask(&["--remote", &url, "--task", "segment"], Some("s3cret")).expect_err("segment");
    assert!(e.contains("422") && e.contains("mask head"), "{e}");
    let (status, body) = http("POST", "/v1/chat/completions", Some("s3cret"), b"{nope");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"invalid_request_error\""), "{body}");
    let (status, body) = http(
        "POST",
        "/v1/chat/completions",
        Some("s3cret"),
        br#"{"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("groundglass"), "{body}");
    let (status, body) = http(
        "POST",
        "/v1/chat/completions",
        Some("s3cret"),
        &vec![b' '; 3 << 20],
    );
    assert_eq!(status, 413, "{body}");
    let (status, body) = http("GET", "/nothing", Some("s3cret"), b"");
    assert_eq!(status, 404, "{body}");
    let (status, body) = http("GET", "/groundglass/model", None, b"");
    assert_eq!(
        status, 401,
        "the checkpoint's summary wants the token too: {body}"
    );
    let (status, body) = http("GET", "/groundglass/model", Some("s3cret"), b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"architecture\""), "{body}");
    let (status, body) = http("GET", "/health", None, b"");
    assert_eq!(status, 200, "{body}");
    let again = ask(&["--remote", &url, "--task", "grounded"], Some("s3cret")).expect("ask");
    assert_eq!(again, grounded, "still serving, the same answer");

    // As an OpenAI-compatible server (what the client sends vLLM): the picture preprocessed by
    // the client (8-bit RGB), the prompt's text, special tokens kept; the client parses the boxes.
    // The answer is the model's on that same 8-bit picture, computed here in process.
    let openai = [
        "--remote",
        &url,
        "--remote-api",
        "openai",
        "--remote-model",
        "demo",
        "--remote-image-size",
        "96",
    ];
    let plain = ask(
        &[&openai[..], &["--task", "grounded"]].concat(),
        Some("s3cret"),
    )
    .expect("an OpenAI-shaped ask");
    {
        let (slice, modality) = demo_slice();
        let image = groundglass_model::preprocess::preprocess_slice(&slice, &modality, 96);
        let sent = groundglass_serve::protocol::image_data_url(&image).expect("png");
        let received =
            groundglass_serve::protocol::image_from_data_url(&sent, 4096).expect("decoded");
        let (dir, cpu) = (root("assets/models/demo"), candle_core::Device::Cpu);
        // The precision the server picks for it (`--dtype auto`).
        let precision = groundglass_model::session::default_precision(&dir, &cpu);
        let mut session =
            groundglass_model::ModelSession::load(&dir, precision, &cpu).expect("demo model");
        let request = grounded_request();
        let here = session
            .answer_image(
                &received,
                &request.text(),
                groundglass_model::session::MAX_NEW_TOKENS,
                false,
            )
            .expect("in process");
        assert_eq!(plain["text"].as_str(), Some(here.text.as_str()));
    }
    assert_eq!(
        plain["findings"].as_array().map(Vec::len),
        grounded["findings"].as_array().map(Vec::len),
        "the boxes are parsed from the text as the server's own parse finds them: {plain}"
    );
    for (task, what) in [
        (&["--task", "segment"][..], "segmentation"),
        (&["--task", "grounded", "--semsam"][..], "SemSam"),
    ] {
        let e = ask(&[&openai[..], task].concat(), Some("s3cret")).expect_err(what);
        assert!(
            e.contains(what) && e.contains("not available from an OpenAI-compatible server"),
            "{e}"
        );
    }
    let picture = |side: u32| {
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("header");
        writer
            .write_image_data(&vec![128u8; (side * side) as usize])
            .expect("pixels");
        drop(writer);
        use base64::Engine as _;
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png)
        )
    };
    let plain_request = |url: String| {
        serde_json::json!({"model": "demo", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": "detect liver"}]}], "max_tokens": 8})
        .to_string()
    };
    let (status, body) = http(
        "POST",
        "/v1/chat/completions",
        Some("s3cret"),
        plain_request(picture(64)).as_bytes(),
    );
    assert_eq!(status, 400, "a picture of the wrong size: {body}");
    assert!(body.contains("this model takes 96 x 96"), "{body}");
    let (status, body) = http(
        "POST",
        "/v1/chat/completions",
        Some("s3cret"),
        plain_request("https://example.org/x.png".into()).as_bytes(),
    );
    assert_eq!(status, 400, "not a data URL: {body}");
    let (status, body) = http(
        "POST",
        "/v1/chat/completions",
        Some("s3cret"),
        plain_request(picture(96)).as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"completion_tokens\""), "{body}");

    // Concurrent asks are decoded together and each gets the answer it gets alone: the server
    // is frozen (SIGSTOP) while four clients queue at its door, then thawed, so that they arrive
    // at once; its health check then says how many answers one step advanced.
    let tasks: [&[&str]; 4] = [
        &["--task", "grounded"],
        &["--task", "report"],
        &["--task", "vqa", "--question", "Is the liver visible?"],
        &["--task", "vqa", "--question", "Is the spleen visible?"],
    ];
    let alone: Vec<_> = tasks
        .iter()
        .map(|t| ask(&[&["--model", model][..], t].concat(), None).expect("local ask"))
        .collect();
    server.signal("STOP");
    let clients: Vec<_> = tasks
        .iter()
        .map(|t| {
            ask_command(&[&["--remote", &url][..], t].concat(), Some("s3cret"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("ask starts")
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while groundglass_tests::netns::requests_waiting(PORT) < tasks.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "four clients did not connect within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.signal("CONT");
    for (i, client) in clients.into_iter().enumerate() {
        let together = answer_of(client.wait_with_output().expect("ask ends")).expect("remote");
        assert_eq!(together, alone[i], "{:?}", tasks[i]);
    }
    let (status, health) = http("GET", "/health", None, b"");
    assert_eq!(status, 200, "{health}");
    let health: serde_json::Value = serde_json::from_str(&health).expect("health JSON");
    eprintln!("after four concurrent asks: {health}");
    let largest = health["largest_batch"].as_u64().unwrap_or(0);
    assert!(
        largest >= 2,
        "four requests that arrived together were decoded one by one: {health}"
    );

    // A client that leaves before its answer: the server stops decoding it (a long answer, 200
    // tokens held to their length, is not finished for nobody) and goes on serving.
    let health = || -> serde_json::Value {
        serde_json::from_str(&http("GET", "/health", None, b"").1).expect("health JSON")
    };
    let until = |what: &str, done: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let h = health();
            if done(&h) {
                return h;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} within 30 s: {h}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let before = health();
    let long = serde_json::json!({"model": "demo", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": picture(96)}},
        {"type": "text", "text": "caption en"}]}], "max_tokens": 200, "min_tokens": 200})
    .to_string();
    {
        let mut s = TcpStream::connect(("127.0.0.1", PORT)).expect("connect");
        s.write_all(chat_head(long.len()).as_bytes()).expect("head");
        s.write_all(long.as_bytes()).expect("body");
        until("the long answer being decoded", &|h| h["decoding"] == 1);
        // Dropped: the connection closes with the answer still being made.
    }
    let after = until("the server dropping it", &|h| h["decoding"] == 0);
    eprintln!("a client left: before {before}, after {after}");
    assert_eq!(
        after["served"], before["served"],
        "the answer of a client that left was made to its end: {after}"
    );
    assert_eq!(
        after["abandoned"].as_u64(),
        before["abandoned"].as_u64().map(|n| n + 1)
    );
    let again = ask(&["--remote", &url, "--task", "grounded"], Some("s3cret")).expect("ask");
    assert_eq!(again, grounded, "still serving after a client left");

    // Streamed (server-sent events, as the viewer asks): the text grows step by step to the
    // whole answer's, with the same findings; cancelled after three steps, the client closes
    // the connection and the server stops decoding it.
    {
        let (slice, modality) = demo_slice();
        let request = grounded_request();
        let input = groundglass_model::AskInput {
            slice: &slice,
            modality: &modality,
            request: &request,
            semsam: None,
            max_new_tokens: groundglass_model::session::MAX_NEW_TOKENS,
            visual_prompt: None,
        };
        let mut remote = groundglass_serve::Remote::new(&url, Some("s3cret".into()));
        let whole = remote.ask(&input).expect("whole").answer;
        // Asked again after longer than the server waits for a request head (3 s here): the
        // client's kept-alive connection is gone by then, and the question is still answered.
        std::thread::sleep(Duration::from_secs(4));
        let later = remote
            .ask(&input)
            .expect("asked again after a pause")
            .answer;
        assert_eq!(later.text, whole.text);
        let mut seen: Vec<String> = Vec::new();
        let streamed = remote
            .ask_streaming(&input, |text| {
                seen.push(text.to_string());
                true
            })
            .expect("streamed")
            .answer;
        assert_eq!(streamed.text, whole.text);
        assert_eq!(
            serde_json::to_value(&streamed.findings).expect("json"),
            serde_json::to_value(&whole.findings).expect("json")
        );
        assert!(seen.len() > 2, "one update a step: {seen:?}");
        assert!(seen.windows(2).all(|w| w[1].starts_with(&w[0])), "{seen:?}");
        assert_eq!(seen.last(), Some(&whole.text));

        let before = health();
        remote.min_tokens = Some(200);
        let mut updates = 0;
        let cut = remote
            .ask_streaming(&input, |_| {
                updates += 1;
                updates < 3
            })
            .expect("cancelled")
            .answer;
        assert!(cut.cancelled && updates == 3, "{cut:?}");
        // Held to 200 tokens it decodes what the whole answer did, up to its end.
        assert!(whole.text.starts_with(&cut.text), "{cut:?}");
        let after = until("the server dropping the cancelled answer", &|h| {
            h["decoding"] == 0
        });
        assert_eq!(after["served"], before["served"], "{after}");
        assert_eq!(
            after["abandoned"].as_u64(),
            before["abandoned"].as_u64().map(|n| n + 1)
        );
    }

    // A body that never arrives in full: 408 after the read timeout (3 s here), and the
    // server goes on.
    {
        let mut s = TcpStream::connect(("127.0.0.1", PORT)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let head = chat_head(1000) + "{\"messages\": [";
        s.write_all(head.as_bytes()).expect("head");
        let started = std::time::Instant::now();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("did not arrive within 3 s"), "{answer}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }
    let again = ask(&["--remote", &url, "--task", "grounded"], Some("s3cret")).expect("ask");
    assert_eq!(
        again, grounded,
        "still serving after a body that never came"
    );

    // Nobody there: a message naming the address, not a hang.
    let e = ask(
        &["--remote", "http://127.0.0.1:9", "--task", "grounded"],
        None,
    )
    .expect_err("dead server");
    assert!(
        e.contains("127.0.0.1:9") && e.contains("could not connect"),
        "{e}"
    );

    // The server killed mid-request: frozen first (SIGSTOP), so that the client's request waits
    // in its queue of connections, then killed (SIGKILL) once the connection is there. The
    // client says the server went away, not that it could not connect, and does not hang.
    server.signal("STOP");
    let client = groundglass()
        .arg("ask")
        .arg(root("assets/demo/study"))
        .args([
            "--index", "40", "--json", "--remote", &url, "--task", "grounded",
        ])
        .env("GROUNDGLASS_REMOTE_TOKEN", "s3cret")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ask starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !groundglass_tests::netns::request_waiting(PORT) {
        assert!(
            std::time::Instant::now() < deadline,
            "the client did not connect within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.signal("KILL");
    let out = client.wait_with_output().expect("ask ends");
    let e = String::from_utf8_lossy(&out.stderr);
    eprintln!("killed mid-request: {e}");
    assert!(!out.status.success(), "{e}");
    assert!(
        e.contains(&url) && e.contains("closed the connection before it answered"),
        "{e}"
    );
}
