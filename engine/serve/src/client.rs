//! Asking a Groundglass server: the slice and the task in, the answer as a local `ask` gives it.

use std::time::Duration;

use groundglass_model::{Answer, AskInput};

use crate::error::RemoteError;
use crate::protocol::*;

pub struct Remote {
    /// The server's base URL, e.g. `http://gpu-host:8080`.
    pub base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// A remote answer and how long the round trip took.
#[derive(Clone, Debug)]
pub struct RemoteAnswer {
    pub answer: Answer,
    pub round_trip_ms: f64,
    pub queue_ms: f64,
}

impl Remote {
    pub fn new(base: &str, token: Option<String>) -> Remote {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            // A 3B report on a busy server takes minutes; a dead one is caught by the connect.
            .timeout_recv_body(Some(Duration::from_secs(900)))
            .http_status_as_error(false)
            .build()
            .into();
        Remote {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent,
        }
    }

    /// The server's checkpoint, as the model panel shows a local one.
    pub fn summary(&self) -> Result<groundglass_model::ModelSummary, RemoteError> {
        let url = format!("{}{MODEL_PATH}", self.base);
        let mut get = self.agent.get(&url);
        if let Some(t) = &self.token {
            get = get.header("Authorization", &format!("Bearer {t}"));
        }
        let text = self.answer(&url, get.call())?;
        serde_json::from_str(&text).map_err(|e| RemoteError::BadAnswer {
            url,
            detail: e.to_string(),
        })
    }

    /// The body of a 200 answer; any other status as `Refused` with the server's message.
    fn answer(
        &self,
        url: &str,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<String, RemoteError> {
        let mut response = sent.map_err(|e| sending_error(url, e))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()
            .map_err(|e| match e {
                ureq::Error::Io(_) | ureq::Error::Timeout(_) => RemoteError::Dropped {
                    url: url.to_string(),
                    detail: format!("reading the answer: {e}"),
                },
                other => RemoteError::BadAnswer {
                    url: url.to_string(),
                    detail: format!("reading the answer: {other}"),
                },
            })?;
        if status != 200 {
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error.message)
                .unwrap_or_else(|_| text.chars().take(300).collect());
            return Err(RemoteError::Refused {
                url: url.to_string(),
                status,
                message,
            });
        }
        Ok(text)
    }

    pub fn ask(&self, input: &AskInput) -> Result<RemoteAnswer, RemoteError> {
        let url = format!("{}{CHAT_PATH}", self.base);
        let request = ChatRequest {
            model: None,
            messages: vec![ChatMessage {
                role: "user".into(),
                content: Content::Text(format!("{:?}", input.request.task).to_lowercase()),
            }],
            max_tokens: Some(input.max_new_tokens),
            temperature: Some(0.0),
            groundglass: Some(SliceRequest {
                slice: WireSlice::from_slice(input.slice),
                modality: input.modality.to_string(),
                request: input.request.clone(),
                semsam: input.semsam,
                mark: input.visual_prompt.cloned(),
            }),
        };
        let body = serde_json::to_vec(&request).map_err(|e| RemoteError::BadAnswer {
            url: url.clone(),
            detail: format!("cannot write the request: {e}"),
        })?;
        let started = std::time::Instant::now();
        let mut post = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json");
        if let Some(t) = &self.token {
            post = post.header("Authorization", &format!("Bearer {t}"));
        }
        let text = self.answer(&url, post.send(&body[..]))?;
        let chat: ChatResponse =
            serde_json::from_str(&text).map_err(|e| RemoteError::BadAnswer {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        Ok(RemoteAnswer {
            answer: chat.groundglass.answer,
            round_trip_ms: started.elapsed().as_secs_f64() * 1e3,
            queue_ms: chat.groundglass.queue_ms,
        })
    }
}

/// A failed request: nobody there (no connection was made), a server that went away after it
/// took the request, or one that answered what is not HTTP.
fn sending_error(url: &str, e: ureq::Error) -> RemoteError {
    use std::io::ErrorKind as K;
    let url = url.to_string();
    let detail = e.to_string();
    match &e {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
            RemoteError::Connect { url, detail }
        }
        ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
            RemoteError::Connect { url, detail }
        }
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                K::ConnectionRefused | K::AddrNotAvailable | K::NotFound | K::HostUnreachable
            ) =>
        {
            RemoteError::Connect { url, detail }
        }
        ureq::Error::Io(_) | ureq::Error::Timeout(_) => RemoteError::Dropped { url, detail },
        _ => RemoteError::BadAnswer { url, detail },
    }
}
