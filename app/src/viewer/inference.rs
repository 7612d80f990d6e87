//! The model runs on its own thread: loading a checkpoint and answering take seconds to minutes,
//! and the viewer must stay fluid. The UI sends commands and polls a channel each frame; tokens
//! arrive as they are generated; a shared flag cancels the running answer between two tokens.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use eframe::egui;
use groundglass_model::prompt::Request;
use groundglass_model::semsam::SemSamConfig;
use groundglass_model::session::MAX_NEW_TOKENS;
use groundglass_model::{
    best_device, default_precision, Answer, AskInput, ModelSession, ModelSummary, Precision,
};
use groundglass_study::SliceImage;

/// One question about one slice.
pub struct AskJob {
    pub id: u64,
    pub slice: SliceImage,
    pub modality: String,
    pub request: Request,
    pub semsam: Option<SemSamConfig>,
    pub visual_prompt: Option<groundglass_model::visual_prompt::VisualPrompt>,
}

enum Command {
    /// `precision` None: the checkpoint's default on the device.
    Load {
        dir: PathBuf,
        precision: Option<Precision>,
    },
    /// A Groundglass server (`groundglass serve`) instead of a local checkpoint.
    Connect {
        url: String,
        token: Option<String>,
        api: groundglass_serve::RemoteApi,
    },
    Ask(Box<AskJob>, Arc<AtomicBool>),
    /// Build MIS-SemSam's neighbour table (minutes at a 257k vocabulary), reporting progress.
    PrepareSemSam {
        k: usize,
    },
}

pub enum ModelMessage {
    Loaded(Box<ModelSummary>),
    /// Connected to a server; the summary is its checkpoint's.
    Connected {
        url: String,
        summary: Box<ModelSummary>,
    },
    /// Where answer `id` was made and how long the round trip took (a remote answer; comes
    /// before its `Done`).
    AnsweredBy {
        id: u64,
        url: String,
        round_trip_ms: f64,
    },
    LoadFailed {
        dir: PathBuf,
        error: String,
    },
    /// The answer so far.
    Token {
        id: u64,
        text: String,
    },
    Done {
        id: u64,
        answer: Box<Answer>,
    },
    Failed {
        id: u64,
        error: String,
    },
    /// The neighbour table build: the fraction done, then ready (or failed).
    SemSamProgress(f32),
    SemSamReady,
    SemSamFailed(String),
}

pub struct ModelWorker {
    tx: Sender<Command>,
    pub rx: Receiver<ModelMessage>,
}

