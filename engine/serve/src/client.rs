//! Asking a server about a slice. A Groundglass server takes the slice's values and the task and
//! answers as a local `ask` does. An OpenAI-compatible one (vLLM serving the PaliGemma
//! checkpoint) is sent what its model's authors fed it: the picture preprocessed here (CT windows
//! as channels) as a PNG, and the prompt's text; its text answer, special tokens kept, is parsed
//! here into findings on the slice. It has no masks and no SemSam, and asking for them is refused
//! here, not faked.

use std::time::Duration;

use groundglass_model::{Answer, AskInput};

use crate::error::{RemoteError, ServeError};
use crate::protocol::*;

/// A client of one server; clones share its connections.
#[derive(Clone)]
pub struct Remote {
    /// The server's base URL, e.g. `http://gpu-host:8080`.
    pub base: String,
    token: Option<String>,
    agent: ureq::Agent,
    pub api: RemoteApi,
    /// Asks the server to hold back end-of-sequence until this many tokens (`min_tokens`).
    pub min_tokens: Option<usize>,
}

/// The API a server speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteApi {
    /// `groundglass serve`.
    Groundglass,
    /// OpenAI's chat completions with images (vLLM): the served model's name, and the side of
    /// the picture its preprocessing makes (224 for RadGrounder).
    OpenAi { model: String, image_size: usize },
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
        Remote {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent: agent(None),
            api: RemoteApi::Groundglass,
            min_tokens: None,
        }
    }

    /// Trusts what [`crate::tls::CA_VARIABLE`] names, when it is set (every client of the app
    /// reads it: `ask`, `batch`, the viewer).
    pub fn trusting_environment_ca(self) -> Result<Remote, ServeError> {
        match std::env::var_os(crate::tls::CA_VARIABLE) {
            Some(ca) if !ca.is_empty() => self.trusting(std::path::Path::new(&ca)),
            _ => Ok(self),
        }
    }

    /// Trusts, for an `https://` server, the certificates in the PEM file `ca` (a hospital's
    /// own certificate authority) instead of the public web roots.
    pub fn trusting(mut self, ca: &std::path::Path) -> Result<Remote, ServeError> {
        let roots = crate::tls::root_certs(ca)?;
        self.agent = agent(Some(roots));
        Ok(self)
    }

    /// A client of an OpenAI-compatible server (`RemoteApi::OpenAi`).
    pub fn openai(base: &str, token: Option<String>, model: &str, image_size: usize) -> Remote {
        Remote {
            api: RemoteApi::OpenAi {
                model: model.to_string(),
                image_size,
            },
            ..Remote::new(base, token)
        }
    }

    /// The server's checkpoint, as the model panel shows a local one.
    pub fn summary(&self) -> Result<groundglass_model::ModelSummary, RemoteError> {
        let url = format!("{}{MODEL_PATH}", self.base);
        let text = self.get(&url)?;
        serde_json::from_str(&text).map_err(|e| RemoteError::BadAnswer {
            url,
            detail: e.to_string(),
        })
    }

    /// The models an OpenAI-compatible server serves (`GET /v1/models`), by name.
    pub fn models(&self) -> Result<Vec<String>, RemoteError> {
        let url = format!("{}{MODELS_PATH}", self.base);
        let text = self.get(&url)?;
        let list: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| RemoteError::BadAnswer {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        Ok(list["data"]
            .as_array()
            .map(|models| {
                models
                    .iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// What the model panel shows of a server: its checkpoint's summary (a Groundglass server),
    /// or, for an OpenAI-compatible one, what can be known: the model is served (`/v1/models`),
    /// it answers reports, grounded reports and questions, and has no mask head here.
    pub fn describe(&self) -> Result<groundglass_model::ModelSummary, RemoteError> {
        let RemoteApi::OpenAi { model, image_size } = &self.api else {
            return self.summary();
        };
        let served = self.models()?;
        if !served.iter().any(|m| m == model) {
            return Err(RemoteError::Refused {
                url: format!("{}{MODELS_PATH}", self.base),
                status: 404,
                message: format!("it serves {served:?}, not {model:?}"),
            });
        }
        use groundglass_model::prompt::Task;
        Ok(groundglass_model::ModelSummary {
            dir: std::path::PathBuf::from(&self.base),
            architecture: format!(
                "{model} over the OpenAI API ({image_size} px pictures; text and boxes, no masks, no SemSam)"
            ),
            parameters: 0,
            device: "remote".into(),
            dtype: "as served".into(),
            mask_head: false,
            tasks: vec![Task::Report, Task::Grounded, Task::Vqa],
            soft_capping: groundglass_model::SoftCapping::AUTHORS_EVALUATION,
            weights: groundglass_model::checkpoint::WeightFormat::Safetensors,
            weight_bytes: 0,
            decode_bytes: 0,
            ms_per_token_limit: None,
            trained_on: None,
            semsam_tables: Vec::new(),
        })
    }

    /// The body of a GET's 200 answer, with the bearer token.
    fn get(&self, url: &str) -> Result<String, RemoteError> {
        let mut get = self.agent.get(url);
        if let Some(t) = &self.token {
            get = get.header("Authorization", &format!("Bearer {t}"));
        }
        self.answer(url, get.call())
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
        if let RemoteApi::OpenAi { model, image_size } = &self.api {
            return self.ask_openai(input, model, *image_size);
        }
        let url = format!("{}{CHAT_PATH}", self.base);
        let request = self.slice_request(input);
        let started = std::time::Instant::now();
        let chat = self.post(&url, &request)?;
        let ext = chat.groundglass.ok_or_else(|| no_extension(&url))?;
        Ok(RemoteAnswer {
            answer: ext.answer,
            round_trip_ms: started.elapsed().as_secs_f64() * 1e3,
            queue_ms: ext.queue_ms,
        })
    }

    /// As [`Remote::ask`], the answer streamed: after each decoding step `on_text` gets the
    /// answer's text so far and returns false to cancel, which closes the connection (the
    /// server then stops decoding it) and returns what came, marked cancelled, its findings
    /// parsed here from the partial text (no masks). An OpenAI-compatible server is asked
    /// whole, and `on_text` sees the text once.
    pub fn ask_streaming(
        &self,
        input: &AskInput,
        mut on_text: impl FnMut(&str) -> bool,
    ) -> Result<RemoteAnswer, RemoteError> {
        if matches!(self.api, RemoteApi::OpenAi { .. }) {
            let got = self.ask(input)?;
            on_text(&got.answer.text);
            return Ok(got);
        }
        let url = format!("{}{CHAT_PATH}", self.base);
        let mut request = self.slice_request(input);
        request.stream = Some(true);
        let body = serde_json::to_vec(&request).map_err(|e| RemoteError::BadAnswer {
            url: url.clone(),
            detail: format!("cannot write the request: {e}"),
        })?;
        let mut post = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Accept", "text/event-stream");
        if let Some(t) = &self.token {
            post = post.header("Authorization", &format!("Bearer {t}"));
        }
        let started = std::time::Instant::now();
        let mut response = post.send(&body[..]).map_err(|e| sending_error(&url, e))?;
        if response.status().as_u16() != 200 {
            // The refusal, as a whole answer's.
            return Err(self
                .answer(&url, Ok(response))
                .err()
                .unwrap_or_else(|| no_extension(&url)));
        }
        let dropped = |detail: String| RemoteError::Dropped {
            url: url.clone(),
            detail,
        };
        let bad = |detail: String| RemoteError::BadAnswer {
            url: url.clone(),
            detail,
        };
        let reader = std::io::BufReader::new(response.body_mut().as_reader());
        let (mut text, mut steps) = (String::new(), 0usize);
        for line in std::io::BufRead::lines(reader) {
            let line = line.map_err(|e| dropped(format!("reading the answer: {e}")))?;
            let Some(data) = line.strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                break;
            }
            let value: serde_json::Value = serde_json::from_str(data)
                .map_err(|e| bad(format!("an event is not JSON: {e}")))?;
            if let Ok(error) = serde_json::from_value::<ErrorBody>(value.clone()) {
                return Err(RemoteError::Refused {
                    url: url.clone(),
                    status: error.error.code,
                    message: error.error.message,
                });
            }
            let chunk: ChatChunk = serde_json::from_value(value)
                .map_err(|e| bad(format!("an event is not a chat chunk: {e}")))?;
            if let Some(delta) = chunk.choices.first().and_then(|c| c.delta.content.as_ref()) {
                text.push_str(delta);
                steps += 1;
            }
            if let Some(ext) = chunk.groundglass {
                on_text(&ext.answer.text);
                return Ok(RemoteAnswer {
                    answer: ext.answer,
                    round_trip_ms: started.elapsed().as_secs_f64() * 1e3,
                    queue_ms: ext.queue_ms,
                });
            }
            if !on_text(&text) {
                // Returning drops the response, and with it the connection.
                return Ok(RemoteAnswer {
                    answer: cancelled_answer(input, text, steps),
                    round_trip_ms: started.elapsed().as_secs_f64() * 1e3,
                    queue_ms: 0.0,
                });
            }
        }
        Err(dropped(
            "the stream of the answer ended before its last event".into(),
        ))
    }

    /// The request a Groundglass server takes: the slice's values, geometry and the task.
    fn slice_request(&self, input: &AskInput) -> ChatRequest {
        ChatRequest {
            model: None,
            messages: vec![ChatMessage {
                role: "user".into(),
                content: Content::Text(format!("{:?}", input.request.task).to_lowercase()),
            }],
            max_tokens: Some(input.max_new_tokens),
            min_tokens: self.min_tokens,
            temperature: Some(0.0),
            skip_special_tokens: None,
            return_token_ids: None,
            stream: None,
            groundglass: Some(SliceRequest {
                slice: WireSlice::from_slice(input.slice),
                modality: input.modality.to_string(),
                request: input.request.clone(),
                semsam: input.semsam,
                mark: input.visual_prompt.cloned(),
            }),
        }
    }

    fn post(&self, url: &str, request: &ChatRequest) -> Result<ChatResponse, RemoteError> {
        let body = serde_json::to_vec(request).map_err(|e| RemoteError::BadAnswer {
            url: url.to_string(),
            detail: format!("cannot write the request: {e}"),
        })?;
        let mut post = self
            .agent
            .post(url)
            .header("Content-Type", "application/json");
        if let Some(t) = &self.token {
            post = post.header("Authorization", &format!("Bearer {t}"));
        }
        let text = self.answer(url, post.send(&body[..]))?;
        serde_json::from_str(&text).map_err(|e| RemoteError::BadAnswer {
            url: url.to_string(),
            detail: e.to_string(),
        })
    }

    /// The OpenAI-compatible request: the picture as the model's preprocessing makes it (the
    /// region's mark burnt in), the prompt's text, greedy, special tokens kept.
    fn ask_openai(
        &self,
        input: &AskInput,
        model: &str,
        image_size: usize,
    ) -> Result<RemoteAnswer, RemoteError> {
        use groundglass_model::prompt::Task;
        let url = format!("{}{CHAT_PATH}", self.base);
        let unavailable = |what: &str| RemoteError::Unavailable {
            url: url.clone(),
            what: what.to_string(),
        };
        if input.semsam.is_some() {
            return Err(unavailable("MIS-SemSam decoding"));
        }
        if input.request.task == Task::Segment {
            return Err(unavailable("a segmentation (the mask head's masks)"));
        }
        let mut image = groundglass_model::preprocess::preprocess_slice(
            input.slice,
            input.modality,
            image_size,
        );
        if let Some(mark) = input.visual_prompt {
            mark.burn(&mut image);
        }
        let picture = image_data_url(&image).map_err(|e| RemoteError::BadAnswer {
            url: url.clone(),
            detail: format!("cannot encode the picture: {e}"),
        })?;
        let request = ChatRequest {
            model: Some(model.to_string()),
            messages: vec![ChatMessage {
                role: "user".into(),
                content: Content::Parts(vec![
                    Part::ImageUrl {
                        image_url: ImageUrl { url: picture },
                    },
                    Part::Text {
                        text: input.request.text(),
                    },
                ]),
            }],
            max_tokens: Some(input.max_new_tokens),
            min_tokens: self.min_tokens,
            temperature: Some(0.0),
            skip_special_tokens: Some(false),
            return_token_ids: Some(true),
            stream: None,
            groundglass: None,
        };
        let started = std::time::Instant::now();
        let chat = self.post(&url, &request)?;
        let choice = chat.choices.first().ok_or_else(|| RemoteError::BadAnswer {
            url: url.clone(),
            detail: "no choices in the answer".into(),
        })?;
        // As the local decoder cleans its text (RadGrounder's evaluation drops these).
        let text = choice
            .message
            .content
            .replace("<pad>", "")
            .replace("<eos>", "")
            .trim()
            .to_string();
        let findings = findings_in(&text, input)
            .into_iter()
            .map(|f| f.locate(input.slice))
            .collect();
        let tokens = choice
            .token_ids
            .as_ref()
            .map_or(chat.usage.completion_tokens, Vec::len);
        Ok(RemoteAnswer {
            answer: Answer {
                text,
                findings,
                masks: Vec::new(),
                tokens,
                input_spacing_mm: image.input_spacing_mm,
                ..Answer::default()
            },
            round_trip_ms: started.elapsed().as_secs_f64() * 1e3,
            queue_ms: 0.0,
        })
    }
}

/// A failed request: nobody there (no connection was made), a server that went away after it
/// took the request, or one that answered what is not HTTP.
fn no_extension(url: &str) -> RemoteError {
    RemoteError::BadAnswer {
        url: url.to_string(),
        detail: "no `groundglass` field: is it an OpenAI-compatible server? (--remote-api openai)"
            .into(),
    }
}

/// The findings in an answer's text, parsed here as the model's own parse does (RadGrounder's
/// format, the question's language), not yet placed on the slice.
fn findings_in(text: &str, input: &AskInput) -> Vec<groundglass_grounding::Finding> {
    use groundglass_grounding::{parser_for, Format, LabelMap};
    parser_for(
        Format::RadGrounder,
        LabelMap::radgrounder(),
        input.request.lang.into(),
    )
    .parse(text)
}

/// What a cancelled streamed answer keeps: its text so far and the findings in it, placed on
/// the slice as a local answer's are; no masks (the mask head runs at the end).
fn cancelled_answer(input: &AskInput, text: String, steps: usize) -> Answer {
    let findings = findings_in(&text, input)
        .into_iter()
        .filter(|f| f.box_norm.is_some())
        .map(|f| f.locate(input.slice))
        .collect();
    Answer {
        text,
        findings,
        tokens: steps,
        cancelled: true,
        ..Default::default()
    }
}

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
        ureq::Error::Rustls(_) => RemoteError::Tls { url, detail },
        ureq::Error::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) =>
        {
            RemoteError::Tls { url, detail }
        }
        ureq::Error::Io(_) | ureq::Error::Timeout(_) => RemoteError::Dropped { url, detail },
        // What a TLS server answers a plain request looks like no HTTP at all.
        ureq::Error::Protocol(_) if url.starts_with("http://") => RemoteError::BadAnswer {
            detail: format!("{detail} (if the server serves HTTPS, its address begins https://)"),
            url,
        },
        _ => RemoteError::BadAnswer { url, detail },
    }
}

/// The HTTP(S) agent; `roots` replace the public web roots when given.
fn agent(roots: Option<Vec<ureq::tls::Certificate<'static>>>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        // A 3B report on a busy server takes minutes; a dead one is caught by the connect.
        .timeout_recv_body(Some(Duration::from_secs(900)))
        .http_status_as_error(false);
    if let Some(roots) = roots {
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots)))
                .build(),
        );
    }
    config.build().into()
}
