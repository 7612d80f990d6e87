//! Support for tests across the workspace; the cross-crate tests themselves live in `tests/`.
//! - [`netns`]: a test re-run inside a private network namespace, for tests that run servers.
//! - [`serving`]: a server process started by a test, awaited, and killed when dropped.
//! - [`orthanc`]: a real Orthanc, started by a test on loopback inside a private network
//!   namespace, for the PACS client's and the viewer's PACS tests.
//! - [`assert_valid_dicom`]: dicom3tools' `dciodvfy` finds no error in a file we wrote.
//! - [`answer_of`]: what `ask --json` printed, without its timings (to compare two answers).

pub mod netns;
pub mod orthanc;
pub mod serving;

/// `dciodvfy` finds no errors in the file (where it is installed; CI must have it).
pub fn assert_valid_dicom(path: &std::path::Path) {
    match std::process::Command::new("dciodvfy").arg(path).output() {
        Ok(out) => {
            let report = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("Error")).collect();
            assert!(errors.is_empty(), "dciodvfy {}: {report}", path.display());
        }
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "dciodvfy is not installed (apt-get install dicom3tools); validity not checked"
            );
        }
        Err(e) => panic!("dciodvfy is required in CI: {e}"),
    }
}

/// What `ask --json` printed, without its timings (`ttft_ms`, `tok_per_s`), so that two answers
/// compare; its error output when it failed.
pub fn answer_of(out: std::process::Output) -> Result<serde_json::Value, String> {
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ask's JSON");
    let map = json.as_object_mut().expect("an object");
    map.remove("ttft_ms");
    map.remove("tok_per_s");
    Ok(json)
}
