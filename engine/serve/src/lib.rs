//! The model over HTTP, for a reading room that shares one GPU: `groundglass serve` runs
//! [`server::Server`] on the GPU machine, viewers and `ask --remote` use [`client::Remote`]. The
//! wire format ([`protocol`]) is OpenAI's chat completions with a `groundglass` field for what
//! stock servers lack: the slice's modality values in, findings and masks out.

pub mod client;
pub mod error;
mod http;
pub mod protocol;
pub mod server;
pub mod tls;

pub use client::{Remote, RemoteAnswer, RemoteApi};
pub use error::{RemoteError, ServeError};
pub use server::{Server, ServerConfig};