impl ModelWorker {
    pub fn spawn(ctx: egui::Context) -> Self {
        let (tx, commands) = channel::<Command>();
        let (out, rx) = channel();
        std::thread::Builder::new()
            .name("groundglass model".into())
            .spawn(move || {
                let mut session: Option<ModelSession> = None;
                let mut remote: Option<groundglass_serve::Remote> = None;
                let send = |m: ModelMessage| {
                    let _ = out.send(m);
                    ctx.request_repaint();
                };
                while let Ok(command) = commands.recv() {
                    match command {
                        Command::Connect { url, token, api } => {
                            session = None;
                            remote = None;
                            let r = match &api {
                                groundglass_serve::RemoteApi::Groundglass => {
                                    groundglass_serve::Remote::new(&url, token)
                                }
                                groundglass_serve::RemoteApi::OpenAi { model, image_size } => {
                                    groundglass_serve::Remote::openai(
                                        &url,
                                        token,
                                        model,
                                        *image_size,
                                    )
                                }
                            };
                            match r
                                .trusting_environment_ca()
                                .map_err(|e| e.to_string())
                                .and_then(|r| {
                                    let summary = r.describe().map_err(|e| e.to_string())?;
                                    Ok((r, summary))
                                }) {
                                Ok((r, summary)) => {
                                    send(ModelMessage::Connected {
                                        url,
                                        summary: Box::new(summary),
                                    });
                                    remote = Some(r);
                                }
                                Err(error) => send(ModelMessage::LoadFailed {
                                    dir: PathBuf::from(&url),
                                    error,
                                }),
                            }
                        }
                        Command::Load { dir, precision } => {
                            session = None;
                            remote = None;
                            let device = best_device();
                            let precision =
                                precision.unwrap_or_else(|| default_precision(&dir, &device));
                            match ModelSession::load(&dir, precision, &device) {
                                Ok(s) => {
                                    send(ModelMessage::Loaded(Box::new(s.summary())));
                                    session = Some(s);
                                }
                                Err(e) => send(ModelMessage::LoadFailed {
                                    error: format!("{}: {e}", dir.display()),
                                    dir,
                                }),
                            }
                        }
                        Command::PrepareSemSam { k } if remote.is_some() => {
                            let Some(r) = remote.as_ref() else { continue };
                            // The server builds its tables at start (serve --semsam-k).
                            send(match r.describe() {
                                Ok(s) if s.semsam_tables.contains(&k) => ModelMessage::SemSamReady,
                                Ok(s) => ModelMessage::SemSamFailed(format!(
                                    "{} decodes MIS-SemSam with k in {:?}, not {k}; answers are greedy",
                                    r.base, s.semsam_tables
                                )),
                                Err(e) => ModelMessage::SemSamFailed(e.to_string()),
                            });
                        }
                        Command::PrepareSemSam { k } => {
                            let Some(s) = session.as_mut() else { continue };
                            if s.semsam_ready(k) {
                                send(ModelMessage::SemSamReady);
                                continue;
                            }
                            // At most one progress message per percent.
                            let last = std::sync::atomic::AtomicU32::new(u32::MAX);
                            let progress = |f: f32| {
                                let pct = (f * 100.0) as u32;
                                if last.swap(pct, Ordering::Relaxed) != pct {
                                    send(ModelMessage::SemSamProgress(f));
                                }
                            };
                            let control = groundglass_model::semsam::BuildControl {
                                progress: &progress,
                            };
                            send(match s.prepare_semsam(k, &control) {
                                Ok(()) => ModelMessage::SemSamReady,
                                Err(e) => ModelMessage::SemSamFailed(e.to_string()),
                            });
                        }
                        Command::Ask(job, cancel) if remote.is_some() => {
                            let Some(r) = remote.as_ref() else { continue };
                            let input = AskInput {
                                slice: &job.slice,
                                modality: &job.modality,
                                request: &job.request,
                                semsam: job.semsam,
                                max_new_tokens: MAX_NEW_TOKENS,
                                visual_prompt: job.visual_prompt.as_ref(),
                            };
                            // Streamed: the text grows as it is decoded, and a cancel closes the
                            // connection, which stops the server's decoding of it.
                            let id = job.id;
                            let streamed = r.ask_streaming(&input, |text| {
                                send(ModelMessage::Token {
                                    id,
                                    text: text.to_string(),
                                });
                                !cancel.load(Ordering::Relaxed)
                            });
                            match streamed {
                                Ok(got) => {
                                    send(ModelMessage::AnsweredBy {
                                        id,
                                        url: r.base.clone(),
                                        round_trip_ms: got.round_trip_ms,
                                    });
                                    let mut answer = got.answer;
                                    answer.cancelled |= cancel.load(Ordering::Relaxed);
                                    send(ModelMessage::Done {
                                        id,
                                        answer: Box::new(answer),
                                    });
                                }
                                Err(e) => send(ModelMessage::Failed {
                                    id,
                                    error: e.to_string(),
                                }),
                            }
                        }
                        Command::Ask(job, cancel) => {
                            let Some(s) = session.as_mut() else {
                                send(ModelMessage::Failed {
                                    id: job.id,
                                    error: "no model is loaded".into(),
                                });
                                continue;
                            };
                            let input = AskInput {
                                slice: &job.slice,
                                modality: &job.modality,
                                request: &job.request,
                                semsam: job.semsam,
                                max_new_tokens: MAX_NEW_TOKENS,
                                visual_prompt: job.visual_prompt.as_ref(),
                            };
                            let id = job.id;
                            if cancel.load(Ordering::Relaxed) {
                                // Cancelled before it started: an empty, cancelled answer.
                                send(ModelMessage::Done {
                                    id,
                                    answer: Box::new(groundglass_model::Answer {
                                        cancelled: true,
                                        ..Default::default()
                                    }),
                                });
                                continue;
                            }
                            let result = s.ask(&input, |text| {
                                send(ModelMessage::Token {
                                    id,
                                    text: text.to_string(),
                                });
                                !cancel.load(Ordering::Relaxed)
                            });
                            send(match result {
                                Ok(answer) => ModelMessage::Done {
                                    id,
                                    answer: Box::new(answer),
                                },
                                Err(e) => ModelMessage::Failed {
                                    id,
                                    error: e.to_string(),
                                },
                            });
                        }
                    }
                }
            })
            .expect("spawning the model thread");
        ModelWorker { tx, rx }
    }

    pub fn load(&self, dir: PathBuf, precision: Option<Precision>) {
        let _ = self.tx.send(Command::Load { dir, precision });
    }

    /// Uses a model server from now on (until the next `load`).
    pub fn connect(&self, url: String, token: Option<String>, api: groundglass_serve::RemoteApi) {
        let _ = self.tx.send(Command::Connect { url, token, api });
    }

    /// Queues the build of MIS-SemSam's neighbour table for `k` neighbours.
    pub fn prepare_semsam(&self, k: usize) {
        let _ = self.tx.send(Command::PrepareSemSam { k });
    }

    /// Queues a question; the returned flag cancels it.
    pub fn ask(&self, job: AskJob) -> Arc<AtomicBool> {
        let cancel = Arc::new(AtomicBool::new(false));
        let _ = self.tx.send(Command::Ask(Box::new(job), cancel.clone()));
        cancel
    }
}
