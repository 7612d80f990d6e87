use thiserror::Error;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot listen on {address}: {detail}")]
    Bind { address: String, detail: String },
    #[error("TLS: {file}: {detail}")]
    Tls { file: String, detail: String },
}

/// What asking a remote server can go wrong with; each names the server.
#[derive(Debug, Error)]
pub enum RemoteError {
    #[error("{url}: could not connect: {detail}")]
    Connect { url: String, detail: String },
    #[error("{url}: the server closed the connection before it answered (it may have stopped or crashed; ask again when it is back): {detail}")]
    Dropped { url: String, detail: String },
    #[error("{url}: the server refused the request with HTTP {status}: {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url}: no secure connection: {detail} (a server whose certificate the hospital's own authority issued is trusted when that authority's PEM file is named in GROUNDGLASS_REMOTE_CA)")]
    Tls { url: String, detail: String },
    #[error("{url}: the answer is not a Groundglass answer: {detail}")]
    BadAnswer { url: String, detail: String },
    /// Asked of a server that cannot do it (an OpenAI-compatible one has no masks, no SemSam).
    #[error("{url}: {what} is not available from an OpenAI-compatible server (only text and boxes are); use a Groundglass server or the local model")]
    Unavailable { url: String, what: String },
}
