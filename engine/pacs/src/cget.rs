//! Retrieval over DIMSE with C-GET (Study Root): the PACS sends each instance back on the same
//! association as a C-STORE sub-operation, for which we take the storage SCP role (negotiated
//! per storage SOP class). No listening port is needed, unlike C-MOVE.

use std::ops::ControlFlow;
use std::path::Path;

use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_ul::association::client::ClientAssociationOptions;
use dicom_ul::pdu::{PDataValueType, Pdu, PresentationContextResultReason};

use crate::dimse::{association_error, pdata, query_request, retrieve_identifier, status, Target};
use crate::retrieve::{Retrieved, Sink};
use crate::scp::StoreRequest;
use crate::server::DimsePeer;
use crate::PacsError;

/// The storage SOP classes we accept back: the cross-sectional images, their derived objects
/// and the common projection ones (a C-GET can only return classes negotiated up front).
pub(crate) const STORAGE: [&str; 18] = [
    "1.2.840.10008.5.1.4.1.1.2",     // CT Image
    "1.2.840.10008.5.1.4.1.1.2.1",   // Enhanced CT Image
    "1.2.840.10008.5.1.4.1.1.4",     // MR Image
    "1.2.840.10008.5.1.4.1.1.4.1",   // Enhanced MR Image
    "1.2.840.10008.5.1.4.1.1.7",     // Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.66.4",  // Segmentation
    "1.2.840.10008.5.1.4.1.1.88.11", // Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22", // Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33", // Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34", // Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.128",   // PET Image
    "1.2.840.10008.5.1.4.1.1.20",    // NM Image
    "1.2.840.10008.5.1.4.1.1.6.1",   // Ultrasound Image
    "1.2.840.10008.5.1.4.1.1.1",     // CR Image
    "1.2.840.10008.5.1.4.1.1.1.1",   // Digital X-Ray Image (presentation)
    "1.2.840.10008.5.1.4.1.1.1.2",   // Digital Mammography (presentation)
    "1.2.840.10008.5.1.4.1.1.12.1",  // X-Ray Angiographic Image
    "1.2.840.10008.5.1.4.1.1.481.3", // RT Structure Set
];
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";

/// Retrieves a study, or one of its series, into `dir` with C-GET; `progress` is told the count
/// of instances written so far and may stop the transfer (the association is then aborted).
pub fn retrieve(
    peer: &DimsePeer,
    study_uid: &str,
    series_uid: Option<&str>,
    dir: &Path,
    progress: impl FnMut(usize) -> ControlFlow<()>,
) -> Result<Retrieved, PacsError> {
    get(peer, study_uid, Target::of(series_uid), dir, progress)
}

/// Retrieves one instance of a series into `dir` with C-GET (a series' preview).
pub fn retrieve_instance(
    peer: &DimsePeer,
    study_uid: &str,
    series_uid: &str,
    instance_uid: &str,
    dir: &Path,
) -> Result<Retrieved, PacsError> {
    get(
        peer,
        study_uid,
        Target::Instance(series_uid, instance_uid),
        dir,
        |_| ControlFlow::Continue(()),
    )
}

