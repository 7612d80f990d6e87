//! A full disk during an append: a child process whose file size limit (`ulimit -f`, SIGXFSZ
//! ignored, so writes past it fail with EFBIG as on a full file system) appends until the store
//! refuses. The refused entry is not acknowledged, every acknowledged one is there afterwards,
//! the journal is clean (no torn frame left behind) and appends go on once there is room.

#![cfg(unix)]

use std::process::Command;

use groundglass_feedback::{Edit, Store};

const CHILD: &str = "GG_FULL_DISK_CHILD_STORE";

fn edit(i: u64) -> Edit {
    Edit::Keyword {
        annotation: format!("a{i}"),
        keyword: "x".repeat(200),
    }
}

/// Runs only as the child the parent test starts (under a file size limit).
#[test]
fn child_appends_until_refused() {
    let Ok(dir) = std::env::var(CHILD) else {
        return;
    };
    let mut store = Store::open(std::path::Path::new(&dir)).expect("child opens the store");
    for i in 0..1000 {
        match store.append(edit(100 + i), "full disk test") {
            Ok(entry) => println!("ack {}", entry.seq),
            Err(e) => {
                println!("refused {e}");
                return;
            }
        }
    }
    println!("never refused");
}

#[test]
fn an_append_on_a_full_disk_is_refused_and_harms_nothing() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-full-disk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let mut store = Store::open(&dir).expect("open");
        for i in 0..5 {
            store.append(edit(i), "before").expect("append");
        }
    }
    let journal = dir.join("journal.bin");
    let size = std::fs::metadata(&journal).expect("journal").len();
    // Room for a few more entries (~300 bytes each) under the limit, in 512-byte blocks.
    let blocks = size / 512 + 3;
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" --exact child_appends_until_refused --nocapture --test-threads 1"
        ))
        .arg(&exe)
        .env(CHILD, &dir)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The harness prints "test NAME ... " before the child's first line, on the same line.
    let acked: Vec<u64> = stdout
        .lines()
        .filter_map(|l| l.rsplit_once("ack ")?.1.trim().parse().ok())
        .collect();
    let refused = stdout.lines().find(|l| l.contains("refused "));
    assert!(refused.is_some(), "the store never refused: {stdout}");
    assert!(!acked.is_empty(), "room for a few: {stdout}");
    let mut store = Store::open(&dir).expect("reopen");
    assert_eq!(store.recovered_bytes, 0, "no torn frame left behind");
    assert!(store.damage.is_empty());
    let seqs: Vec<u64> = store.entries().iter().map(|e| e.seq).collect();
    let mut expected: Vec<u64> = (1..=5).collect();
    expected.extend(&acked);
    assert_eq!(
        seqs, expected,
        "the five before and every acknowledged one, nothing else"
    );
    // Room again: appends go on.
    store.append(edit(999), "after").expect("append with room");
    drop(store);
    assert_eq!(
        Store::open(&dir).expect("reopen").entries().len(),
        expected.len() + 1
    );
    let _ = std::fs::remove_dir_all(&dir);
}
