//! DICOMweb: QIDO-RS searches and WADO-RS retrieval on a blocking HTTP client (`ureq`), with
//! timeouts so a silent server cannot hang the caller.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::dicom_json::{integer, string, strings};
use crate::multipart;
use crate::retrieve::{Retrieved, Sink};
use crate::server::WebServer;
use crate::{timeouts, Credentials, PacsError, SeriesInfo, StudyInfo, StudyQuery};

pub struct Client {
    server: WebServer,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(server: WebServer) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(timeouts::answer()))
            .timeout_recv_response(Some(timeouts::answer()))
            // A long series may take minutes in all; only a stall between two reads is given up.
            .timeout_recv_body(None)
            .timeout_per_read(Some(timeouts::read()))
            .timeout_per_call(None)
            .http_status_as_error(false)
            .build()
            .into();
        Client { server, agent }
    }

    fn name(&self) -> String {
        self.server.base.clone()
    }

    /// GET `path` (after the base) with `accept`; the response when its status is 2xx.
    fn get(
        &self,
        path: &str,
        accept: &str,
        what: &str,
    ) -> Result<ureq::http::Response<ureq::Body>, PacsError> {
        let url = format!("{}{}", self.server.base, path);
        let request = self.authorized(self.agent.get(&url).header("Accept", accept));
        let response = request.call().map_err(|e| self.transport(e, what))?;
        self.check(response, what)
    }

    /// The request with this server's credentials.
    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.server.credentials {
            Credentials::None => request,
            Credentials::Basic { user, password } => {
                use base64::Engine;
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                request.header("Authorization", format!("Basic {token}"))
            }
            Credentials::Bearer(token) => {
                request.header("Authorization", format!("Bearer {token}"))
            }
        }
    }

    /// The response when its status is 2xx, else the error that status means.
    fn check(
        &self,
        response: ureq::http::Response<ureq::Body>,
        what: &str,
    ) -> Result<ureq::http::Response<ureq::Body>, PacsError> {
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        Err(match status {
            404 => PacsError::NotFound {
                server: self.name(),
                what: what.to_string(),
            },
            _ => PacsError::Status {
                server: self.name(),
                what: what.to_string(),
                status,
                hint: match status {
                    401 => ": the server wants credentials, or they are wrong",
                    403 => ": these credentials may not do this",
                    406 => ": the server cannot answer in the format asked",
                    500..=599 => ": the server failed",
                    _ => "",
                },
            },
        })
    }

    fn transport(&self, e: ureq::Error, what: &str) -> PacsError {
        match e {
            ureq::Error::Timeout(ureq::Timeout::PerRead) => self.timed_out(what, timeouts::read()),
            ureq::Error::Timeout(_) => self.timed_out(what, timeouts::answer()),
            ureq::Error::Io(io) => self.io_error(io, what),
            other => PacsError::Connect {
                server: self.name(),
                detail: other.to_string(),
            },
        }
    }

    fn timed_out(&self, what: &str, after: Duration) -> PacsError {
        PacsError::Timeout {
            server: self.name(),
            what: what.to_string(),
            seconds: after.as_secs(),
        }
    }

    /// An I/O error while talking: a timeout (ureq wraps its own in an `io::Error` once the body
    /// is being read), a refused connection, or an answer that broke off.
    fn io_error(&self, io: std::io::Error, what: &str) -> PacsError {
        use std::io::ErrorKind as K;
        if io.kind() == K::TimedOut {
            return self.timed_out(what, timeouts::read());
        }
        if let Some(inner) = io.get_ref().and_then(|e| e.downcast_ref::<ureq::Error>()) {
            return match inner {
                ureq::Error::Timeout(ureq::Timeout::PerRead) => {
                    self.timed_out(what, timeouts::read())
                }
                ureq::Error::Timeout(_) => self.timed_out(what, timeouts::answer()),
                other => PacsError::BrokeOff {
                    server: self.name(),
                    what: what.to_string(),
                    detail: other.to_string(),
                },
            };
        }
        match io.kind() {
            K::ConnectionRefused | K::AddrNotAvailable | K::NotFound => PacsError::Connect {
                server: self.name(),
                detail: io.to_string(),
            },
            _ => PacsError::BrokeOff {
                server: self.name(),
                what: what.to_string(),
                detail: io.to_string(),
            },
        }
    }

    /// A JSON array answer (204 or an empty body: no matches).
    fn get_json(&self, path: &str, what: &str) -> Result<Vec<Value>, PacsError> {
        let mut response = self.get(path, "application/dicom+json", what)?;
        let malformed = |detail: String| PacsError::Malformed {
            server: self.name(),
            what: what.to_string(),
            detail,
        };
        if response.status().as_u16() == 204 {
            return Ok(Vec::new());
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()
            .map_err(|e| self.transport(e, what))?;
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => Ok(items),
            Ok(_) => Err(malformed("not a JSON array of datasets".into())),
            Err(e) => Err(malformed(format!("not JSON ({e})"))),
        }
    }

    /// A one-study search: the service answers and understands QIDO-RS.
    pub fn echo(&self) -> Result<(), PacsError> {
        self.get_json("/studies?limit=1", "a one-study search")
            .map(|_| ())
    }

    pub fn search(&self, query: &StudyQuery) -> Result<Vec<StudyInfo>, PacsError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        let mut add = |key: &'static str, v: &Option<String>| {
            if let Some(v) = v.as_ref().filter(|v| !v.trim().is_empty()) {
                params.push((key, v.trim().to_string()));
            }
        };
        add("PatientName", &query.patient_name);
        add("PatientID", &query.patient_id);
        add("ModalitiesInStudy", &query.modality);
        add("AccessionNumber", &query.accession);
        add("StudyDescription", &query.description);
        if let Some(d) = &query.date {
            params.push(("StudyDate", d.to_dicom()));
        }
        params.push(("limit", query.limit.max(1).to_string()));
        if query.offset > 0 {
            params.push(("offset", query.offset.to_string()));
        }
        for tag in ["00081030", "00080061", "00080050"] {
            params.push(("includefield", tag.into()));
        }
        let path = format!("/studies?{}", encode_query(&params));
        let found = self.get_json(&path, "the study search")?;
        let mut studies = Vec::with_capacity(found.len());
        for d in &found {
            let study_uid = string(d, "0020000D");
            if study_uid.is_empty() {
                return Err(PacsError::Malformed {
                    server: self.name(),
                    what: "the study search".into(),
                    detail: "a study without its Study Instance UID (0020000D)".into(),
                });
            }
            let series = self.series(&study_uid)?;
            studies.push(StudyInfo {
                patient_name: string(d, "00100010"),
                patient_id: string(d, "00100020"),
                date: string(d, "00080020"),
                modalities: strings(d, "00080061"),
                description: string(d, "00081030"),
                accession: string(d, "00080050"),
                study_uid,
                series,
            });
        }
        Ok(studies)
    }

    /// The series of one study.
    pub fn series(&self, study_uid: &str) -> Result<Vec<SeriesInfo>, PacsError> {
        let what = format!("the series of study {study_uid}");
        let path = format!(
            "/studies/{}/series?includefield=0008103E&includefield=00201209&includefield=00200011",
            encode(study_uid)
        );
        let mut series: Vec<SeriesInfo> = self
            .get_json(&path, &what)?
            .iter()
            .map(|d| SeriesInfo {
                series_uid: string(d, "0020000E"),
                modality: string(d, "00080060"),
                description: string(d, "0008103E"),
                number: integer(d, "00200011"),
                instances: integer(d, "00201209").and_then(|n| u64::try_from(n).ok()),
            })
            .collect();
        series.sort_by_key(|s| (s.number.unwrap_or(i64::MAX), s.series_uid.clone()));
        Ok(series)
    }

    /// The SOP instance UIDs of a series, in instance-number order.
    pub fn instances(&self, study_uid: &str, series_uid: &str) -> Result<Vec<String>, PacsError> {
        let what = format!("the instances of series {series_uid}");
        let path = format!(
            "/studies/{}/series/{}/instances?includefield=00200013",
            encode(study_uid),
            encode(series_uid)
        );
        let mut found: Vec<(i64, String)> = self
            .get_json(&path, &what)?
            .iter()
            .map(|d| (integer(d, "00200013").unwrap_or(0), string(d, "00080018")))
            .filter(|(_, uid)| !uid.is_empty())
            .collect();
        found.sort();
        Ok(found.into_iter().map(|(_, uid)| uid).collect())
    }

    /// Retrieves one instance into `dir` (a series' preview: its middle image).
    pub fn retrieve_instance(
        &self,
        study_uid: &str,
        series_uid: &str,
        instance_uid: &str,
        dir: &Path,
    ) -> Result<Retrieved, PacsError> {
        let path = format!(
            "/studies/{}/series/{}/instances/{}",
            encode(study_uid),
            encode(series_uid),
            encode(instance_uid)
        );
        let what = format!("instance {instance_uid}");
        self.retrieve_path(&path, what, study_uid, Some(series_uid), dir, |_| {
            ControlFlow::Continue(())
        })
    }

    /// Retrieves a study, or one of its series, into `dir` (WADO-RS multipart, each instance
    /// written as it arrives; `progress` is told the count so far and may stop the transfer).
    pub fn retrieve(
        &self,
        study_uid: &str,
        series_uid: Option<&str>,
        dir: &Path,
        progress: impl FnMut(usize) -> ControlFlow<()>,
    ) -> Result<Retrieved, PacsError> {
        let (path, what) = match series_uid {
            Some(s) => (
                format!("/studies/{}/series/{}", encode(study_uid), encode(s)),
                format!("series {s} of study {study_uid}"),
            ),
            None => (
                format!("/studies/{}", encode(study_uid)),
                format!("study {study_uid}"),
            ),
        };
        self.retrieve_path(&path, what, study_uid, series_uid, dir, progress)
    }

    fn retrieve_path(
        &self,
        path: &str,
        what: String,
        study_uid: &str,
        series_uid: Option<&str>,
        dir: &Path,
        mut progress: impl FnMut(usize) -> ControlFlow<()>,
    ) -> Result<Retrieved, PacsError> {
        let response = self.get(
            path,
            "multipart/related; type=\"application/dicom\"; transfer-syntax=*",
            &what,
        )?;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let malformed = |detail: String| PacsError::Malformed {
            server: self.name(),
            what: what.clone(),
            detail,
        };
        let boundary = multipart::boundary(&content_type).ok_or_else(|| {
            malformed(format!(
                "expected a multipart/related answer with a boundary, got `{content_type}`"
            ))
        })?;
        let mut sink = Sink::new(dir)?;
        let mut stopped = None;
        let body = response.into_body().into_reader();
        let parsed = multipart::for_each_part(body, &boundary, |part| match sink.add(part.body) {
            Ok(_) => match progress(sink.count()) {
                ControlFlow::Continue(()) => Ok(()),
                ControlFlow::Break(()) => {
                    stopped = Some(PacsError::Cancelled {
                        server: self.name(),
                        what: format!("the retrieval of {what}"),
                        instances: sink.count(),
                    });
                    Err("cancelled".to_string())
                }
            },
            Err(e) => {
                let text = e.to_string();
                stopped = Some(e);
                Err(text)
            }
        });
        // Dropping the answer's reader closes the connection: the server stops sending.
        if let Some(e) = stopped {
            return Err(e);
        }
        match parsed {
            Ok(0) => Err(PacsError::NotFound {
                server: self.name(),
                what: format!("any instance of {what}"),
            }),
            Ok(_) => sink.finish(&self.name(), study_uid, series_uid),
            Err(multipart::MultipartError::Io(e)) => Err(self.io_error(e, &what)),
            Err(e) => Err(malformed(e.to_string())),
        }
    }
}

