//! The server's HTTP side: hyper connections on a small tokio runtime. Each request is checked
//! here (token, route, size, JSON) and a chat request is queued for the model thread, whose
//! answer comes back through a one-shot channel. Every connection is served at once, whatever
//! the burst (tiny_http's worker pool, used before, let four in and kept the rest waiting until
//! those connections closed).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::protocol::*;
use crate::server::{check, Checked, Job, ServerConfig, Stats};

/// A response's body: whole, or a stream of server-sent events.
type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Where the model thread sends a request's answer.
pub(crate) enum Sink {
    /// The whole answer at once.
    Whole(tokio::sync::oneshot::Sender<Reply>),
    /// Server-sent events; an `Err` before the first event refuses the request with its status,
    /// after it becomes an error event.
    Stream(tokio::sync::mpsc::UnboundedSender<Result<Vec<u8>, Reply>>),
}

impl Sink {
    /// Answers with an error (the client may have gone: nothing to do about it then).
    pub fn refuse(self, status: u16, kind: &str, message: &str) {
        let reply = Reply::error(status, kind, message);
        match self {
            Sink::Whole(whole) => {
                let _ = whole.send(reply);
            }
            Sink::Stream(events) => {
                let _ = events.send(Err(reply));
            }
        }
    }

    /// Whether the client has gone (its connection dropped the other end).
    pub fn is_closed(&self) -> bool {
        match self {
            Sink::Whole(whole) => whole.is_closed(),
            Sink::Stream(events) => events.is_closed(),
        }
    }
}

/// The events of a streamed answer as a response body: the first (already received), then
/// whatever the model thread sends until it drops its end.
struct EventStream {
    first: Option<Vec<u8>>,
    events: tokio::sync::mpsc::UnboundedReceiver<Result<Vec<u8>, Reply>>,
}

impl hyper::body::Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(first)))));
        }
        this.events.poll_recv(cx).map(|event| {
            event.map(|e| {
                // An error after the first event goes as an event: the status is sent already.
                let bytes = e.unwrap_or_else(|reply| event_of(&reply.body));
                Ok(Frame::data(Bytes::from(bytes)))
            })
        })
    }
}

/// An answer on its way back: status and JSON body.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, body: &impl serde::Serialize) -> Reply {
        Reply {
            status,
            body: json_bytes(body),
        }
    }

    pub fn error(status: u16, kind: &str, message: &str) -> Reply {
        let body = ErrorBody {
            error: ErrorDetail {
                message: message.to_string(),
                kind: kind.to_string(),
                code: status,
            },
        };
        Reply::json(status, &body)
    }

    fn into_response(self) -> Response<Body> {
        let mut response = Response::new(Full::new(Bytes::from(self.body)).boxed_unsync());
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// What every connection's handler shares.
pub(crate) struct Shared {
    pub queue: SyncSender<Job>,
    pub config: Arc<ServerConfig>,
    pub stats: Arc<Stats>,
    /// Chat requests being read and checked (not yet queued) at once.
    pub reading: AtomicUsize,
}

/// Accepts connections on `listener` until `stop` turns true.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("groundglass serve: cannot accept connections: {e}");
            return;
        }
    };
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: say so, wait, go on.
                    eprintln!("groundglass serve: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let read_timeout = shared.config.read_timeout;
        match shared.config.tls.clone() {
            None => {
                tokio::spawn(serve_connection(TokioIo::new(stream), shared));
            }
            Some(tls) => {
                tokio::spawn(async move {
                    // The handshake is held to the same time as a request head; a client that
                    // speaks plain HTTP, or does not trust us, fails it and is dropped.
                    let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
                    if let Ok(Ok(stream)) = tokio::time::timeout(read_timeout, handshake).await {
                        serve_connection(TokioIo::new(stream), shared).await;
                    }
                });
            }
        }
    }
    // Returning drops the runtime's tasks and with them the queue's senders: the model thread
    // ends once what it has is answered.
}

/// Serves the requests of one connection (plain or TLS) until it closes.
async fn serve_connection<I>(io: TokioIo<I>, shared: Arc<Shared>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let read_timeout = shared.config.read_timeout;
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(request, &shared).await) }
    });
    // A client that sends no request head within `read_timeout` is dropped: a connection held
    // open and silent would otherwise cost a task forever. One that breaks is the client's
    // business; nothing to report.
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .serve_connection(io, service)
        .await;
}

/// Counts a chat request as being read until it is queued or refused.
struct ReadingGuard<'a>(&'a AtomicUsize);

impl Drop for ReadingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(request: Request<Incoming>, shared: &Shared) -> Response<Body> {
    if (request.method(), request.uri().path()) == (&Method::POST, CHAT_PATH) {
        return chat(request, shared).await;
    }
    other(&request, shared).into_response()
}

/// A refusal when the server wants a bearer token and the request lacks it (everything but the
/// health check wants it).
fn unauthorised(request: &Request<Incoming>, config: &ServerConfig) -> Option<Reply> {
    let want = config.token.as_ref()?;
    let given = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    (given != Some(format!("Bearer {want}").as_str())).then(|| {
        Reply::error(
            401,
            "authentication_error",
            "a bearer token is required (Authorization: Bearer ...), or the one given is wrong",
        )
    })
}

