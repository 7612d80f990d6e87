use std::path::PathBuf;

/// What went wrong talking to a PACS, naming the server (as the user wrote it) and the request.
#[derive(Debug, thiserror::Error)]
pub enum PacsError {
    #[error("`{given}` is not a PACS address: {why} (expected http(s)://host:port/path-to-dicom-web or dicom://AET@host:port)")]
    BadAddress { given: String, why: String },
    #[error("{server}: could not connect: {detail}")]
    Connect { server: String, detail: String },
    #[error("{server}: no answer within {seconds} s ({what})")]
    Timeout {
        server: String,
        what: String,
        seconds: u64,
    },
    #[error("{server}: {what} was refused with HTTP {status}{hint}")]
    Status {
        server: String,
        what: String,
        status: u16,
        hint: &'static str,
    },
    #[error("{server}: {what}: the connection broke off before the answer ended ({detail})")]
    BrokeOff {
        server: String,
        what: String,
        detail: String,
    },
    #[error("{server}: {what}: the answer is malformed: {detail}")]
    Malformed {
        server: String,
        what: String,
        detail: String,
    },
    #[error("cannot listen on port {port} for the instances a C-MOVE sends (choose another with --store-port): {detail}")]
    Listen { port: u16, detail: String },
    #[error("{server}: association rejected or aborted: {detail}")]
    Association { server: String, detail: String },
    #[error("{server}: {what} failed with DIMSE status {status:04X}H")]
    DimseStatus {
        server: String,
        what: String,
        status: u16,
    },
    #[error("{server}: {what}: {detail}")]
    NotStored {
        server: String,
        what: String,
        detail: String,
    },
    #[error("{server}: {what} cancelled after {instances} instance(s)")]
    Cancelled {
        server: String,
        what: String,
        instances: usize,
    },
    #[error("{server} sends at most {sent} matches for a search (its own limit), and this page starts at match {offset}: narrow the search to see past them")]
    PastPeerLimit {
        server: String,
        sent: usize,
        offset: usize,
    },
    #[error("{server}: {what} not found")]
    NotFound { server: String, what: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl PacsError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PacsError::Io {
            path: path.into(),
            source,
        }
    }
}
