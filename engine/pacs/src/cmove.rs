//! Retrieval with C-MOVE (Study Root), for the many PACS that offer it and not C-GET: we listen
//! on a port as a storage SCP (the PACS must know our AE title with this host and port), ask the
//! PACS to move the study or series to our AE title, and the PACS opens its own association to
//! that port and sends each instance as a C-STORE. The move association only reports progress.

use std::net::{TcpListener, TcpStream};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_ul::association::server::ServerAssociationOptions;
use dicom_ul::association::ServerAssociation;
use dicom_ul::pdu::{PDataValueType, Pdu};

use crate::dimse::{command, read_command, retrieve_identifier, status, Target};
use crate::retrieve::{Retrieved, Sink};
use crate::scp::StoreRequest;
use crate::server::DimsePeer;
use crate::PacsError;

/// How often the storage SCP looks whether the move has ended (its accept and read waits).
const POLL: Duration = Duration::from_millis(200);

/// What the storage SCP saw, for the error when the move fails.
#[derive(Default)]
struct Received {
    problems: Vec<String>,
}

/// Retrieves a study, or one of its series, into `dir` with C-MOVE to our storage SCP on
/// `store_port`; `progress` is told the count written so far (at each of the PACS's pending
/// answers) and may stop the transfer (the move association is then aborted).
pub fn retrieve(
    peer: &DimsePeer,
    study_uid: &str,
    series_uid: Option<&str>,
    dir: &Path,
    store_port: u16,
    mut progress: impl FnMut(usize) -> ControlFlow<()>,
) -> Result<Retrieved, PacsError> {
    let server = peer.name();
    let what = match series_uid {
        Some(s) => format!("C-MOVE of series {s} of study {study_uid}"),
        None => format!("C-MOVE of study {study_uid}"),
    };
    // Every address: the PACS connects from wherever it runs.
    let listener = TcpListener::bind(("0.0.0.0", store_port)).map_err(|e| PacsError::Listen {
        port: store_port,
        detail: e.to_string(),
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| PacsError::Listen {
            port: store_port,
            detail: e.to_string(),
        })?;
    let sink = Arc::new(Mutex::new(Sink::new(dir)?));
    let received = Arc::new(Mutex::new(Received::default()));
    let ended = Arc::new(AtomicBool::new(false));
    let scp = {
        let (sink, received, ended) = (sink.clone(), received.clone(), ended.clone());
        let ae = peer.calling_ae.clone();
        std::thread::spawn(move || store_scp(listener, &ae, &sink, &received, &ended))
    };
    let moved = move_request(peer, study_uid, series_uid, &what, &sink, &mut progress);
    ended.store(true, Ordering::SeqCst);
    let _ = scp.join();
    let count = sink.lock().map(|s| s.count()).unwrap_or(0);
    let problems = received
        .lock()
        .map(|r| r.problems.join("; "))
        .unwrap_or_default();
    let counts = moved.map_err(|e| match e {
        PacsError::DimseStatus {
            status: 0xA801,
            server,
            ..
        } => PacsError::Association {
            server,
            detail: format!(
                "the PACS does not know the move destination `{}`: register our AE title with this host and port {store_port}",
                peer.calling_ae
            ),
        },
        other => other,
    })?;
    if counts.failed > 0 || !problems.is_empty() {
        return Err(PacsError::NotStored {
            server,
            what,
            detail: format!(
                "{} instance(s) failed, {count} arrived{}",
                counts.failed,
                if problems.is_empty() {
                    String::new()
                } else {
                    format!(" ({problems})")
                }
            ),
        });
    }
    if count == 0 {
        return Err(PacsError::NotFound {
            server,
            what: format!("any instance of the {what}"),
        });
    }
    let sink = Arc::try_unwrap(sink)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .ok_or_else(|| PacsError::NotStored {
            server: server.clone(),
            what: what.clone(),
            detail: "the storage SCP still holds the folder".into(),
        })?;
    sink.finish(&server, study_uid, series_uid)
}

/// The sub-operation counts of the final C-MOVE response.
struct Counts {
    failed: u16,
}

/// The move association: the request, then the PACS's pending answers until the final one.
fn move_request(
    peer: &DimsePeer,
    study_uid: &str,
    series_uid: Option<&str>,
    what: &str,
    sink: &Mutex<Sink>,
    progress: &mut impl FnMut(usize) -> ControlFlow<()>,
) -> Result<Counts, PacsError> {
    let model = uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_MOVE;
    let mut a = crate::dimse::connect(peer, model)?;
    let request = command(vec![
        DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, model),
        DataElement::new(
            tags::COMMAND_FIELD,
            VR::US,
            dicom_core::dicom_value!(U16, [0x0021]),
        ),
        DataElement::new(tags::MESSAGE_ID, VR::US, dicom_core::dicom_value!(U16, [1])),
        DataElement::new(
            tags::PRIORITY,
            VR::US,
            dicom_core::dicom_value!(U16, [0x0000]),
        ),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            dicom_core::dicom_value!(U16, [0x0001]),
        ),
        DataElement::new(
            tags::MOVE_DESTINATION,
            VR::AE,
            PrimitiveValue::from(peer.calling_ae.as_str()),
        ),
    ])?;
    let identifier = a.write_dataset(
        &retrieve_identifier(study_uid, Target::of(series_uid)),
        what,
    )?;
    a.send(PDataValueType::Command, request)?;
    a.send(PDataValueType::Data, identifier)?;
    loop {
        let (response, _) = a.receive_command(what)?;
        let count = sink.lock().map(|s| s.count()).unwrap_or(0);
        match status(&response) {
            Some(0xFF00) => {
                if progress(count).is_break() {
                    a.abort();
                    return Err(PacsError::Cancelled {
                        server: peer.name(),
                        what: what.to_string(),
                        instances: count,
                    });
                }
            }
            // Success, or a warning (some sub-operations failed or warned: counted below).
            Some(0x0000 | 0xB000) => {
                let failed = response
                    .get(tags::NUMBER_OF_FAILED_SUBOPERATIONS)
                    .and_then(|e| e.to_int::<u16>().ok())
                    .unwrap_or(0);
                a.release();
                return Ok(Counts { failed });
            }
            Some(code) => {
                a.release();
                return Err(PacsError::DimseStatus {
                    server: peer.name(),
                    what: what.to_string(),
                    status: code,
                });
            }
            None => {
                return Err(PacsError::Malformed {
                    server: peer.name(),
                    what: what.to_string(),
                    detail: "a C-MOVE response without a status".into(),
                })
            }
        }
    }
}