/// What a STOW-RS store did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Instances the server says it stored (its Referenced SOP Sequence).
    pub stored: usize,
}

impl Client {
    /// Sends DICOM files to the server (STOW-RS, one multipart request). Every instance must be
    /// stored: a partial or failed store is an error naming how many failed.
    pub fn store(&self, files: &[std::path::PathBuf]) -> Result<Stored, PacsError> {
        let what = format!("storing {} instance(s)", files.len());
        let boundary = format!(
            "groundglass-{:016x}",
            std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15
        );
        let mut body = Vec::new();
        for f in files {
            let bytes = std::fs::read(f).map_err(|e| PacsError::io(f, e))?;
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(&bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let url = format!("{}/studies", self.server.base);
        let request = self.authorized(
            self.agent
                .post(&url)
                .header("Accept", "application/dicom+json")
                .header(
                    "Content-Type",
                    format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
                ),
        );
        let response = request
            .send(&body[..])
            .map_err(|e| self.transport(e, &what))?;
        let status = response.status().as_u16();
        // 409: nothing stored; its body still says why, so read it like a partial store's.
        let mut response = if status == 409 {
            response
        } else {
            self.check(response, &what)?
        };
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap_or_default();
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let count = |tag: &str| {
            answer
                .get(tag)
                .and_then(|a| a.get("Value"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        };
        let (stored, failed) = (count("00081199"), count("00081198"));
        if failed > 0 || status == 409 || stored < files.len() {
            return Err(PacsError::NotStored {
                server: self.name(),
                what,
                detail: format!(
                    "HTTP {status}: the server stored {stored} and refused {failed} of {} instance(s)",
                    files.len()
                ),
            });
        }
        Ok(Stored { stored })
    }
}

/// Percent-encodes a query value or path segment: unreserved characters and the `*` wildcard
/// stay, everything else (`?`, `^`, spaces, non-ASCII) is escaped.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'*') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_query(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_escaped() {
        assert_eq!(super::encode("Doe^J* x&y"), "Doe%5EJ*%20x%26y");
        assert_eq!(super::encode("1.2.840.99"), "1.2.840.99");
    }
}
