//! Tests that run servers do so on loopback inside a private network namespace of their own, so
//! nothing they start can be reached from outside, or reach out.

use std::process::Command;

/// Set in the re-run test's environment.
pub(crate) const INSIDE: &str = "GROUNDGLASS_TEST_NETNS";

/// Whether the calling test (named `test`, as `cargo test` names it) runs here, inside the
/// namespace. Outside it, re-runs the test binary with only that test inside a new namespace
/// (`unshare -n`, then `ip link set lo up`) and asserts that it passed, then returns `false`;
/// also `false`, with a message, when namespaces are not available (required under CI).
pub fn in_private_network(test: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        return true;
    }
    let have_unshare = Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_unshare {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the server tests: unshare -n is not available"
        );
        eprintln!("skipped: unshare -n is not available");
        return false;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let status = Command::new("unshare")
        .args([
            "-n",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" --exact \"$1\" --nocapture --test-threads 1",
        ])
        .arg(exe)
        .arg(test)
        .env(INSIDE, "1")
        .status()
        .expect("unshare runs");
    assert!(
        status.success(),
        "{test}: the test inside the network namespace failed"
    );
    false
}

/// Whether a request waits unread on the server's side of loopback `port`, in this namespace's
/// `/proc/net/tcp` (that local port, state 01, bytes in its receive queue): on a new connection
/// or on one kept alive from an earlier answer. Tests that kill a server mid-request wait for it.
pub fn request_waiting(port: u16) -> bool {
    requests_waiting(port) > 0
}

/// How many connections to loopback `port` hold a request the server has not read yet (as
/// [`request_waiting`]): tests that freeze a server count the clients queued at its door.
pub fn requests_waiting(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let unread = f
                .get(4)
                .and_then(|q| q.split_once(':'))
                .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok())
                .unwrap_or(0);
            f.len() > 4 && f[1].ends_with(&local) && f[3] == "01" && unread > 0
        })
        .count()
}
