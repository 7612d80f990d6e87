//! Crash safety: a child process appends entries to a store as fast as it can (compacting now and
//! then) and reports each one the store acknowledged; the parent kills it with SIGKILL at varying
//! moments, many times. After every kill the store must open, and every acknowledged entry must be
//! there, in order, once.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use groundglass_feedback::{Edit, Store};

const CHILD: &str = "GG_CRASH_CHILD_STORE";

/// Runs only as the child the parent test starts.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD) else {
        return;
    };
    let mut store = Store::open(std::path::Path::new(&dir)).expect("child opens the store");
    let start = store.next_seq();
    for i in 0.. {
        let entry = store
            .append(
                Edit::Keyword {
                    annotation: format!("a{}", start + i),
                    keyword: "x".repeat((i % 300) as usize),
                },
                "crash test",
            )
            .expect("append");
        println!("ack {}", entry.seq);
        if i % 97 == 96 {
            store.compact().expect("compact");
            println!("compacted");
        }
    }
}

#[test]
fn acknowledged_entries_survive_sigkill() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exe = std::env::current_exe().expect("test binary");
    let mut acknowledged: Vec<u64> = Vec::new();
    let mut torn = 0;
    for round in 0..40u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_writer",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the writer");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        // Let it write a varying number of entries, then kill it mid-stream.
        let wanted = 5 + (round * 37) % 180;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = 0;
        while seen < wanted {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(n) = line.strip_prefix("ack ") {
                acknowledged.push(n.trim().parse().expect("seq"));
                seen += 1;
            }
            assert!(Instant::now() < deadline, "the writer stalled");
        }
        // SIGKILL: no destructor, no flush, whatever write is in flight is cut.
        child.kill().expect("kill");
        // Acknowledgements already printed before the kill count too.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("ack ") {
                acknowledged.push(n.trim().parse().expect("seq"));
            }
        }
        child.wait().expect("reap");
        let store = Store::open(&dir)
            .unwrap_or_else(|e| panic!("round {round}: the store does not open: {e}"));
        if store.recovered_bytes > 0 {
            torn += 1;
        }
        let seqs: Vec<u64> = store.entries().iter().map(|e| e.seq).collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(
            seqs, expected,
            "round {round}: entries are numbered 1..n without gaps"
        );
        for a in &acknowledged {
            assert!(
                seqs.binary_search(a).is_ok(),
                "round {round}: acknowledged entry {a} is lost ({} entries)",
                seqs.len()
            );
        }
    }
    eprintln!(
        "{} acknowledged entries over 40 kills; {torn} reopenings dropped a torn record",
        acknowledged.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
