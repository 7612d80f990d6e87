//! `groundglass serve --model DIR --listen HOST:PORT [--token T | --token-file F]
//! [--tls-cert PEM --tls-key PEM] [--queue N] [--max-batch B] [--semsam-k K,...|none] [--dtype D]`:
//! the model for other machines (`ask --remote`, `batch --remote`, the viewer), over HTTP or
//! HTTPS in OpenAI's chat-completions shape with the Groundglass extension (engine/serve).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use groundglass_serve::{Server, ServerConfig};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A checkpoint folder (as `ask --model`).
    #[arg(long)]
    pub model: PathBuf,
    /// Where to listen, e.g. 127.0.0.1:8080 (or 0.0.0.0:8080 for the department's network).
    #[arg(long)]
    pub listen: String,
    /// The bearer token clients must send (visible in the process list: prefer --token-file).
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// A file holding the bearer token (its first line).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first); clients
    /// that do not trust its issuer by the public roots name it in GROUNDGLASS_REMOTE_CA.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM); keep it chmod 600.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Requests waiting for the model at most; more are answered 503.
    #[arg(long, default_value_t = 16)]
    pub queue: usize,
    /// Answers decoded together at most: each decoding step reads the weights once for all of
    /// them (memory: one KV cache each).
    #[arg(long, default_value_t = groundglass_serve::server::DEFAULT_MAX_BATCH)]
    pub max_batch: usize,
    /// Request bodies up to this many MB (a 512 x 512 slice takes about 1.4 MB).
    #[arg(long, default_value_t = 64)]
    pub max_body_mb: usize,
    /// Seconds a request's head, and then its body, may take to arrive (408 after).
    #[arg(long, default_value_t = 60)]
    pub read_timeout_s: u64,
    /// As `ask --dtype`.
    #[arg(long, default_value = "auto")]
    pub dtype: String,
    /// SemSam neighbour counts served (comma-separated; `none` for no SemSam). Each table is
    /// built before serving, or read from its cache beside the model (at RadGrounder's
    /// vocabulary a first build takes minutes).
    #[arg(long, default_value = "8")]
    pub semsam_k: String,
    #[arg(long, default_value = "auto")]
    pub soft_capping: String,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) if t.trim().is_empty() => bail!("the token is empty"),
        (Some(t), _) => Some(t.trim().to_string()),
        (None, Some(f)) => Some(super::token::from_file(f, "--token-file")?),
        (None, None) => None,
    };
    let semsam_k: Vec<usize> = match args.semsam_k.trim() {
        "none" | "" => Vec::new(),
        list => list
            .split(',')
            .map(|k| match k.trim().parse::<usize>() {
                Ok(k) if (1..=64).contains(&k) => Ok(k),
                _ => bail!("--semsam-k {k:?}: a neighbour count from 1 to 64, or none"),
            })
            .collect::<anyhow::Result<_>>()?,
    };
    // A certificate that will not do is said before the model loads.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            super::token::warn_if_others_can_read(key, "--tls-key");
            Some(groundglass_serve::tls::server_config(cert, key)?)
        }
        _ => None,
    };
    let mut session = super::ask::load_session(&args.model, &args.dtype, &args.soft_capping)?;
    for &k in &semsam_k {
        // A line each ten percent (the builder reports every block of 256 tokens).
        let shown = std::sync::atomic::AtomicU32::new(u32::MAX);
        let progress = |done: f32| {
            let tenth = (done * 10.0) as u32;
            if shown.swap(tenth, std::sync::atomic::Ordering::Relaxed) != tenth {
                eprintln!("SemSam table for k = {k}: {} %", tenth * 10);
            }
        };
        let control = groundglass_model::semsam::BuildControl {
            progress: &progress,
        };
        session
            .prepare_semsam(k, &control)
            .with_context(|| format!("building the SemSam table for k = {k}"))?;
    }
    let name = args
        .model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "groundglass".into());
    let mut config = ServerConfig::new(&args.listen, &name);
    config.token = token;
    config.queue = args.queue;
    if args.max_batch == 0 {
        bail!("--max-batch must be at least 1");
    }
    config.max_batch = args.max_batch;
    if args.read_timeout_s == 0 {
        bail!("--read-timeout-s must be at least 1");
    }
    config.read_timeout = std::time::Duration::from_secs(args.read_timeout_s);
    config.semsam_k = semsam_k;
    config.max_body_bytes = args.max_body_mb << 20;
    let scheme = if tls.is_some() { "https" } else { "http" };
    config.tls = tls;
    let server = Server::start(session, config)?;
    // Tests and scripts wait for this line.
    eprintln!(
        "serving {} on {scheme}://{}{}",
        args.model.display(),
        server.address,
        if args.token.is_some() || args.token_file.is_some() {
            " (bearer token required)"
        } else {
            ""
        }
    );
    server.wait();
    Ok(ExitCode::SUCCESS)
}
