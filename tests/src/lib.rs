//! Support for tests across the workspace; the cross-crate tests themselves live in `tests/`.
//! - [`netns`]: a test re-run inside a private network namespace, for tests that run servers.
//! - [`serving`]: a server process started by a test, awaited, and killed when dropped.
//! - [`orthanc`]: a real Orthanc, started by a test on loopback inside a private network
//!   namespace, for the PACS client's and the viewer's PACS tests.

pub mod netns;
pub mod orthanc;
pub mod serving;
