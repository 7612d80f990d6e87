//! The server: each connection's request is read and checked on a short-lived thread, then queued
//! (bounded) for the one thread that owns the model. That thread batches continuously: before
//! each decoding step it takes in what has arrived (up to `max_batch` answers running), runs each
//! newcomer's prompt, then advances every running answer by one token in one pass over the
//! decoder's weights, and answers each request as its answer ends. An answer does not depend on
//! what it was decoded beside (see `groundglass_model::decoding`).

use std::io::Read as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use groundglass_model::session::MAX_NEW_TOKENS;
use groundglass_model::{AskInput, Decoding, ModelSession};
use tiny_http::{Header, Method, Response, StatusCode};

use crate::error::ServeError;
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
    /// Request bodies up to this size (a 1,024 x 1,024 slice is about 5.6 MB of base64).
    pub max_body_bytes: usize,
    /// Slices up to this many pixels.
    pub max_pixels: usize,
    /// Connections being read at once at most; more are answered 503.
    pub max_readers: usize,
    /// The name answers carry in `model`.
    pub model_name: String,
    /// What `GET /groundglass/model` answers: the loaded checkpoint, as the panel shows it.
    pub summary: Option<groundglass_model::ModelSummary>,
}

impl ServerConfig {
    pub fn new(listen: &str, model_name: &str) -> ServerConfig {
        ServerConfig {
            listen: listen.to_string(),
            token: None,
            queue: 16,
            max_batch: DEFAULT_MAX_BATCH,
            max_body_bytes: 64 << 20,
            max_pixels: 2048 * 2048,
            max_readers: 32,
            model_name: model_name.to_string(),
            summary: None,
        }
    }
}

/// Eight answers a step: on a CPU the decoding GEMV still reads each weight once for up to 15 rows
/// (more go to the prefill's packed kernel), and each answer's KV cache costs memory (the 3B
/// model: about 110 MB for a 512-token answer in f32).
pub const DEFAULT_MAX_BATCH: usize = 8;

/// The most neighbours a SemSam request may ask for (the paper's rule needs a handful).
pub const MAX_SEMSAM_K: usize = 64;

struct Job {
    http: tiny_http::Request,
    work: Work,
    max_tokens: usize,
    min_tokens: usize,
    queued: Instant,
}