fn get(
    peer: &DimsePeer,
    study_uid: &str,
    target: Target<'_>,
    dir: &Path,
    mut progress: impl FnMut(usize) -> ControlFlow<()>,
) -> Result<Retrieved, PacsError> {
    let server = peer.name();
    let series_uid = target.series();
    let what = match target {
        Target::Study => format!("C-GET of study {study_uid}"),
        Target::Series(s) => format!("C-GET of series {s} of study {study_uid}"),
        Target::Instance(s, i) => format!("C-GET of instance {i} of series {s}"),
    };
    let get_model = uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_GET;
    let mut options = ClientAssociationOptions::new()
        .with_presentation_context(get_model, vec![IMPLICIT_LE, EXPLICIT_LE])
        .calling_ae_title(peer.calling_ae.as_str())
        .called_ae_title(peer.called_ae.as_str())
        .connection_timeout(crate::timeouts::answer())
        .read_timeout(crate::timeouts::answer())
        .write_timeout(crate::timeouts::answer());
    for class in STORAGE {
        options = options
            .with_presentation_context(class, vec![EXPLICIT_LE, IMPLICIT_LE])
            .with_role_selection(class, false, true);
    }
    let mut association = options
        .establish_with(&peer.address())
        .map_err(|e| association_error(&server, e))?;
    let contexts: Vec<_> = association
        .presentation_contexts()
        .iter()
        .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
        .cloned()
        .collect();
    let malformed = |detail: String| PacsError::Malformed {
        server: server.clone(),
        what: what.clone(),
        detail,
    };
    let Some(get_context) = contexts
        .iter()
        .find(|pc| pc.abstract_syntax.trim_end_matches('\0') == get_model)
    else {
        let _ = association.abort();
        return Err(PacsError::Association {
            server,
            detail: "the peer does not accept C-GET (Study Root); it may offer C-MOVE only (retrieve with --store-port P, a port the PACS knows for our AE title)".into(),
        });
    };
    let request = query_request(get_model, 0x0010)?;
    let identifier = retrieve_identifier(study_uid, target);
    let ts = dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(get_context.transfer_syntax.trim_end_matches('\0'))
        .ok_or_else(|| {
            malformed(format!(
                "unknown transfer syntax {}",
                get_context.transfer_syntax
            ))
        })?;
    let mut data = Vec::new();
    identifier
        .write_dataset_with_ts(&mut data, ts)
        .map_err(|e| malformed(format!("could not encode the request: {e}")))?;
    for (kind, bytes) in [
        (PDataValueType::Command, request),
        (PDataValueType::Data, data),
    ] {
        association
            .send(&pdata(get_context.id, kind, bytes))
            .map_err(|e| association_error(&server, e))?;
    }

    let mut sink = Sink::new(dir)?;
    let mut command_bytes = Vec::new();
    let mut data_bytes = Vec::new();
    let mut storing: Option<StoreRequest> = None;
    loop {
        let pdu = association
            .receive()
            .map_err(|e| association_error(&server, e))?;
        let values = match pdu {
            Pdu::PData { data } => data,
            Pdu::AbortRQ { source } => {
                return Err(PacsError::Association {
                    server,
                    detail: format!(
                        "aborted by the peer during the {what} after {} instance(s) ({source:?})",
                        sink.count()
                    ),
                })
            }
            other => return Err(malformed(format!("unexpected PDU {other:?}"))),
        };
        for value in values {
            match value.value_type {
                PDataValueType::Command => {
                    command_bytes.extend_from_slice(&value.data);
                    if !value.is_last {
                        continue;
                    }
                    let cmd = crate::dimse::read_command(&command_bytes)
                        .map_err(|e| malformed(format!("a command that does not parse: {e}")))?;
                    command_bytes.clear();
                    let field = cmd
                        .get(tags::COMMAND_FIELD)
                        .and_then(|e| e.to_int::<u16>().ok());
                    match field {
                        Some(0x0001) => {
                            storing = Some(StoreRequest::from_command(
                                &cmd,
                                value.presentation_context_id,
                            ));
                        }
                        Some(0x8010) => match status(&cmd) {
                            Some(0xFF00) => {}
                            Some(0x0000) => {
                                let _ = association.release();
                                if sink.count() == 0 {
                                    return Err(PacsError::NotFound {
                                        server,
                                        what: format!("any instance of the {what}"),
                                    });
                                }
                                return sink.finish(&server, study_uid, series_uid);
                            }
                            Some(code) => {
                                let _ = association.release();
                                return Err(PacsError::DimseStatus {
                                    server,
                                    what,
                                    status: code,
                                });
                            }
                            None => {
                                return Err(malformed("a C-GET response without a status".into()))
                            }
                        },
                        other => return Err(malformed(format!("an unexpected command {other:?}"))),
                    }
                }
                PDataValueType::Data => {
                    data_bytes.extend_from_slice(&value.data);
                    if !value.is_last {
                        continue;
                    }
                    let dataset = std::mem::take(&mut data_bytes);
                    let Some(store) = storing.take() else {
                        // A C-GET response's identifier (failed instances): nothing to keep.
                        continue;
                    };
                    let context = store.context;
                    let ts = contexts
                        .iter()
                        .find(|pc| pc.id == context)
                        .map(|pc| pc.transfer_syntax.trim_end_matches('\0').to_string())
                        .ok_or_else(|| {
                            malformed(format!("an instance on unknown context {context}"))
                        })?;
                    let file = store.file(&ts, &dataset).map_err(malformed)?;
                    let written = sink.add(&file);
                    association
                        .send(&store.response(written.is_ok())?)
                        .map_err(|e| association_error(&server, e))?;
                    written?;
                    if progress(sink.count()).is_break() {
                        let _ = association.abort();
                        return Err(PacsError::Cancelled {
                            server,
                            what,
                            instances: sink.count(),
                        });
                    }
                }
            }
        }
    }
}
