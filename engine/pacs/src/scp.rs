//! The storage SCP's side of a retrieval, shared by C-GET (the instances come back on our own
//! association) and C-MOVE (on the PACS's association to our listening port): an incoming
//! C-STORE's dataset written as a DICOM file, and the C-STORE response.

use dicom_core::{dicom_value, DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::FileMetaTableBuilder;

use dicom_ul::pdu::{PDataValueType, Pdu};

use crate::dimse::{command, pdata, text, Object};
use crate::PacsError;

/// A C-STORE request whose dataset is arriving.
pub(crate) struct StoreRequest {
    /// The presentation context it came on (its transfer syntax is the dataset's).
    pub context: u8,
    class: String,
    instance: String,
    message: u16,
}

impl StoreRequest {
    pub(crate) fn from_command(command: &Object, context: u8) -> StoreRequest {
        StoreRequest {
            context,
            class: text(command, tags::AFFECTED_SOP_CLASS_UID),
            instance: text(command, tags::AFFECTED_SOP_INSTANCE_UID),
            message: command
                .get(tags::MESSAGE_ID)
                .and_then(|e| e.to_int::<u16>().ok())
                .unwrap_or(0),
        }
    }

    /// The instance as a DICOM file, its dataset in `ts`, the context's transfer syntax.
    pub(crate) fn file(&self, ts: &str, dataset: &[u8]) -> Result<Vec<u8>, String> {
        instance_file(&self.class, &self.instance, ts, dataset)
    }

    /// The response PDU: stored, or out of resources (A700H) when it could not be written.
    pub(crate) fn response(&self, stored: bool) -> Result<Pdu, PacsError> {
        let code = if stored { 0x0000 } else { 0xA700 };
        let response = store_response(&self.class, &self.instance, self.message, code)?;
        Ok(pdata(self.context, PDataValueType::Command, response))
    }
}

/// The file as stored: preamble, magic, meta group, then the dataset's bytes as they came
/// (already in the negotiated transfer syntax `ts`).
fn instance_file(class: &str, instance: &str, ts: &str, dataset: &[u8]) -> Result<Vec<u8>, String> {
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
fn store_response(
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
