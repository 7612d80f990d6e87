//! Paths shared by the cross-crate tests. Test data lives beside the repository, at
//! `../shared/testdata` from its root.
#![allow(dead_code)]

use std::path::PathBuf;

use groundglass_study::{open, NoProgress, Series, Volume};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A path given relative to the repository root (fixtures write `../shared/testdata/...`).
pub fn from_root(rel: &str) -> PathBuf {
    repo_root().join(rel)
}

pub fn testdata(rel: &str) -> PathBuf {
    repo_root().join("../shared/testdata").join(rel)
}

pub fn fixture(rel: &str) -> serde_json::Value {
    let path = repo_root().join("tests/fixtures").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Opens a path that must hold exactly one series, and loads it.
pub fn only_series(path: &std::path::Path) -> (Series, Volume) {
    let study = open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        study.series.len(),
        1,
        "{}: {:?}",
        path.display(),
        study.series.iter().map(|s| &s.uid).collect::<Vec<_>>()
    );
    let series = study.series.into_iter().next().expect("one series");
    let volume = series
        .load(0, &NoProgress)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (series, volume)
}

pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

pub fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}
