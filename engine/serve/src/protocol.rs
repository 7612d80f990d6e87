//! What goes over the wire: OpenAI's chat-completions shape, plus a `groundglass` field on the
//! request (the slice's modality values, its geometry and the task) and on the answer (findings
//! and masks), which stock servers do not have. With the slice's values rather than a rendered
//! picture, the server runs the model's own preprocessing, so a remote answer is the answer a
//! local `ask` gives for the same checkpoint. Without the field it is a plain OpenAI request, as
//! vLLM takes one: the preprocessed picture as an `image_url` (a PNG data URL) and the prompt's
//! text; the answer is then text (and token ids when asked), no findings.

use base64::Engine as _;
use groundglass_model::prompt::Request;
use groundglass_model::semsam::SemSamConfig;
use groundglass_model::visual_prompt::VisualPrompt;
use groundglass_model::Answer;
use groundglass_study::{EdgeLetters, PlaneGrid, SliceImage};
use serde::{Deserialize, Serialize};

pub const CHAT_PATH: &str = "/v1/chat/completions";
pub const HEALTH_PATH: &str = "/health";
/// The loaded checkpoint's summary (`ModelSummary`), for the viewer's model panel.
pub const MODEL_PATH: &str = "/groundglass/model";
/// OpenAI's list of the models served (what a client checks before it asks).
pub const MODELS_PATH: &str = "/v1/models";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChatRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// vLLM's extension: end-of-sequence is held back until this many tokens are made (load
    /// tests use it for answers of one length).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tokens: Option<usize>,
    /// Only greedy decoding (0) is served: grounding is read from the greedy answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// OpenAI-compatible servers drop special tokens (the `<loc>` boxes) unless this is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_special_tokens: Option<bool>,
    /// vLLM's extension: the answer's token ids on each choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_token_ids: Option<bool>,
    /// OpenAI's streaming: the answer as server-sent events, a [`ChatChunk`] per decoding step
    /// (its text's new part), the last one with the finish reason, usage and the `groundglass`
    /// field, then `data: [DONE]`. Closing the connection cancels the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groundglass: Option<SliceRequest>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: Content,
}

/// A message's content: a string, or OpenAI's list of parts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageUrl {
    pub url: String,
}

/// The Groundglass part of a request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SliceRequest {
    pub slice: WireSlice,
    /// DICOM modality (CT, MR, ...): the preprocessing's windows depend on it.
    pub modality: String,
    pub request: Request,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semsam: Option<SemSamConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<VisualPrompt>,
}

/// A slice as the engine holds it: modality values as little-endian f32 (NaN outside the volume,
/// which JSON numbers cannot carry), base64; its grid places findings in patient space.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireSlice {
    pub grid: PlaneGrid,
    pub index: usize,
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub letters: EdgeLetters,
    pub values_f32le: String,
}

