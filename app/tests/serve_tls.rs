//! `serve --tls-cert/--tls-key`, real processes on loopback in a private network namespace: with
//! a test authority's certificate, `ask --remote https://...` that trusts it (GROUNDGLASS_REMOTE_CA)
//! gets the local answer; a client that does not trust it, or speaks plain HTTP to it, is refused
//! with a message that says so, and the server goes on serving; a certificate or key that will not
//! do is named before the model loads.

use std::path::{Path, PathBuf};
use std::process::Command;

use groundglass_tests::netns::in_private_network;
use groundglass_tests::serving::Serving;

const PORT: u16 = 18093;

fn root(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// A certificate authority and a server certificate for 127.0.0.1 it signed, as PEM files in
/// `dir`: (ca.pem, server.pem, server.key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "Groundglass test hospital CA");
    let ca = ca.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    server
        .distinguished_name
        .push(DnType::CommonName, "groundglass serve");
    let server = server
        .signed_by(&key, &ca, &ca_key)
        .expect("server certificate");
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca.pem()).expect("ca.pem");
    std::fs::write(&paths.1, server.pem()).expect("server.pem");
    std::fs::write(&paths.2, key.serialize_pem()).expect("server.key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&paths.2, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (paths.0, paths.1, paths.2)
}

fn groundglass() -> Command {
    Command::new(env!("CARGO_BIN_EXE_groundglass"))
}

/// `ask --json` on the demo study's slice 40, its timings left out; the error output on failure.
fn ask(backend: &[&str], ca: Option<&Path>) -> Result<serde_json::Value, String> {
    let mut c = groundglass();
    c.arg("ask")
        .arg(root("assets/demo/study"))
        .args(["--index", "40", "--json", "--task", "grounded"])
        .args(backend)
        .env("GROUNDGLASS_REMOTE_TOKEN", "s3cret");
    match ca {
        Some(ca) => c.env("GROUNDGLASS_REMOTE_CA", ca),
        None => c.env_remove("GROUNDGLASS_REMOTE_CA"),
    };
    groundglass_tests::answer_of(c.output().expect("ask runs"))
}

#[test]
fn serve_over_tls_answers_clients_that_trust_it_and_refuses_the_others_clearly() {
    if in_private_network(
        "serve_over_tls_answers_clients_that_trust_it_and_refuses_the_others_clearly",
    ) {
        over_tls();
    }
}

fn over_tls() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-serve-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let (ca, cert, key) = certificates(&dir);
    let model = root("assets/models/demo");

    // Files that will not do are named before the model loads.
    let refused = |cert: &Path, key: &Path| {
        let out = groundglass()
            .args(["serve", "--listen", &format!("127.0.0.1:{PORT}"), "--model"])
            .arg(&model)
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .output()
            .expect("serve runs");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = refused(&dir.join("missing.pem"), &key);
    assert!(e.contains("missing.pem"), "{e}");
    let e = refused(&key, &key);
    assert!(
        e.contains("server.key") && e.contains("no PEM certificate"),
        "{e}"
    );
    let e = refused(&cert, &ca);
    assert!(e.contains("ca.pem"), "{e}");
    let half = groundglass()
        .args(["serve", "--listen", "127.0.0.1:1", "--model"])
        .arg(&model)
        .arg("--tls-cert")
        .arg(&cert)
        .output()
        .expect("serve runs");
    assert!(!half.status.success());
    assert!(
        String::from_utf8_lossy(&half.stderr).contains("--tls-key"),
        "a certificate without its key is refused"
    );

    let mut c = groundglass();
    c.args(["serve", "--listen", &format!("127.0.0.1:{PORT}"), "--model"])
        .arg(&model)
        .args(["--token", "s3cret", "--read-timeout-s", "3"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key);
    let server = Serving::start(c);
    let https = format!("https://127.0.0.1:{PORT}");
    let model_arg = model.to_str().expect("path");
    let local = ask(&["--model", model_arg], None).expect("local ask");
    let remote = ask(&["--remote", &https], Some(&ca)).expect("remote ask over TLS");
    assert_eq!(local, remote, "the answer over TLS is the local one");

    // Not trusted: the public roots do not know the test authority.
    let e = ask(&["--remote", &https], None).expect_err("an untrusted certificate");
    assert!(
        e.contains(&https) && e.contains("no secure connection"),
        "{e}"
    );
    assert!(
        e.contains("UnknownIssuer") && e.contains("GROUNDGLASS_REMOTE_CA"),
        "{e}"
    );
    // Plain HTTP to the TLS port: refused, not hung.
    let e = ask(
        &["--remote", &format!("http://127.0.0.1:{PORT}")],
        Some(&ca),
    )
    .expect_err("plain HTTP");
    assert!(
        e.contains(&format!("127.0.0.1:{PORT}")) && e.contains("https://"),
        "{e}"
    );
    // A CA file that is not one is named.
    let e = ask(&["--remote", &https], Some(&key)).expect_err("a key as the CA");
    assert!(e.contains("server.key"), "{e}");
    // And the server still answers.
    let again = ask(&["--remote", &https], Some(&ca)).expect("still serving");
    assert_eq!(again, local);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
