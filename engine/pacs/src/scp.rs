//! The storage SCP's side of a retrieval, shared by C-GET (the instances come back on our own
//! association) and C-MOVE (on the PACS's association to our listening port): an incoming
//! C-STORE's dataset written as a DICOM file, and the C-STORE response.

use dicom_core::{dicom_value, DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::FileMetaTableBuilder;

use crate::dimse::command;
use crate::PacsError;

/// The file as stored: preamble, magic, meta group, then the dataset's bytes as they came
/// (already in the negotiated transfer syntax `ts`).
pub(crate) fn instance_file(
    class: &str,
    instance: &str,
    ts: &str,
    dataset: &[u8],
) -> Result<Vec<u8>, String> {
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(class)
        .media_storage_sop_instance_uid(instance)
        .transfer_syntax(ts)
        .build()
        .map_err(|e| format!("instance {instance}: {e}"))?;
    let mut file = vec![0u8; 128];
    file.extend_from_slice(b"DICM");
    meta.write(&mut file)
        .map_err(|e| format!("instance {instance}: {e}"))?;
    file.extend_from_slice(dataset);
    Ok(file)
}

/// The C-STORE response to message `message` with status `code`.
pub(crate) fn store_response(
    class: &str,
    instance: &str,
    message: u16,
    code: u16,
) -> Result<Vec<u8>, PacsError> {
    command(vec![
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(class),
        ),
        DataElement::new(tags::COMMAND_FIELD, VR::US, dicom_value!(U16, [0x8001])),
        DataElement::new(
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            VR::US,
            dicom_value!(U16, [message]),
        ),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            dicom_value!(U16, [0x0101]),
        ),
        DataElement::new(tags::STATUS, VR::US, dicom_value!(U16, [code])),
        DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(instance),
        ),
    ])
}
