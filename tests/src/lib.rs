//! Support for tests across the workspace; the cross-crate tests themselves live in `tests/`.
//! - [`orthanc`]: a real Orthanc, started by a test on loopback inside a private network
//!   namespace, for the PACS client's and the viewer's PACS tests.

pub mod orthanc;
