//! The server: each connection's request is read and checked by the HTTP side (`http.rs`, hyper
//! on a small tokio runtime), then queued (bounded) for the one thread that owns the model,
//! which answers through a one-shot channel. That thread batches continuously: before
//! each decoding step it takes in what has arrived (up to `max_batch` answers running), runs each
//! newcomer's prompt, then advances every running answer by one token in one pass over the
//! decoder's weights, and answers each request as its answer ends. An answer does not depend on
//! what it was decoded beside (see `groundglass_model::decoding`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use groundglass_model::session::MAX_NEW_TOKENS;
use groundglass_model::{AskInput, Decoding, ModelSession};

use crate::error::ServeError;
use crate::http::{Reply, Shared, Sink};
use crate::protocol::*;

/// What the server accepts.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `host:port`; tests and single machines use loopback.
    pub listen: String,
    /// The bearer token clients must send; `None` serves anyone who can connect.
    pub token: Option<String>,
    /// Requests waiting for the model at most; more are answered 503.
    pub queue: usize,
    /// Answers decoded together at most (one pass over the weights a step for all of them).
    pub max_batch: usize,
    /// The SemSam neighbour counts whose tables are built before serving (requests for others
    /// are refused); empty: no SemSam.
    pub semsam_k: Vec<usize>,
    /// Request bodies up to this size (a 1,024 x 1,024 slice is about 5.6 MB of base64).
    pub max_body_bytes: usize,
    /// A request's head, and then its body, must arrive within this long (408 otherwise).
    pub read_timeout: std::time::Duration,
    /// Slices up to this many pixels.
    pub max_pixels: usize,
    /// Chat requests being read and checked at once at most (each may hold `max_body_bytes`);
    /// more are answered 503.
    pub max_readers: usize,
    /// The name answers carry in `model`.
    pub model_name: String,
    /// What `GET /groundglass/model` answers: the loaded checkpoint, as the panel shows it.
    pub summary: Option<groundglass_model::ModelSummary>,
    /// HTTPS with this certificate and key ([`crate::tls::server_config`]); `None`: plain HTTP.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

impl ServerConfig {
    pub fn new(listen: &str, model_name: &str) -> ServerConfig {
        ServerConfig {
            listen: listen.to_string(),
            token: None,
            queue: 16,
            max_batch: DEFAULT_MAX_BATCH,
            semsam_k: Vec::new(),
            max_body_bytes: 64 << 20,
            read_timeout: std::time::Duration::from_secs(60),
            max_pixels: 2048 * 2048,
            max_readers: 32,
            model_name: model_name.to_string(),
            summary: None,
            tls: None,
        }
    }
}

/// Eight answers a step: on a CPU the decoding GEMV still reads each weight once for up to 15 rows
/// (more go to the prefill's packed kernel), and each answer's KV cache costs memory (the 3B
/// model: about 110 MB for a 512-token answer in f32).
pub const DEFAULT_MAX_BATCH: usize = 8;

/// A checked request waiting for the model, with where its answer goes.
pub(crate) struct Job {
    pub reply: Sink,
    pub work: Work,
    pub max_tokens: usize,
    pub min_tokens: usize,
    pub queued: Instant,
}

/// A request as checked before it is queued.
pub(crate) struct Checked {
    pub work: Work,
    pub max_tokens: usize,
    pub min_tokens: usize,
    /// Answer as server-sent events.
    pub stream: bool,
}

/// What a request asks of the model.
pub(crate) enum Work {
    /// A Groundglass request: the slice's values, run through the model's own preprocessing.
    Slice(Box<SliceRequest>),
    /// A plain OpenAI request: the preprocessed picture and the prompt's text.
    Image {
        image: groundglass_model::preprocess::ModelImage,
        prompt: String,
        skip_special: bool,
        token_ids: bool,
    },
}