/// Everything but the chat completions.
fn other(request: &Request<Incoming>, shared: &Shared) -> Reply {
    let config = &shared.config;
    let path = request.uri().path();
    if path != HEALTH_PATH {
        if let Some(refused) = unauthorised(request, config) {
            return refused;
        }
    }
    match (request.method(), path) {
        (&Method::GET, MODEL_PATH) => match &config.summary {
            Some(summary) => Reply::json(200, summary),
            None => Reply::error(503, "server_error", "no model is loaded"),
        },
        (&Method::GET, MODELS_PATH) => Reply::json(
            200,
            &serde_json::json!({"object": "list", "data": [
                {"id": config.model_name, "object": "model", "owned_by": "groundglass"}]}),
        ),
        (&Method::GET, HEALTH_PATH) => {
            let stats = &shared.stats;
            Reply::json(
                200,
                &serde_json::json!({"status": "ok", "model": config.model_name,
                    "served": stats.served.load(Ordering::Relaxed),
                    "largest_batch": stats.largest_batch.load(Ordering::Relaxed),
                    "abandoned": stats.abandoned.load(Ordering::Relaxed),
                    "decoding": stats.decoding.load(Ordering::Relaxed)}),
            )
        }
        _ => Reply::error(
            404,
            "not_found",
            &format!("no {path} here; POST {CHAT_PATH} or GET {HEALTH_PATH}"),
        ),
    }
}

/// How a queued request's answer will come.
enum Answer {
    Whole(tokio::sync::oneshot::Receiver<Reply>),
    Stream(tokio::sync::mpsc::UnboundedReceiver<Result<Vec<u8>, Reply>>),
}

fn stopped() -> Reply {
    Reply::error(
        500,
        "server_error",
        "the model thread stopped before it answered",
    )
}

async fn chat(request: Request<Incoming>, shared: &Shared) -> Response<Body> {
    match queue_chat(request, shared).await {
        Ok(Answer::Whole(answer)) => answer.await.unwrap_or_else(|_| stopped()).into_response(),
        // The status waits for the first event: a request the model refuses at its prompt gets
        // its 4xx, not a 200 with an error inside.
        Ok(Answer::Stream(mut events)) => match events.recv().await {
            Some(Ok(first)) => {
                let body = EventStream {
                    first: Some(first),
                    events,
                };
                let mut response = Response::new(body.boxed_unsync());
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("text/event-stream"),
                );
                response
            }
            Some(Err(refused)) => refused.into_response(),
            None => stopped().into_response(),
        },
        Err(refused) => refused.into_response(),
    }
}

/// Reads, checks and queues a chat request; a refusal when it cannot be.
async fn queue_chat(request: Request<Incoming>, shared: &Shared) -> Result<Answer, Reply> {
    let config = shared.config.clone();
    if let Some(refused) = unauthorised(&request, &config) {
        return Err(refused);
    }
    if shared.reading.fetch_add(1, Ordering::SeqCst) >= config.max_readers {
        shared.reading.fetch_sub(1, Ordering::SeqCst);
        return Err(Reply::error(
            503,
            "server_busy",
            "too many requests are being read; try again",
        ));
    }
    let reading = ReadingGuard(&shared.reading);
    let too_large = || {
        Reply::error(
            413,
            "invalid_request_error",
            &format!(
                "the request is larger than this server takes ({} bytes)",
                config.max_body_bytes
            ),
        )
    };
    // Refused from its declared length before reading, and bounded while reading (a chunked
    // body declares none).
    let declared = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > config.max_body_bytes) {
        return Err(too_large());
    }
    // Bounded in time too: a body trickled in forever would hold a reading place.
    let reading_body = Limited::new(request.into_body(), config.max_body_bytes).collect();
    let Ok(read) = tokio::time::timeout(config.read_timeout, reading_body).await else {
        let message = format!(
            "the request's body did not arrive within {} s",
            config.read_timeout.as_secs()
        );
        return Err(Reply::error(408, "invalid_request_error", &message));
    };
    let body = match read {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => {
            return Err(Reply::error(
                400,
                "invalid_request_error",
                &format!("reading the request: {e}"),
            ))
        }
    };
    // Parsing a slice of many megabytes is CPU work: off the connection tasks.
    let checked = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || check(&body, &config)).await
    };
    let Checked {
        work,
        max_tokens,
        min_tokens,
        stream,
    } = match checked {
        Ok(Ok(c)) => c,
        Ok(Err(message)) => return Err(Reply::error(400, "invalid_request_error", &message)),
        Err(e) => {
            let message = format!("checking the request: {e}");
            return Err(Reply::error(500, "server_error", &message));
        }
    };
    let (reply, answer) = if stream {
        let (events, received) = tokio::sync::mpsc::unbounded_channel();
        (Sink::Stream(events), Answer::Stream(received))
    } else {
        let (whole, received) = tokio::sync::oneshot::channel();
        (Sink::Whole(whole), Answer::Whole(received))
    };
    let job = Job {
        reply,
        work,
        max_tokens,
        min_tokens,
        queued: Instant::now(),
    };
    let queued = shared.queue.try_send(job);
    drop(reading);
    match queued {
        Ok(()) => Ok(answer),
        Err(TrySendError::Full(_)) => Err(Reply::error(
            503,
            "server_busy",
            &format!("{} requests are waiting already; try again", config.queue),
        )),
        Err(TrySendError::Disconnected(_)) => {
            Err(Reply::error(503, "server_error", "the server is stopping"))
        }
    }
}
