//! Sending instances with C-STORE, for a PACS reached over DIMSE (the storage SCU role): one
//! association with a presentation context per SOP class the files hold, each offered in the
//! file's own transfer syntax and the two uncompressed ones; every instance goes in a syntax the
//! peer accepted (re-encoded between the uncompressed ones where the peer chose the other).
//! dicom-ul's P-DATA writer splits a dataset into PDUs the peer's maximum length allows.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use dicom_core::{dicom_value, DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::{open_file, DefaultDicomObject};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::association::client::ClientAssociationOptions;
use dicom_ul::pdu::{PDataValueType, Pdu};

use crate::dimse::{association_error, command, status};
use crate::server::DimsePeer;
use crate::web::Stored;
use crate::PacsError;

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";

/// One file to send: its object and the UIDs its meta header names.
struct Instance {
    path: PathBuf,
    object: DefaultDicomObject,
    sop_class: String,
    sop_instance: String,
    transfer_syntax: String,
}

fn trimmed(s: &str) -> String {
    s.trim_end_matches(['\0', ' ']).to_string()
}

fn read(path: &Path) -> Result<Instance, PacsError> {
    let object = open_file(path).map_err(|e| {
        PacsError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not a DICOM file: {e}"),
            ),
        )
    })?;
    let meta = object.meta();
    Ok(Instance {
        path: path.to_path_buf(),
        sop_class: trimmed(&meta.media_storage_sop_class_uid),
        sop_instance: trimmed(&meta.media_storage_sop_instance_uid),
        transfer_syntax: trimmed(&meta.transfer_syntax),
        object,
    })
}

/// The transfer syntaxes offered for one SOP class: those its files are in, then the two
/// uncompressed ones every peer takes.
fn offered(instances: &[Instance], sop_class: &str) -> Vec<String> {
    let mut syntaxes: Vec<String> = Vec::new();
    let own = instances
        .iter()
        .filter(|i| i.sop_class == sop_class)
        .map(|i| i.transfer_syntax.clone());
    for ts in own.chain([EXPLICIT_LE.to_string(), IMPLICIT_LE.to_string()]) {
        if !syntaxes.contains(&ts) {
            syntaxes.push(ts);
        }
    }
    syntaxes
}

/// Whether a dataset in `from` can be written in `to` without decoding pixel data: the same
/// syntax, or both needing no codec (uncompressed, not deflated).
fn can_write(from: &str, to: &str) -> bool {
    let native = |uid: &str| {
        TransferSyntaxRegistry
            .get(uid)
            .is_some_and(|ts| ts.is_codec_free())
    };
    from == to || (native(from) && native(to))
}

/// A C-STORE-RQ command (0x0001) for one instance: medium priority, a dataset follows.
fn store_request(
    sop_class: &str,
    sop_instance: &str,
    message_id: u16,
) -> Result<Vec<u8>, PacsError> {
    command(vec![
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(sop_class),
        ),
        DataElement::new(tags::COMMAND_FIELD, VR::US, dicom_value!(U16, [0x0001])),
        DataElement::new(tags::MESSAGE_ID, VR::US, dicom_value!(U16, [message_id])),
        DataElement::new(tags::PRIORITY, VR::US, dicom_value!(U16, [0x0000])),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            dicom_value!(U16, [0x0000]),
        ),
        DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(sop_instance),
        ),
    ])
}

