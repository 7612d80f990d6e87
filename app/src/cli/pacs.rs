//! `groundglass pacs echo | search | retrieve`: the PACS from the command line.
//!
//! Credentials come from the environment, never from the command line (where `ps` shows them)
//! nor the settings file: `--user U` with `GROUNDGLASS_PACS_PASSWORD`, or `GROUNDGLASS_PACS_TOKEN`
//! for a bearer token.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use groundglass_pacs::{Credentials, DateRange, Server, StudyQuery};

#[derive(Args, Debug)]
pub struct PacsArgs {
    #[command(subcommand)]
    pub what: PacsWhat,
}

#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// `http(s)://host:port/path-to-dicom-web` or `dicom://AET@host:port`.
    #[arg(long)]
    pub server: String,
    /// Our AE title, for DIMSE peers.
    #[arg(long, default_value = "GROUNDGLASS")]
    pub calling_ae: String,
    /// DICOMweb basic authentication: the user (the password comes from
    /// GROUNDGLASS_PACS_PASSWORD).
    #[arg(long)]
    pub user: Option<String>,
}

/// The keys of a study search (`pacs search`, `batch --pacs`).
#[derive(Args, Debug, Clone)]
pub struct QueryArgs {
    /// DICOM wildcards allowed: `DOE^*`.
    #[arg(long)]
    pub patient_name: Option<String>,
    #[arg(long)]
    pub patient_id: Option<String>,
    #[arg(long)]
    pub modality: Option<String>,
    /// YYYYMMDD-YYYYMMDD (either end may be left open) or one day.
    #[arg(long)]
    pub date: Option<String>,
    #[arg(long)]
    pub accession: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Studies per page.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
}

