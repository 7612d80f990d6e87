//! PACS access for Groundglass: find studies and bring them into a local folder, over the two
//! ways PACS speak.
//! - DICOMweb ([`web`]): QIDO-RS searches, WADO-RS retrieval (multipart, each instance written as
//!   it arrives), on a blocking HTTP client run off the UI thread.
//! - DIMSE ([`dimse`]): C-ECHO and C-FIND through dicom-rs's `dicom-ul` associations.
//!
//! One address form names a server ([`Server::parse`]): `http(s)://host:port/path-to-dicom-web`
//! or `dicom://AET@host:port`. Every failure names the server and what went wrong
//! ([`PacsError`]); nothing here panics on a server's answer.

pub mod cget;
pub mod dicom_json;
pub mod dimse;
mod error;
pub mod multipart;
pub mod retrieve;
mod server;
mod study;
pub mod web;

pub use error::PacsError;
pub use server::{Credentials, Server};
pub use study::{DateRange, SeriesInfo, StudyInfo, StudyQuery};

/// Echo a server: C-ECHO for DIMSE, a one-study QIDO search for DICOMweb.
pub fn echo(server: &Server) -> Result<(), PacsError> {
    match server {
        Server::Web(web) => web::Client::new(web.clone()).echo(),
        Server::Dimse(peer) => dimse::echo(peer),
    }
}

/// Studies matching `query`, each with its series.
pub fn search(server: &Server, query: &StudyQuery) -> Result<Vec<StudyInfo>, PacsError> {
    match server {
        Server::Web(web) => web::Client::new(web.clone()).search(query),
        Server::Dimse(peer) => dimse::search(peer, query),
    }
}