impl WireSlice {
    pub fn from_slice(slice: &SliceImage) -> WireSlice {
        let bytes: Vec<u8> = slice.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        WireSlice {
            grid: slice.grid,
            index: slice.index,
            width: slice.width,
            height: slice.height,
            channels: slice.channels,
            letters: slice.letters.clone(),
            values_f32le: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// The slice, checked: its size bounded by `max_pixels`, its values as many as its size says.
    pub fn to_slice(&self, max_pixels: usize) -> Result<SliceImage, String> {
        if self.width == 0 || self.height == 0 || !matches!(self.channels, 1 | 3) {
            return Err(format!(
                "slice of {} x {} pixels with {} channel(s): expected a non-empty slice with 1 or 3",
                self.width, self.height, self.channels
            ));
        }
        let pixels = self.width.saturating_mul(self.height);
        if pixels > max_pixels {
            return Err(format!(
                "slice of {} x {} pixels: this server takes up to {max_pixels} pixels",
                self.width, self.height
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.values_f32le)
            .map_err(|e| format!("values_f32le is not base64: {e}"))?;
        let want = pixels * self.channels * 4;
        if bytes.len() != want {
            return Err(format!(
                "values_f32le holds {} bytes; a {} x {} x {} slice needs {want}",
                bytes.len(),
                self.width,
                self.height,
                self.channels
            ));
        }
        Ok(SliceImage {
            grid: self.grid,
            index: self.index,
            width: self.width,
            height: self.height,
            channels: self.channels,
            values: bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            letters: self.letters.clone(),
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChatResponse {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: Usage,
    /// Only for requests that had the `groundglass` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groundglass: Option<AnswerExtension>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Choice {
    pub index: usize,
    pub message: AssistantMessage,
    /// `stop`, or `length` when max_tokens ended the answer.
    pub finish_reason: String,
    /// The answer's token ids, when the request asked (`return_token_ids`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ids: Option<Vec<u32>>,
}

/// One server-sent event of a streamed answer (`object: chat.completion.chunk`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChatChunk {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    /// On the last chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// On the last chunk, for requests that had the `groundglass` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groundglass: Option<AnswerExtension>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChunkChoice {
    pub index: usize,
    pub delta: Delta,
    /// `stop` or `length` on the last chunk, absent before.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// On the last chunk, when the request asked (`return_token_ids`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ids: Option<Vec<u32>>,
}

/// The new part of the answer's text.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// `body` as JSON, or an error body saying why it cannot be.
pub fn json_bytes(body: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_else(|e| {
        format!("{{\"error\":{{\"message\":\"cannot write the answer: {e}\"}}}}").into_bytes()
    })
}

/// A server-sent event's line for `body`.
pub fn event(body: &impl Serialize) -> Vec<u8> {
    event_of(&json_bytes(body))
}

/// A server-sent event's line for JSON already written.
pub fn event_of(json: &[u8]) -> Vec<u8> {
    [b"data: ", json, b"\n\n"].concat()
}

/// The event that ends a stream.
pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AssistantMessage {
    pub role: String,
    pub content: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Usage {
    pub completion_tokens: usize,
}

/// The Groundglass part of an answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AnswerExtension {
    /// Text, findings (pixels and patient LPS), masks (run-length encoded), timings.
    pub answer: Answer,
    /// Time in the server's queue before the model took the request.
    pub queue_ms: f64,
}

/// The PNG data URL of a preprocessed picture (channel-first in [-1, 1], as the model's
/// preprocessing makes it) as 8-bit RGB: what an OpenAI-compatible server is sent.
pub fn image_data_url(image: &groundglass_model::preprocess::ModelImage) -> Result<String, String> {
    let n = image.size * image.size;
    let mut rgb = vec![0u8; 3 * n];
    for c in 0..3 {
        for (i, v) in image.pixels[c * n..(c + 1) * n].iter().enumerate() {
            rgb[3 * i + c] = ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
        }
    }
    let mut png = Vec::new();
    {
        let side = image.size as u32;
        let mut encoder = png::Encoder::new(&mut png, side, side);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    }
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

/// The picture of a PNG data URL as the model takes it (channel-first in [-1, 1]); it must be
/// square (the preprocessed image: this server does not resize what it is sent), at most
/// `max_side` on a side. 8-bit grey, RGB or RGBA.
pub fn image_from_data_url(
    url: &str,
    max_side: usize,
) -> Result<groundglass_model::preprocess::ModelImage, String> {
    let data = url
        .strip_prefix("data:image/png;base64,")
        .ok_or("image_url must be a PNG data URL (data:image/png;base64,...)")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| format!("image_url: not base64: {e}"))?;
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("image_url: not a PNG: {e}"))?;
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    if w != h || w == 0 || w > max_side {
        return Err(format!(
            "image_url: the picture is {w} x {h}; send the model's preprocessed square picture \
             (at most {max_side} on a side)"
        ));
    }
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("image_url: {e}"))?;
    let channels = match frame.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => return Err(format!("image_url: colour type {other:?} is not served")),
    };
    let n = w * w;
    let mut pixels = vec![0f32; 3 * n];
    for i in 0..n {
        for c in 0..3 {
            let v = if channels < 3 {
                buf[i * channels]
            } else {
                buf[i * channels + c]
            };
            pixels[c * n + i] = f32::from(v) / 127.5 - 1.0;
        }
    }
    Ok(groundglass_model::preprocess::ModelImage {
        size: w,
        pixels,
        input_spacing_mm: None,
    })
}

/// `{"error": {"message", "type", "code"}}`, as OpenAI-compatible servers answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub code: u16,
}