/// Sends DICOM files to a DIMSE peer with C-STORE. Every instance must be stored (a warning
/// status, B000H-BFFFH, counts as stored): the first refusal stops the transfer with an error
/// naming the file and the status; instances sent before it stay on the peer.
pub fn store(peer: &DimsePeer, files: &[PathBuf]) -> Result<Stored, PacsError> {
    let server = peer.name();
    let instances = files
        .iter()
        .map(|f| read(f))
        .collect::<Result<Vec<_>, _>>()?;
    let classes: BTreeSet<String> = instances.iter().map(|i| i.sop_class.clone()).collect();
    let mut options = ClientAssociationOptions::new()
        .calling_ae_title(peer.calling_ae.as_str())
        .called_ae_title(peer.called_ae.as_str())
        .connection_timeout(crate::timeouts::answer())
        .read_timeout(crate::timeouts::answer())
        .write_timeout(crate::timeouts::answer());
    for class in &classes {
        options = options.with_presentation_context(class.clone(), offered(&instances, class));
    }
    let mut association = options
        .establish_with(&peer.address())
        .map_err(|e| association_error(&server, e))?;
    let contexts = association.presentation_contexts().to_vec();
    let mut stored = 0;
    for (n, instance) in instances.iter().enumerate() {
        let what = format!("C-STORE of {}", instance.path.display());
        // The accepted context for this class whose syntax the file can be written in.
        let Some((context, ts)) = contexts
            .iter()
            .filter(|pc| trimmed(&pc.abstract_syntax) == instance.sop_class)
            .map(|pc| (pc.id, trimmed(&pc.transfer_syntax)))
            .find(|(_, ts)| can_write(&instance.transfer_syntax, ts))
        else {
            let _ = association.abort();
            return Err(PacsError::NotStored {
                server,
                what,
                detail: format!(
                    "the peer accepts SOP class {} in none of the offered transfer syntaxes ({} stored before)",
                    instance.sop_class, stored
                ),
            });
        };
        let syntax = TransferSyntaxRegistry
            .get(&ts)
            .ok_or_else(|| PacsError::Malformed {
                server: server.clone(),
                what: what.clone(),
                detail: format!("the peer chose an unknown transfer syntax {ts}"),
            })?;
        let message_id = (n % usize::from(u16::MAX)) as u16 + 1;
        let request = store_request(&instance.sop_class, &instance.sop_instance, message_id)?;
        let mut dataset = Vec::new();
        instance
            .object
            .write_dataset_with_ts(&mut dataset, syntax)
            .map_err(|e| PacsError::Malformed {
                server: server.clone(),
                what: what.clone(),
                detail: format!("could not encode the instance: {e}"),
            })?;
        association
            .send(&crate::dimse::pdata(
                context,
                PDataValueType::Command,
                request,
            ))
            .map_err(|e| association_error(&server, e))?;
        {
            let mut writer = association.send_pdata(context);
            writer
                .write_all(&dataset)
                .and_then(|_| writer.finish())
                .map_err(|e| PacsError::Association {
                    server: server.clone(),
                    detail: format!("sending {}: {e}", instance.path.display()),
                })?;
        }
        let response = match association
            .receive()
            .map_err(|e| association_error(&server, e))?
        {
            Pdu::PData { data } if !data.is_empty() => crate::dimse::read_command(&data[0].data)
            .map_err(|e| PacsError::Malformed {
                server: server.clone(),
                what: what.clone(),
                detail: format!("a response that does not parse: {e}"),
            })?,
            Pdu::AbortRQ { source } => {
                return Err(PacsError::Association {
                    server,
                    detail: format!(
                        "aborted by the peer during {what} ({source:?}), {stored} instance(s) stored before"
                    ),
                })
            }
            other => {
                let _ = association.abort();
                return Err(PacsError::Malformed {
                    server,
                    what,
                    detail: format!("unexpected PDU {other:?}"),
                });
            }
        };
        match status(&response) {
            Some(0) | Some(0xB000..=0xBFFF) => stored += 1,
            Some(code) => {
                let _ = association.abort();
                return Err(PacsError::DimseStatus {
                    server,
                    what: format!("{what} ({stored} instance(s) stored before)"),
                    status: code,
                });
            }
            None => {
                let _ = association.abort();
                return Err(PacsError::Malformed {
                    server,
                    what,
                    detail: "the response has no status".into(),
                });
            }
        }
    }
    let _ = association.release();
    Ok(Stored { stored })
}