/// Accepts the PACS's associations (called with our AE title) until the move has ended, writing
/// each C-STORE's instance into the sink.
fn store_scp(
    listener: TcpListener,
    ae: &str,
    sink: &Mutex<Sink>,
    received: &Mutex<Received>,
    ended: &AtomicBool,
) {
    let mut options = ServerAssociationOptions::new()
        .accept_called_ae_title()
        .ae_title(ae)
        .read_timeout(POLL)
        .write_timeout(crate::timeouts::answer());
    for class in crate::cget::STORAGE {
        options = options.with_abstract_syntax(class);
    }
    let problem = |text: String| {
        if let Ok(mut r) = received.lock() {
            r.problems.push(text);
        }
    };
    while !ended.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, from)) => {
                let _ = stream.set_nonblocking(false);
                match options.establish(stream) {
                    Ok(association) => {
                        if let Err(e) = receive_instances(association, sink, ended) {
                            problem(format!("the association from {from}: {e}"));
                        }
                    }
                    Err(e) => problem(format!("an association from {from} refused: {e}")),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL / 4),
            Err(e) => {
                problem(format!("the storage port stopped accepting: {e}"));
                return;
            }
        }
    }
}

/// One association of C-STOREs: each dataset written, each answered; until the PACS releases
/// or aborts it, or the move has ended (the PACS may keep it open for reuse).
fn receive_instances(
    mut association: ServerAssociation<TcpStream>,
    sink: &Mutex<Sink>,
    ended: &AtomicBool,
) -> Result<(), String> {
    let contexts: Vec<(u8, String)> = association
        .presentation_contexts()
        .iter()
        .map(|pc| (pc.id, pc.transfer_syntax.trim_end_matches('\0').to_string()))
        .collect();
    let mut command_bytes = Vec::new();
    let mut data_bytes = Vec::new();
    let mut storing: Option<StoreRequest> = None;
    loop {
        let pdu = match association.receive() {
            Ok(pdu) => pdu,
            Err(e) if crate::dimse::timed_out(&e) => {
                if ended.load(Ordering::SeqCst) {
                    return Ok(());
                }
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        let values = match pdu {
            Pdu::PData { data } => data,
            Pdu::ReleaseRQ => {
                let _ = association.send(&Pdu::ReleaseRP);
                return Ok(());
            }
            Pdu::AbortRQ { source } => return Err(format!("aborted ({source:?})")),
            other => return Err(format!("unexpected PDU {other:?}")),
        };
        for value in values {
            match value.value_type {
                PDataValueType::Command => {
                    command_bytes.extend_from_slice(&value.data);
                    if !value.is_last {
                        continue;
                    }
                    let cmd = read_command(&std::mem::take(&mut command_bytes))?;
                    let field = cmd
                        .get(tags::COMMAND_FIELD)
                        .and_then(|e| e.to_int::<u16>().ok());
                    if field != Some(0x0001) {
                        return Err(format!("a command other than C-STORE: {field:?}"));
                    }
                    storing = Some(StoreRequest::from_command(
                        &cmd,
                        value.presentation_context_id,
                    ));
                }
                PDataValueType::Data => {
                    data_bytes.extend_from_slice(&value.data);
                    if !value.is_last {
                        continue;
                    }
                    let dataset = std::mem::take(&mut data_bytes);
                    let Some(store) = storing.take() else {
                        return Err("a dataset without a C-STORE".into());
                    };
                    let context = store.context;
                    let ts = contexts
                        .iter()
                        .find(|(id, _)| *id == context)
                        .map(|(_, ts)| ts.clone())
                        .ok_or_else(|| format!("an instance on unknown context {context}"))?;
                    let file = store.file(&ts, &dataset)?;
                    let written = match sink.lock() {
                        Ok(mut s) => s.add(&file).map_err(|e| e.to_string()),
                        Err(_) => Err("the folder's writer failed".to_string()),
                    };
                    let response = store.response(written.is_ok()).map_err(|e| e.to_string())?;
                    association.send(&response).map_err(|e| e.to_string())?;
                    written?;
                }
            }
        }
    }
}
