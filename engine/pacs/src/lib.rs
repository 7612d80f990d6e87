//! PACS access for Groundglass: find studies and bring them into a local folder, over the two
//! ways PACS speak.
//! - DICOMweb ([`web`]): QIDO-RS searches, WADO-RS retrieval (multipart, each instance written as
//!   it arrives), on a blocking HTTP client run off the UI thread.
//! - DIMSE ([`dimse`], [`cget`], [`cmove`], [`cstore`]): C-ECHO, C-FIND, C-GET, C-MOVE and C-STORE through
//!   dicom-rs's `dicom-ul` associations.
//! - [`cache`]: retrieved series kept in a size-bounded folder, least recently used out first.
//!
//! One address form names a server ([`Server::parse`]): `http(s)://host:port/path-to-dicom-web`
//! or `dicom://AET@host:port`. Every failure names the server and what went wrong
//! ([`PacsError`]); nothing here panics on a server's answer.

pub mod cache;
pub mod cget;
pub mod cmove;
pub mod cstore;
pub mod dicom_json;
pub mod dimse;
mod error;
pub mod multipart;
pub mod retrieve;
mod scp;
mod server;
mod study;
pub mod timeouts;
pub mod web;

use std::ops::ControlFlow;
use std::path::Path;

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

/// One page of a study search.
#[derive(Clone, Debug)]
pub struct SearchPage {
    pub studies: Vec<StudyInfo>,
    /// There are matches past this page.
    pub more: bool,
    /// The server sends no more than this many matches for a search (its own limit, as
    /// Orthanc's `LimitFindResults`), and this page reached it: the matches past it cannot be
    /// paged to, only found by a narrower search.
    pub server_limit: Option<usize>,
}

/// A page of the studies matching `query` (`query.limit` from `query.offset`), and whether there
/// are more: QIDO-RS's `limit` and `offset`; over DIMSE, the start of a C-FIND cancelled once the
/// page and one more have come ([`dimse::search_page`]).
pub fn search_page(server: &Server, query: &StudyQuery) -> Result<SearchPage, PacsError> {
    match server {
        Server::Web(_) => {
            let studies = search(server, query)?;
            Ok(SearchPage {
                more: studies.len() >= query.limit.max(1),
                studies,
                server_limit: None,
            })
        }
        Server::Dimse(peer) => {
            let page = dimse::search_page(peer, query)?;
            Ok(SearchPage {
                server_limit: (page.ended == dimse::FindEnd::CutByPeer)
                    .then_some(page.matches_read),
                more: page.more,
                studies: page.studies,
            })
        }
    }
}

/// Retrieves a study, or one of its series, into `dir`: WADO-RS from a DICOMweb server, C-GET
/// from a DIMSE peer (the instances come back on the same association), or C-MOVE to our
/// storage SCP when the peer has a `store_port`. `progress` is told the
/// count written so far and may stop the transfer.
pub fn retrieve(
    server: &Server,
    study_uid: &str,
    series_uid: Option<&str>,
    dir: &Path,
    progress: impl FnMut(usize) -> ControlFlow<()>,
) -> Result<retrieve::Retrieved, PacsError> {
    match server {
        Server::Web(web) => {
            web::Client::new(web.clone()).retrieve(study_uid, series_uid, dir, progress)
        }
        Server::Dimse(peer) => match peer.store_port {
            Some(port) => cmove::retrieve(peer, study_uid, series_uid, dir, port, progress),
            None => cget::retrieve(peer, study_uid, series_uid, dir, progress),
        },
    }
}

/// The SOP instance UIDs of a series, in instance-number order: QIDO-RS, or C-FIND at IMAGE
/// level.
pub fn instances(
    server: &Server,
    study_uid: &str,
    series_uid: &str,
) -> Result<Vec<String>, PacsError> {
    match server {
        Server::Web(web) => web::Client::new(web.clone()).instances(study_uid, series_uid),
        Server::Dimse(peer) => dimse::instances(peer, study_uid, series_uid),
    }
}

/// Retrieves one instance (a series' preview) into `dir`: WADO-RS, or C-GET from every DIMSE
/// peer, those that retrieve series by C-MOVE too: a preview must not take the storage port a
/// series being opened may need at that moment. A peer without C-GET gives no preview.
pub fn retrieve_instance(
    server: &Server,
    study_uid: &str,
    series_uid: &str,
    instance_uid: &str,
    dir: &Path,
) -> Result<retrieve::Retrieved, PacsError> {
    match server {
        Server::Web(web) => web::Client::new(web.clone()).retrieve_instance(
            study_uid,
            series_uid,
            instance_uid,
            dir,
        ),
        Server::Dimse(peer) => {
            cget::retrieve_instance(peer, study_uid, series_uid, instance_uid, dir)
        }
    }
}

/// Sends DICOM files (a SEG, an SR) to a server: STOW-RS to a DICOMweb server, C-STORE to a
/// DIMSE peer. Every instance must be stored, else it is an error naming what was refused.
pub fn store(server: &Server, files: &[std::path::PathBuf]) -> Result<web::Stored, PacsError> {
    match server {
        Server::Web(web) => web::Client::new(web.clone()).store(files),
        Server::Dimse(peer) => cstore::store(peer, files),
    }
}