/// What a request asks of the model.
enum Work {
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
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `config.listen` and serves `session` until stopped.
    pub fn start(session: ModelSession, mut config: ServerConfig) -> Result<Server, ServeError> {
        config.summary = Some(session.summary());
        let http = tiny_http::Server::http(&config.listen).map_err(|e| ServeError::Bind {
            address: config.listen.clone(),
            detail: e.to_string(),
        })?;
        let address = http.server_addr().to_ip().ok_or_else(|| ServeError::Bind {
            address: config.listen.clone(),
            detail: "not an IP address".into(),
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let (queue, jobs) = sync_channel::<Job>(config.queue.max(1));
        let stats = Arc::new(Stats::default());
        let config = Arc::new(config);
        let model = {
            let config = config.clone();
            let stats = stats.clone();
            std::thread::spawn(move || run_model(session, jobs, &config, &stats))
        };
        let accept = {
            let stop = stop.clone();
            std::thread::spawn(move || accept(http, queue, config, stats, &stop))
        };
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
        self.stop.store(true, Ordering::Relaxed);
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

fn accept(
    http: tiny_http::Server,
    queue: SyncSender<Job>,
    config: Arc<ServerConfig>,
    stats: Arc<Stats>,
    stop: &AtomicBool,
) {
    let readers = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        let request = match http.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("groundglass serve: no longer accepting connections: {e}");
                break;
            }
        };
        if readers.fetch_add(1, Ordering::SeqCst) >= config.max_readers {
            readers.fetch_sub(1, Ordering::SeqCst);
            respond_error(
                request,
                503,
                "server_busy",
                "too many connections; try again",
            );
            continue;
        }
        let (queue, config, readers) = (queue.clone(), config.clone(), readers.clone());
        let stats = stats.clone();
        std::thread::spawn(move || {
            handle(request, &queue, &config, &stats);
            readers.fetch_sub(1, Ordering::SeqCst);
        });
    }
    // Dropping the queue's sender ends the model thread once the queue is empty.
}

fn handle(
    mut request: tiny_http::Request,
    queue: &SyncSender<Job>,
    config: &ServerConfig,
    stats: &Stats,
) {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    // Everything but the health check wants the token.
    if let (Some(want), false) = (&config.token, path == HEALTH_PATH) {
        let given = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.as_str().to_string());
        if given.as_deref() != Some(format!("Bearer {want}").as_str()) {
            return respond_error(
                request,
                401,
                "authentication_error",
                "a bearer token is required (Authorization: Bearer ...), or the one given is wrong",
            );
        }
    }
    match (request.method(), path.as_str()) {
        (Method::Get, MODEL_PATH) => match &config.summary {
            Some(summary) => respond_json(request, 200, summary),
            None => respond_error(request, 503, "server_error", "no model is loaded"),
        },
        (Method::Get, MODELS_PATH) => {
            let body = serde_json::json!({"object": "list", "data": [
                {"id": config.model_name, "object": "model", "owned_by": "groundglass"}]});
            respond_json(request, 200, &body);
        }
        (Method::Get, HEALTH_PATH) => {
            let body = serde_json::json!({"status": "ok", "model": config.model_name,
                "served": stats.served.load(Ordering::Relaxed),
                "largest_batch": stats.largest_batch.load(Ordering::Relaxed)});
            respond_json(request, 200, &body);
        }
        (Method::Post, CHAT_PATH) => {
            let too_large = |request| {
                respond_error(
                    request,
                    413,
                    "invalid_request_error",
                    &format!(
                        "the request is larger than this server takes ({} bytes)",
                        config.max_body_bytes
                    ),
                )
            };
            // Refused from its declared length before reading, and bounded while reading (a
            // chunked body declares none).
            if request
                .body_length()
                .is_some_and(|n| n > config.max_body_bytes)
            {
                return too_large(request);
            }
            let mut body = Vec::new();
            let read = request
                .as_reader()
                .take(config.max_body_bytes as u64 + 1)
                .read_to_end(&mut body);
            if let Err(e) = read {
                return respond_error(
                    request,
                    400,
                    "invalid_request_error",
                    &format!("reading the request: {e}"),
                );
            }
            if body.len() > config.max_body_bytes {
                return too_large(request);
            }
            let (work, max_tokens, min_tokens) = match check(&body, config) {
                Ok(c) => c,
                Err(message) => {
                    return respond_error(request, 400, "invalid_request_error", &message)
                }
            };
            let job = Job {
                http: request,
                work,
                max_tokens,
                min_tokens,
                queued: Instant::now(),
            };
            match queue.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(job)) => respond_error(
                    job.http,
                    503,
                    "server_busy",
                    &format!("{} requests are waiting already; try again", config.queue),
                ),
                Err(TrySendError::Disconnected(job)) => {
                    respond_error(job.http, 503, "server_error", "the server is stopping")
                }
            }
        }
        _ => respond_error(
            request,
            404,
            "not_found",
            &format!("no {path} here; POST {CHAT_PATH} or GET {HEALTH_PATH}"),
        ),
    }
}