/// A running server; [`Server::stop`] (or dropping it) ends it.
pub struct Server {
    pub address: std::net::SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `config.listen` and serves `session` until stopped. The SemSam tables of
    /// `config.semsam_k` must be ready in `session` ([`ModelSession::prepare_semsam`]).
    pub fn start(session: ModelSession, mut config: ServerConfig) -> Result<Server, ServeError> {
        if let Some(k) = config.semsam_k.iter().find(|&&k| !session.semsam_ready(k)) {
            return Err(ServeError::Bind {
                address: config.listen.clone(),
                detail: format!("the SemSam table for k = {k} is not built"),
            });
        }
        config.summary = Some(session.summary());
        let bind_error = |detail: String| ServeError::Bind {
            address: config.listen.clone(),
            detail,
        };
        let listener =
            std::net::TcpListener::bind(&config.listen).map_err(|e| bind_error(e.to_string()))?;
        let address = listener
            .local_addr()
            .map_err(|e| bind_error(e.to_string()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| bind_error(e.to_string()))?;
        // Two threads: the connections mostly wait (for bodies, for the model).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("groundglass-http")
            .enable_all()
            .build()
            .map_err(|e| bind_error(format!("cannot start the HTTP runtime: {e}")))?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (queue, jobs) = sync_channel::<Job>(config.queue.max(1));
        let stats = Arc::new(Stats::default());
        let config = Arc::new(config);
        let model = {
            let config = config.clone();
            let stats = stats.clone();
            std::thread::spawn(move || run_model(session, jobs, &config, &stats))
        };
        let shared = Arc::new(Shared {
            queue,
            config,
            stats,
            reading: AtomicUsize::new(0),
        });
        let accept = std::thread::spawn(move || {
            runtime.block_on(crate::http::serve(listener, shared, stopped));
        });
        Ok(Server {
            address,
            stop,
            threads: vec![accept, model],
        })
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let _ = self.stop.send(true);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Serves until the process ends.
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The request, checked before it waits for the model; with its token limit and minimum.
pub(crate) fn check(body: &[u8], config: &ServerConfig) -> Result<Checked, String> {
    let chat: ChatRequest = serde_json::from_slice(body)
        .map_err(|e| format!("the request is not a chat request: {e}"))?;
    if chat.temperature.is_some_and(|t| t != 0.0) {
        return Err("only greedy decoding is served: temperature must be 0 or absent".into());
    }
    let max_tokens = chat
        .max_tokens
        .unwrap_or(MAX_NEW_TOKENS)
        .clamp(1, MAX_NEW_TOKENS);
    let min_tokens = chat.min_tokens.unwrap_or(0).min(max_tokens);
    let Some(ext) = chat.groundglass else {
        let stream = chat.stream.unwrap_or(false);
        return plain(&chat, config).map(|work| Checked {
            work,
            max_tokens,
            min_tokens,
            stream,
        });
    };
    ext.slice.to_slice(config.max_pixels)?;
    if let Some(semsam) = &ext.semsam {
        // The neighbour table holds k entries for every token of the vocabulary (257k for
        // RadGrounder's) and takes minutes to build there: only the tables built at start are
        // served, so that no request stalls the others (or takes the server's memory).
        if !config.semsam_k.contains(&semsam.k) {
            return Err(match config.semsam_k.as_slice() {
                [] => "this server does not decode with SemSam (serve --semsam-k K enables it)"
                    .to_string(),
                ks => format!(
                    "this server decodes SemSam with k in {ks:?} (serve --semsam-k); asked for {}",
                    semsam.k
                ),
            });
        }
        if semsam.top_m == 0 || !(semsam.top_p > 0.0 && semsam.top_p <= 1.0) {
            return Err(format!(
                "semsam wants top_m at least 1 and top_p in (0, 1]; got top_m {}, top_p {}",
                semsam.top_m, semsam.top_p
            ));
        }
    }
    if ext.request.task == groundglass_model::prompt::Task::Vqa
        && ext
            .request
            .question
            .as_deref()
            .map(str::trim)
            .unwrap_or("")
            .is_empty()
    {
        return Err("a vqa request needs a question".into());
    }
    Ok(Checked {
        work: Work::Slice(Box::new(ext)),
        max_tokens,
        min_tokens,
        stream: chat.stream.unwrap_or(false),
    })
}

/// A plain OpenAI request: the last user message's picture (`image_url`, a PNG data URL of the
/// preprocessed image) and its text, the prompt as the model's authors wrote it (vLLM puts the
/// image tokens and `<bos>` before it, and so does this server).
fn plain(chat: &ChatRequest, config: &ServerConfig) -> Result<Work, String> {
    let message = chat
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .ok_or("the request has no user message")?;
    let Content::Parts(parts) = &message.content else {
        return Err(
            "a plain request needs the picture as an image_url part (or the `groundglass` field \
             with the slice's values)"
                .into(),
        );
    };
    let (mut image, mut prompt) = (None, Vec::new());
    for part in parts {
        match part {
            Part::ImageUrl { image_url } if image.is_none() => image = Some(&image_url.url),
            Part::ImageUrl { .. } => return Err("one image a request is served".into()),
            Part::Text { text } => prompt.push(text.as_str()),
        }
    }
    let image = image.ok_or("the user message has no image_url part")?;
    let max_side = (config.max_pixels as f64).sqrt() as usize;
    Ok(Work::Image {
        image: image_from_data_url(image, max_side)?,
        prompt: prompt.join("\n"),
        skip_special: chat.skip_special_tokens.unwrap_or(true),
        token_ids: chat.return_token_ids.unwrap_or(false),
    })
}

/// What `GET /health` reports besides the model's name.
#[derive(Default)]
pub(crate) struct Stats {
    /// Requests answered.
    pub served: AtomicU64,
    /// The most answers one decoding step has advanced together.
    pub largest_batch: AtomicUsize,
    /// Answers dropped half-way because their client had gone.
    pub abandoned: AtomicU64,
    /// Answers being decoded now.
    pub decoding: AtomicUsize,
}

/// A request whose answer is being decoded.
struct Running {
    /// The answer's id and creation time (seconds), the same on each of a stream's events.
    id: String,
    created: u64,
    reply: Sink,
    /// The text streamed so far (streamed answers).
    sent: String,
    decoding: Decoding,
    /// How the answer is written.
    shape: Shape,
    max_tokens: usize,
    queue_ms: f64,
}

enum Shape {
    /// With the Groundglass extension (findings, masks).
    Slice,
    /// Plain OpenAI.
    Image { skip_special: bool, token_ids: bool },
}

fn run_model(mut session: ModelSession, jobs: Receiver<Job>, config: &ServerConfig, stats: &Stats) {
    let (mut served, mut admitted) = (0u64, 0u64);
    let mut running: Vec<Running> = Vec::new();
    let max_batch = config.max_batch.max(1);
    loop {
        // Wait only when nothing runs; otherwise take in what has arrived and go on decoding.
        if running.is_empty() {
            match jobs.recv() {
                Ok(job) => running.extend(start(&mut session, job, config, &mut admitted)),
                // Stopped, and everything answered.
                Err(_) => return,
            }
        }
        while running.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => running.extend(start(&mut session, job, config, &mut admitted)),
                Err(_) => break,
            }
        }
        // A client that went away (its connection dropped the answer's channel) is not decoded
        // for any further: its place in the batch is free.
        running.retain(|r| {
            let gone = r.reply.is_closed();
            if gone {
                stats.abandoned.fetch_add(1, Ordering::Relaxed);
            }
            !gone
        });
        stats.decoding.store(running.len(), Ordering::Relaxed);
        // What the last step made (and a newcomer's first token) goes out before the next.
        stream_progress(&session, &mut running, config);
        let mut decodings: Vec<&mut Decoding> =
            running.iter_mut().map(|r| &mut r.decoding).collect();
        let decoding_now = decodings.iter().filter(|d| !d.is_finished()).count();
        stats
            .largest_batch
            .fetch_max(decoding_now, Ordering::Relaxed);
        if let Err(e) = session.step_all(&mut decodings) {
            for r in running.drain(..) {
                r.reply.refuse(422, "model_error", &e.to_string());
            }
            continue;
        }
        let (done, still): (Vec<Running>, Vec<Running>) =
            running.into_iter().partition(|r| r.decoding.is_finished());
        running = still;
        stats.decoding.store(running.len(), Ordering::Relaxed);
        for r in done {
            served += 1;
            reply(&session, r, config);
            stats.served.store(served, Ordering::Relaxed);
        }
    }
}

/// Runs a request's prompt; `None` when it was answered already (with an error).
fn start(
    session: &mut ModelSession,
    job: Job,
    config: &ServerConfig,
    admitted: &mut u64,
) -> Option<Running> {
    *admitted += 1;
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let id = format!("chatcmpl-gg-{created}-{admitted}");
    let queue_ms = job.queued.elapsed().as_secs_f64() * 1e3;
    let (started, shape) = match &job.work {
        Work::Slice(request) => {
            // Checked before queueing; checked again rather than trusted.
            let slice = match request.slice.to_slice(config.max_pixels) {
                Ok(s) => s,
                Err(e) => {
                    job.reply.refuse(400, "invalid_request_error", &e);
                    return None;
                }
            };
            let input = AskInput {
                slice: &slice,
                modality: &request.modality,
                request: &request.request,
                semsam: request.semsam,
                max_new_tokens: job.max_tokens,
                visual_prompt: request.mark.as_ref(),
            };
            (session.start_ask(&input, job.min_tokens), Shape::Slice)
        }
        Work::Image {
            image,
            prompt,
            skip_special,
            token_ids,
        } => (
            session.start_image(image, prompt, job.max_tokens, job.min_tokens),
            Shape::Image {
                skip_special: *skip_special,
                token_ids: *token_ids,
            },
        ),
    };
    match started {
        Ok(decoding) => Some(Running {
            id,
            created,
            reply: job.reply,
            sent: String::new(),
            decoding,
            shape,
            max_tokens: job.max_tokens,
            queue_ms,
        }),
        // The picture's size is the request's fault, not the model's.
        Err(groundglass_model::ModelError::Input(e)) => {
            job.reply.refuse(400, "invalid_request_error", &e);
            None
        }
        Err(e) => {
            job.reply.refuse(422, "model_error", &e.to_string());
            None
        }
    }
}

/// Answers a request whose decoding has ended: the whole answer, or a stream's last event.
fn reply(session: &ModelSession, r: Running, config: &ServerConfig) {
    let (id, created) = (r.id, r.created);
    let finished = match r.shape {
        Shape::Slice => session.finish_ask(r.decoding).map(|answer| {
            let (text, tokens) = (answer.text.clone(), answer.tokens);
            let ext = AnswerExtension {
                answer,
                queue_ms: r.queue_ms,
            };
            (text, tokens, None, Some(ext))
        }),
        Shape::Image {
            skip_special,
            token_ids,
        } => session
            .finish_image(r.decoding, skip_special)
            .map(|answer| {
                let tokens = answer.token_ids.len();
                let ids = token_ids.then_some(answer.token_ids);
                (answer.text, tokens, ids, None)
            }),
    };
    let (text, tokens, token_ids, groundglass) = match finished {
        Ok(f) => f,
        Err(e) => return r.reply.refuse(422, "model_error", &e.to_string()),
    };
    let finish_reason = if tokens >= r.max_tokens {
        "length"
    } else {
        "stop"
    };
    match r.reply {
        Sink::Whole(whole) => {
            let body = ChatResponse {
                id,
                object: "chat.completion".into(),
                created,
                model: config.model_name.clone(),
                choices: vec![Choice {
                    index: 0,
                    message: AssistantMessage {
                        role: "assistant".into(),
                        content: text,
                    },
                    finish_reason: finish_reason.into(),
                    token_ids,
                }],
                usage: Usage {
                    completion_tokens: tokens,
                },
                groundglass,
            };
            let _ = whole.send(Reply::json(200, &body));
        }
        Sink::Stream(events) => {
            let rest = text.strip_prefix(r.sent.as_str()).unwrap_or("");
            let last = ChatChunk {
                id,
                object: "chat.completion.chunk".into(),
                created,
                model: config.model_name.clone(),
                choices: vec![ChunkChoice {
                    index: 0,
                    delta: Delta {
                        content: (!rest.is_empty()).then(|| rest.to_string()),
                    },
                    finish_reason: Some(finish_reason.into()),
                    token_ids,
                }],
                usage: Some(Usage {
                    completion_tokens: tokens,
                }),
                groundglass,
            };
            let _ = events.send(Ok(event(&last)));
            let _ = events.send(Ok(DONE_EVENT.to_vec()));
        }
    }
}

/// Sends each streamed answer the new part of its text (the tokens decoded whole, so that
/// pieces join as the tokenizer joins them; a part that would rewrite what was sent waits).
fn stream_progress(session: &ModelSession, running: &mut [Running], config: &ServerConfig) {
    for r in running.iter_mut().filter(|r| !r.decoding.is_finished()) {
        let Sink::Stream(events) = &r.reply else {
            continue;
        };
        let skip_special = match r.shape {
            Shape::Slice => true,
            Shape::Image { skip_special, .. } => skip_special,
        };
        let Ok(text) = session
            .tokenizer
            .decode_with(r.decoding.tokens(), skip_special)
        else {
            continue;
        };
        let Some(new) = text.strip_prefix(r.sent.as_str()).filter(|n| !n.is_empty()) else {
            continue;
        };
        let chunk = ChatChunk {
            id: r.id.clone(),
            object: "chat.completion.chunk".into(),
            created: r.created,
            model: config.model_name.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    content: Some(new.to_string()),
                },
                finish_reason: None,
                token_ids: None,
            }],
            usage: None,
            groundglass: None,
        };
        let _ = events.send(Ok(event(&chunk)));
        r.sent = text;
    }
}