impl QueryArgs {
    pub fn query(&self) -> anyhow::Result<StudyQuery> {
        let date = self
            .date
            .as_deref()
            .map(|d| DateRange::parse(d).map_err(|e| anyhow::anyhow!("--date: {e}")))
            .transpose()?;
        Ok(StudyQuery {
            patient_name: self.patient_name.clone(),
            patient_id: self.patient_id.clone(),
            modality: self.modality.clone(),
            date,
            accession: self.accession.clone(),
            description: self.description.clone(),
            limit: self.limit,
            offset: self.offset,
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum PacsWhat {
    /// Check that a server answers (C-ECHO, or a one-study QIDO search).
    Echo {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Search studies; prints each with its series.
    Search {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        query: QueryArgs,
        #[arg(long)]
        json: bool,
    },
    /// Send DICOM files to the server (DICOMweb: STOW-RS; DIMSE: C-STORE), e.g. an exported SEG
    /// or SR.
    Send {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Retrieve a study or one series into a folder (DICOMweb: WADO-RS; DIMSE: C-GET), which
    /// `info`, `slice`, `ask` and the viewer open like any other.
    Retrieve {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long)]
        study: String,
        #[arg(long)]
        series: Option<String>,
        #[arg(long)]
        out: PathBuf,
        /// Retrieve from a DIMSE peer with C-MOVE, our storage SCP listening on this port (the
        /// PACS must know our --calling-ae at this host and port; 11112 is usual); without it,
        /// C-GET.
        #[arg(long)]
        store_port: Option<u16>,
    },
}

/// Sends files (STOW-RS or C-STORE); prints what was stored. Shared with `export --send`.
pub fn send(server: &Server, files: &[PathBuf]) -> anyhow::Result<()> {
    let stored = groundglass_pacs::store(server, files).map_err(|e| credentials_hint(e.into()))?;
    eprintln!("{} instance(s) stored on {}", stored.stored, server.name());
    Ok(())
}

pub fn server(args: &ServerArgs) -> anyhow::Result<Server> {
    let mut server = Server::parse(&args.server, &args.calling_ae)?;
    if let Server::Web(web) = &mut server {
        web.credentials = match (&args.user, std::env::var("GROUNDGLASS_PACS_TOKEN")) {
            (Some(user), _) => Credentials::Basic {
                user: user.clone(),
                password: std::env::var("GROUNDGLASS_PACS_PASSWORD").with_context(|| {
                    format!("--user {user}: set GROUNDGLASS_PACS_PASSWORD to the password")
                })?,
            },
            (None, Ok(token)) if !token.is_empty() => Credentials::Bearer(token),
            _ => Credentials::None,
        };
    } else if args.user.is_some() {
        anyhow::bail!("--user is for DICOMweb servers; a DIMSE peer knows us by --calling-ae");
    }
    Ok(server)
}

/// `--store-port`: C-MOVE to our storage SCP on that port (DIMSE peers only).
pub fn set_store_port(server: &mut Server, store_port: Option<u16>) -> anyhow::Result<()> {
    match (server, store_port) {
        (Server::Dimse(peer), Some(port)) => peer.store_port = Some(port),
        (Server::Web(_), Some(_)) => {
            anyhow::bail!("--store-port is for C-MOVE from a DIMSE peer (dicom://...)")
        }
        (_, None) => {}
    }
    Ok(())
}

/// A refusal for want of credentials, with how to give them here.
pub fn credentials_hint(e: anyhow::Error) -> anyhow::Error {
    let refused = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<groundglass_pacs::PacsError>(),
            Some(groundglass_pacs::PacsError::Status { status: 401, .. })
        )
    });
    if refused {
        anyhow::anyhow!(
            "{e:#}; give them with --user and GROUNDGLASS_PACS_PASSWORD, or GROUNDGLASS_PACS_TOKEN"
        )
    } else {
        e
    }
}

pub fn run(args: PacsArgs) -> anyhow::Result<ExitCode> {
    run_what(args).map_err(credentials_hint)
}

fn run_what(args: PacsArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        PacsWhat::Echo { server: s } => {
            let server = server(&s)?;
            groundglass_pacs::echo(&server)?;
            println!("{} answers", server.name());
        }
        PacsWhat::Search {
            server: s,
            query,
            json,
        } => {
            let server = server(&s)?;
            let query = query.query()?;
            let studies = groundglass_pacs::search(&server, &query)?;
            if json {
                println!("{}", serde_json::json!({ "studies": studies }));
            } else if studies.is_empty() {
                println!("no study on {} matches", server.name());
            } else {
                for st in &studies {
                    println!(
                        "{}  {}  {}  {}  {}  {}",
                        st.date,
                        st.patient_name,
                        st.patient_id,
                        st.modalities.join("/"),
                        st.description,
                        st.study_uid
                    );
                    for se in &st.series {
                        println!(
                            "    {:>4}  {:<4} {:>5} images  {}  {}",
                            se.number.map(|n| n.to_string()).unwrap_or_default(),
                            se.modality,
                            se.instances.map(|n| n.to_string()).unwrap_or("?".into()),
                            se.description,
                            se.series_uid
                        );
                    }
                }
            }
        }
        PacsWhat::Send { server: s, files } => send(&server(&s)?, &files)?,
        PacsWhat::Retrieve {
            server: s,
            study,
            series,
            out,
            store_port,
        } => {
            let mut server = server(&s)?;
            set_store_port(&mut server, store_port)?;
            let t = std::time::Instant::now();
            let mut first = None;
            let progress = |n: usize| {
                first.get_or_insert(t.elapsed());
                if n.is_multiple_of(50) {
                    eprintln!("{n} instances");
                }
                std::ops::ControlFlow::Continue(())
            };
            let done =
                groundglass_pacs::retrieve(&server, &study, series.as_deref(), &out, progress)?;
            println!(
                "{} instances ({:.1} MB) into {} in {:.2} s (first after {:.2} s)",
                done.instances,
                done.bytes as f64 / 1e6,
                out.display(),
                t.elapsed().as_secs_f64(),
                first.unwrap_or_default().as_secs_f64()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