/// The request, checked before it waits for the model; with its token limit and minimum.
fn check(body: &[u8], config: &ServerConfig) -> Result<(Work, usize, usize), String> {
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
        return plain(&chat, config).map(|work| (work, max_tokens, min_tokens));
    };
    ext.slice.to_slice(config.max_pixels)?;
    if let Some(semsam) = &ext.semsam {
        // The neighbour table holds k entries for every token of the vocabulary (257k for
        // RadGrounder's), built once per k: a large k would take the server's memory.
        if !(1..=MAX_SEMSAM_K).contains(&semsam.k)
            || semsam.top_m == 0
            || !(semsam.top_p > 0.0 && semsam.top_p <= 1.0)
        {
            return Err(format!(
                "semsam wants k in 1..={MAX_SEMSAM_K}, top_m at least 1 and top_p in (0, 1]; got \
                 k {}, top_m {}, top_p {}",
                semsam.k, semsam.top_m, semsam.top_p
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
    Ok((Work::Slice(Box::new(ext)), max_tokens, min_tokens))
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
struct Stats {
    /// Requests answered.
    served: AtomicU64,
    /// The most answers one decoding step has advanced together.
    largest_batch: AtomicUsize,
}

/// A request whose answer is being decoded.
struct Running {
    http: tiny_http::Request,
    decoding: Decoding,
    /// How the answer goes back.
    reply: Reply,
    max_tokens: usize,
    queue_ms: f64,
}

enum Reply {
    /// With the Groundglass extension (findings, masks).
    Slice,
    /// Plain OpenAI.
    Image { skip_special: bool, token_ids: bool },
}

fn run_model(mut session: ModelSession, jobs: Receiver<Job>, config: &ServerConfig, stats: &Stats) {
    let mut served = 0u64;
    let mut running: Vec<Running> = Vec::new();
    let max_batch = config.max_batch.max(1);
    loop {
        // Wait only when nothing runs; otherwise take in what has arrived and go on decoding.
        if running.is_empty() {
            match jobs.recv() {
                Ok(job) => running.extend(start(&mut session, job, config)),
                // Stopped, and everything answered.
                Err(_) => return,
            }
        }
        while running.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => running.extend(start(&mut session, job, config)),
                Err(_) => break,
            }
        }
        let mut decodings: Vec<&mut Decoding> =
            running.iter_mut().map(|r| &mut r.decoding).collect();
        let decoding_now = decodings.iter().filter(|d| !d.is_finished()).count();
        stats
            .largest_batch
            .fetch_max(decoding_now, Ordering::Relaxed);
        if let Err(e) = session.step_all(&mut decodings) {
            for r in running.drain(..) {
                respond_error(r.http, 422, "model_error", &e.to_string());
            }
            continue;
        }
        let (done, still): (Vec<Running>, Vec<Running>) =
            running.into_iter().partition(|r| r.decoding.is_finished());
        running = still;
        for r in done {
            served += 1;
            reply(&session, r, served, config);
            stats.served.store(served, Ordering::Relaxed);
        }
    }
}

/// Runs a request's prompt; `None` when it was answered already (with an error).
fn start(session: &mut ModelSession, job: Job, config: &ServerConfig) -> Option<Running> {
    let queue_ms = job.queued.elapsed().as_secs_f64() * 1e3;
    let (started, reply) = match &job.work {
        Work::Slice(request) => {
            // Checked before queueing; checked again rather than trusted.
            let slice = match request.slice.to_slice(config.max_pixels) {
                Ok(s) => s,
                Err(e) => {
                    respond_error(job.http, 400, "invalid_request_error", &e);
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
            (session.start_ask(&input, job.min_tokens), Reply::Slice)
        }
        Work::Image {
            image,
            prompt,
            skip_special,
            token_ids,
        } => (
            session.start_image(image, prompt, job.max_tokens, job.min_tokens),
            Reply::Image {
                skip_special: *skip_special,
                token_ids: *token_ids,
            },
        ),
    };
    match started {
        Ok(decoding) => Some(Running {
            http: job.http,
            decoding,
            reply,
            max_tokens: job.max_tokens,
            queue_ms,
        }),
        // The picture's size is the request's fault, not the model's.
        Err(groundglass_model::ModelError::Input(e)) => {
            respond_error(job.http, 400, "invalid_request_error", &e);
            None
        }
        Err(e) => {
            respond_error(job.http, 422, "model_error", &e.to_string());
            None
        }
    }
}

/// Answers a request whose decoding has ended.
fn reply(session: &ModelSession, r: Running, served: u64, config: &ServerConfig) {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let response = |content: String, tokens: usize, token_ids, groundglass| ChatResponse {
        id: format!("chatcmpl-gg-{created}-{served}"),
        object: "chat.completion".into(),
        created,
        model: config.model_name.clone(),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".into(),
                content,
            },
            finish_reason: if tokens >= r.max_tokens {
                "length".into()
            } else {
                "stop".into()
            },
            token_ids,
        }],
        usage: Usage {
            completion_tokens: tokens,
        },
        groundglass,
    };
    match r.reply {
        Reply::Slice => match session.finish_ask(r.decoding) {
            Ok(answer) => {
                let body = response(
                    answer.text.clone(),
                    answer.tokens,
                    None,
                    Some(AnswerExtension {
                        answer,
                        queue_ms: r.queue_ms,
                    }),
                );
                respond_json(r.http, 200, &body);
            }
            Err(e) => respond_error(r.http, 422, "model_error", &e.to_string()),
        },
        Reply::Image {
            skip_special,
            token_ids,
        } => match session.finish_image(r.decoding, skip_special) {
            Ok(answer) => {
                let tokens = answer.token_ids.len();
                let ids = token_ids.then(|| answer.token_ids.clone());
                respond_json(r.http, 200, &response(answer.text, tokens, ids, None));
            }
            Err(e) => respond_error(r.http, 422, "model_error", &e.to_string()),
        },
    }
}

fn respond_json(request: tiny_http::Request, status: u16, body: &impl serde::Serialize) {
    let text = serde_json::to_vec(body).unwrap_or_else(|e| {
        format!("{{\"error\":{{\"message\":\"cannot write the answer: {e}\"}}}}").into_bytes()
    });
    let mut response = Response::from_data(text).with_status_code(StatusCode(status));
    if let Ok(h) = Header::from_bytes("Content-Type", "application/json") {
        response.add_header(h);
    }
    // The client may have gone; nothing to do about it here.
    let _ = request.respond(response);
}

fn respond_error(request: tiny_http::Request, status: u16, kind: &str, message: &str) {
    let body = ErrorBody {
        error: ErrorDetail {
            message: message.to_string(),
            kind: kind.to_string(),
            code: status,
        },
    };
    respond_json(request, status, &body);
}
