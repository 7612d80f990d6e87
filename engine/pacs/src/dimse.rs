//! DIMSE over dicom-rs's `dicom-ul` associations: C-ECHO and C-FIND (Study Root, study and
//! series levels; a page of studies ends with a C-CANCEL). The command sets are built as
//! dicom-rs's own `echoscu` and `findscu` build them; every association has connect, read and
//! write timeouts.

use dicom_core::{dicom_value, DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::{mem::InMemDicomObject, StandardDataDictionary};
use dicom_transfer_syntax_registry::{entries, TransferSyntaxRegistry};
use dicom_ul::association::client::{ClientAssociation, ClientAssociationOptions};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use std::io::Read;

use crate::server::DimsePeer;
use crate::{PacsError, SeriesInfo, StudyInfo, StudyQuery};

pub(crate) type Object = InMemDicomObject<StandardDataDictionary>;
pub(crate) type Element = dicom_object::mem::InMemElement<StandardDataDictionary>;

/// An open association and the presentation context it negotiated.
pub(crate) struct Association {
    inner: ClientAssociation<std::net::TcpStream>,
    context: u8,
    transfer_syntax: String,
    server: String,
    calling_ae: String,
}

pub(crate) fn connect(peer: &DimsePeer, abstract_syntax: &str) -> Result<Association, PacsError> {
    let server = peer.name();
    let inner = ClientAssociationOptions::new()
        .with_abstract_syntax(abstract_syntax)
        .calling_ae_title(peer.calling_ae.as_str())
        .called_ae_title(peer.called_ae.as_str())
        .connection_timeout(crate::timeouts::answer())
        .read_timeout(crate::timeouts::answer())
        .write_timeout(crate::timeouts::answer())
        .establish_with(&peer.address())
        .map_err(|e| association_error(&server, e))?;
    let Some(pc) = inner.presentation_contexts().first() else {
        let _ = inner.abort();
        return Err(PacsError::Association {
            server,
            detail: format!("no presentation context accepted for {abstract_syntax}"),
        });
    };
    Ok(Association {
        context: pc.id,
        transfer_syntax: pc.transfer_syntax.trim_end_matches('\0').to_string(),
        inner,
        server,
        calling_ae: peer.calling_ae.clone(),
    })
}

/// Sorts dicom-ul's errors into refused connections, timeouts and rejections.
pub(crate) fn association_error(server: &str, e: dicom_ul::association::Error) -> PacsError {
    use dicom_ul::association::Error as E;
    let detail = error_chain(&e);
    match e {
        E::Connect { .. } | E::ToAddress { .. } => PacsError::Connect {
            server: server.to_string(),
            // The cause alone: "could not connect" is said once.
            detail: std::error::Error::source(&e)
                .map(error_chain)
                .unwrap_or(detail),
        },
        _ if matches!(e, E::Timeout { .. }) || timed_out(&e) => PacsError::Timeout {
            server: server.to_string(),
            what: "the association".into(),
            seconds: crate::timeouts::answer().as_secs(),
        },
        _ if answered_http(&e) => PacsError::Association {
            server: server.to_string(),
            detail: "the peer answered in HTTP, not DICOM: is this the DICOMweb port? (then write http://host:port/path-to-dicom-web)".into(),
        },
        _ => PacsError::Association {
            server: server.to_string(),
            detail,
        },
    }
}

/// Whether the peer's first PDU was an HTTP status line: read as a PDU, "HTTP/1.1" is type `H`
/// with the length "TP/1", far over any maximum, so dicom-ul refuses it as too large.
fn answered_http(e: &(dyn std::error::Error + 'static)) -> bool {
    use dicom_ul::pdu::ReadError;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(ReadError::PduTooLarge { pdu_length, .. }) = s.downcast_ref::<ReadError>() {
            return *pdu_length == u32::from_be_bytes(*b"TP/1");
        }
        source = s.source();
    }
    false
}

/// A DIMSE command set (implicit VR little endian, no sequences). Each element's declared length
/// is checked against the bytes there first: dicom-object's reader sets aside the declared length
/// before reading it, so a peer's garbage (say, text read as a length of 500 MB) would cost
/// seconds and memory before failing.
pub(crate) fn read_command(bytes: &[u8]) -> Result<Object, String> {
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + 8) else {
            return Err(format!("{} stray byte(s) at the end", bytes.len() - at));
        };
        let length = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let group = u16::from_le_bytes([header[0], header[1]]);
        if group != 0x0000 {
            return Err(format!(
                "an element of group {group:04X}H, not a command's 0000H"
            ));
        }
        if length > bytes.len() - at - 8 {
            return Err(format!(
                "an element declares {length} bytes where {} remain",
                bytes.len() - at - 8
            ));
        }
        at += 8 + length;
    }
    Object::read_dataset_with_ts(bytes, &entries::IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .map_err(|e| e.to_string())
}

/// Whether a socket's read or write timeout ended it: Linux reports an expired `SO_RCVTIMEO` as
/// `WouldBlock` ("Resource temporarily unavailable"), which dicom-ul passes on as a failed read.
pub(crate) fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                return true;
            }
        }
        source = s.source();
    }
    false
}

/// An error and its sources, one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Association {
    pub(crate) fn send(&mut self, kind: PDataValueType, data: Vec<u8>) -> Result<(), PacsError> {
        self.inner
            .send(&pdata(self.context, kind, data))
            .map_err(|e| association_error(&self.server, e))
    }

    fn malformed(&self, what: &str, detail: String) -> PacsError {
        PacsError::Malformed {
            server: self.server.clone(),
            what: what.to_string(),
            detail,
        }
    }

    /// The next command from the peer, and a dataset that came in the same PDU.
    pub(crate) fn receive_command(
        &mut self,
        what: &str,
    ) -> Result<(Object, Option<Vec<u8>>), PacsError> {
        let pdu = self
            .inner
            .receive()
            .map_err(|e| association_error(&self.server, e))?;
        match pdu {
            Pdu::PData { mut data } if !data.is_empty() => {
                let dataset = (data.len() > 1).then(|| data.remove(1).data);
                let command = read_command(&data[0].data)
                    .map_err(|e| self.malformed(what, format!("a command that does not parse: {e}")))?;
                Ok((command, dataset))
            }
            Pdu::AbortRQ { source } => Err(PacsError::Association {
                server: self.server.clone(),
                detail: format!(
                    "aborted by the peer during {what} ({source:?}); a PACS usually does this when it does not know our AE title `{}`: ask for it to be registered",
                    self.calling_ae
                ),
            }),
            other => Err(self.malformed(what, format!("unexpected PDU {other:?}"))),
        }
    }

    /// The negotiated transfer syntax, which the identifiers and matches are encoded in.
    fn transfer_syntax(
        &self,
        what: &str,
    ) -> Result<&'static dicom_encoding::TransferSyntax, PacsError> {
        TransferSyntaxRegistry
            .get(&self.transfer_syntax)
            .ok_or_else(|| {
                self.malformed(
                    what,
                    format!("unknown transfer syntax {}", self.transfer_syntax),
                )
            })
    }

    fn read_dataset(&mut self, bytes: Vec<u8>, what: &str) -> Result<Object, PacsError> {
        let ts = self.transfer_syntax(what)?;
        Object::read_dataset_with_ts(bytes.as_slice(), ts)
            .map_err(|e| self.malformed(what, format!("a dataset that does not parse: {e}")))
    }

    pub(crate) fn write_dataset(&self, object: &Object, what: &str) -> Result<Vec<u8>, PacsError> {
        let ts = self.transfer_syntax(what)?;
        let mut out = Vec::new();
        object
            .write_dataset_with_ts(&mut out, ts)
            .map_err(|e| self.malformed(what, format!("could not encode the request: {e}")))?;
        Ok(out)
    }

    pub(crate) fn abort(self) {
        let _ = self.inner.abort();
    }

    pub(crate) fn release(self) {
        let _ = self.inner.release();
    }
}

pub(crate) fn command(elements: Vec<Element>) -> Result<Vec<u8>, PacsError> {
    let object = Object::command_from_element_iter(elements);
    let mut out = Vec::new();
    object
        .write_dataset_with_ts(&mut out, &entries::IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .map_err(|e| PacsError::Malformed {
            server: String::new(),
            what: "a command".into(),
            detail: e.to_string(),
        })?;
    Ok(out)
}

/// A C-FIND-RQ (0x0020) or C-GET-RQ (0x0010) command: message 1, medium priority, an
/// identifier follows.
pub(crate) fn query_request(sop_class: &str, command_field: u16) -> Result<Vec<u8>, PacsError> {
    command(vec![
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(sop_class),
        ),
        DataElement::new(
            tags::COMMAND_FIELD,
            VR::US,
            dicom_value!(U16, [command_field]),
        ),
        DataElement::new(tags::MESSAGE_ID, VR::US, dicom_value!(U16, [1])),
        DataElement::new(tags::PRIORITY, VR::US, dicom_value!(U16, [0x0000])),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            dicom_value!(U16, [0x0001]),
        ),
    ])
}

/// One P-DATA PDU carrying a whole command or dataset on presentation context `context`.
pub(crate) fn pdata(context: u8, kind: PDataValueType, data: Vec<u8>) -> Pdu {
    Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: context,
            value_type: kind,
            is_last: true,
            data,
        }],
    }
}

pub(crate) fn status(command: &Object) -> Option<u16> {
    command.get(tags::STATUS)?.to_int::<u16>().ok()
}

/// C-ECHO.
pub fn echo(peer: &DimsePeer) -> Result<(), PacsError> {
    let mut a = connect(peer, uids::VERIFICATION)?;
    let request = command(vec![
        DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, uids::VERIFICATION),
        DataElement::new(tags::COMMAND_FIELD, VR::US, dicom_value!(U16, [0x0030])),
        DataElement::new(tags::MESSAGE_ID, VR::US, dicom_value!(U16, [1])),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            dicom_value!(U16, [0x0101]),
        ),
    ])?;
    a.send(PDataValueType::Command, request)?;
    let (response, _) = a.receive_command("C-ECHO")?;
    let code = status(&response);
    a.release();
    match code {
        Some(0) => Ok(()),
        Some(status) => Err(PacsError::DimseStatus {
            server: peer.name(),
            what: "C-ECHO".into(),
            status,
        }),
        None => Err(PacsError::Malformed {
            server: peer.name(),
            what: "C-ECHO".into(),
            detail: "the response has no status".into(),
        }),
    }
}

/// How a C-FIND ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindEnd {
    /// The peer sent every match.
    Complete,
    /// We had what we asked for and sent a C-CANCEL; the peer stopped (status FE00H). Matches it
    /// had sent before it read the cancel were read and dropped.
    Cancelled,
    /// The peer stopped on its own with FE00H (its own cap on the number of answers, as
    /// Orthanc's `LimitFindResults`): there are more matches than it sent.
    CutByPeer,
}

/// One C-FIND over an open association: every matching identifier, or with `at_most`, the first
/// that many. DIMSE has no paging, so a page is the start of the answer: once `at_most` matches
/// have come, a C-CANCEL asks the peer to stop, and the answers it had already sent are read
/// (and dropped) up to its final status, so the association stays in step for the next request.
/// Also returns how many matches were read in all.
fn find(
    a: &mut Association,
    identifier: &Object,
    what: &str,
    at_most: Option<usize>,
) -> Result<(Vec<Object>, FindEnd, usize), PacsError> {
    let request = query_request(
        uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND,
        0x0020,
    )?;
    let data = a.write_dataset(identifier, what)?;
    a.send(PDataValueType::Command, request)?;
    a.send(PDataValueType::Data, data)?;
    let mut matches = Vec::new();
    let (mut read, mut cancelled) = (0usize, false);
    loop {
        let (response, dataset) = a.receive_command(what)?;
        match status(&response) {
            Some(0) => return Ok((matches, FindEnd::Complete, read)),
            Some(0xFE00) if cancelled => return Ok((matches, FindEnd::Cancelled, read)),
            Some(0xFE00) => return Ok((matches, FindEnd::CutByPeer, read)),
            Some(0xFF00 | 0xFF01) => {
                let bytes = match dataset {
                    Some(b) => b,
                    None => {
                        let mut bytes = Vec::new();
                        a.inner
                            .receive_pdata()
                            .read_to_end(&mut bytes)
                            .map_err(|e| a.malformed(what, format!("reading a match: {e}")))?;
                        bytes
                    }
                };
                read += 1;
                if cancelled {
                    continue;
                }
                matches.push(a.read_dataset(bytes, what)?);
                if at_most.is_some_and(|n| matches.len() >= n) {
                    a.send(PDataValueType::Command, cancel_request()?)?;
                    cancelled = true;
                }
            }
            Some(status) => {
                return Err(PacsError::DimseStatus {
                    server: a.server.clone(),
                    what: what.to_string(),
                    status,
                })
            }
            None => return Err(a.malformed(what, "a response without a status".into())),
        }
    }
}

/// A C-CANCEL-RQ (0x0FFF) for the request [`query_request`] sent (message 1), no dataset.
fn cancel_request() -> Result<Vec<u8>, PacsError> {
    command(vec![
        DataElement::new(tags::COMMAND_FIELD, VR::US, dicom_value!(U16, [0x0FFF])),
        DataElement::new(
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            VR::US,
            dicom_value!(U16, [1]),
        ),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            dicom_value!(U16, [0x0101]),
        ),
    ])
}

pub(crate) fn text(object: &Object, tag: dicom_core::Tag) -> String {
    object
        .get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

pub(crate) fn key(tag: dicom_core::Tag, vr: VR, value: &str) -> Element {
    DataElement::new(tag, vr, PrimitiveValue::from(value))
}

/// The identifier of a C-GET or C-MOVE: a study, one of its series, or one instance of that.
pub(crate) fn retrieve_identifier(study_uid: &str, target: Target<'_>) -> Object {
    let level = match target {
        Target::Study => "STUDY",
        Target::Series(_) => "SERIES",
        Target::Instance(..) => "IMAGE",
    };
    let mut keys = vec![
        key(tags::QUERY_RETRIEVE_LEVEL, VR::CS, level),
        key(tags::STUDY_INSTANCE_UID, VR::UI, study_uid),
    ];
    match target {
        Target::Study => {}
        Target::Series(series) => keys.push(key(tags::SERIES_INSTANCE_UID, VR::UI, series)),
        Target::Instance(series, instance) => {
            keys.push(key(tags::SERIES_INSTANCE_UID, VR::UI, series));
            keys.push(key(tags::SOP_INSTANCE_UID, VR::UI, instance));
        }
    }
    Object::from_element_iter(keys)
}

/// What a C-GET or C-MOVE fetches of a study.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    Study,
    Series(&'a str),
    /// A series and one of its instances (a preview).
    Instance(&'a str, &'a str),
}

impl<'a> Target<'a> {
    pub(crate) fn of(series_uid: Option<&'a str>) -> Self {
        series_uid.map_or(Target::Study, Target::Series)
    }

    pub(crate) fn series(self) -> Option<&'a str> {
        match self {
            Target::Study => None,
            Target::Series(s) | Target::Instance(s, _) => Some(s),
        }
    }
}

/// The SOP instance UIDs of a series, in instance-number order (C-FIND at IMAGE level).
pub fn instances(
    peer: &DimsePeer,
    study_uid: &str,
    series_uid: &str,
) -> Result<Vec<String>, PacsError> {
    let mut a = connect(peer, uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND)?;
    let identifier = Object::from_element_iter([
        key(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "IMAGE"),
        key(tags::STUDY_INSTANCE_UID, VR::UI, study_uid),
        key(tags::SERIES_INSTANCE_UID, VR::UI, series_uid),
        key(tags::SOP_INSTANCE_UID, VR::UI, ""),
        key(tags::INSTANCE_NUMBER, VR::IS, ""),
    ]);
    let what = format!("the instances of series {series_uid}");
    let mut found: Vec<(i64, String)> = find(&mut a, &identifier, &what, None)?
        .0
        .iter()
        .map(|d| {
            let number = text(d, tags::INSTANCE_NUMBER).trim().parse().unwrap_or(0);
            (number, text(d, tags::SOP_INSTANCE_UID))
        })
        .filter(|(_, uid)| !uid.is_empty())
        .collect();
    a.release();
    found.sort();
    Ok(found.into_iter().map(|(_, uid)| uid).collect())
}

/// Studies (Study Root C-FIND at STUDY level), then each study's series.
pub fn search(peer: &DimsePeer, query: &StudyQuery) -> Result<Vec<StudyInfo>, PacsError> {
    search_page(peer, query).map(|page| page.studies)
}

/// One page of a study search and how its C-FIND ended.
#[derive(Clone, Debug)]
pub struct Page {
    pub studies: Vec<StudyInfo>,
    /// Matches exist past this page: the one past it came, or the peer cut its answer.
    pub more: bool,
    pub ended: FindEnd,
    /// Study matches read off the association, those dropped after the cancel included.
    pub matches_read: usize,
}

/// A page of studies: the C-FIND asks for everything, and is cancelled once the page and one
/// study past it have come (that one says whether there are more). The page is cut from the
/// start of the answer, so paging relies on the peer listing matches in the same order each time,
/// as PACS do (Orthanc: the order of its index).
pub fn search_page(peer: &DimsePeer, query: &StudyQuery) -> Result<Page, PacsError> {
    let mut a = connect(peer, uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND)?;
    let given = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").to_string();
    let identifier = Object::from_element_iter([
        key(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "STUDY"),
        key(tags::STUDY_INSTANCE_UID, VR::UI, ""),
        key(tags::PATIENT_NAME, VR::PN, &given(&query.patient_name)),
        key(tags::PATIENT_ID, VR::LO, &given(&query.patient_id)),
        key(
            tags::STUDY_DATE,
            VR::DA,
            &query
                .date
                .as_ref()
                .map(|d| d.to_dicom())
                .unwrap_or_default(),
        ),
        key(tags::ACCESSION_NUMBER, VR::SH, &given(&query.accession)),
        key(tags::MODALITIES_IN_STUDY, VR::CS, &given(&query.modality)),
        key(tags::STUDY_DESCRIPTION, VR::LO, &given(&query.description)),
    ]);
    let limit = query.limit.max(1);
    let wanted = query.offset.saturating_add(limit).saturating_add(1);
    let (found, ended, matches_read) = find(&mut a, &identifier, "the study search", Some(wanted))?;
    let more = found.len() >= wanted || ended == FindEnd::CutByPeer;
    if ended == FindEnd::CutByPeer && query.offset >= found.len() {
        a.release();
        return Err(PacsError::PastPeerLimit {
            server: peer.name(),
            sent: found.len(),
            offset: query.offset + 1,
        });
    }
    let mut studies = Vec::new();
    for d in found.iter().skip(query.offset).take(limit) {
        let study_uid = text(d, tags::STUDY_INSTANCE_UID);
        let series_query = Object::from_element_iter([
            key(tags::QUERY_RETRIEVE_LEVEL, VR::CS, "SERIES"),
            key(tags::STUDY_INSTANCE_UID, VR::UI, &study_uid),
            key(tags::SERIES_INSTANCE_UID, VR::UI, ""),
            key(tags::MODALITY, VR::CS, ""),
            key(tags::SERIES_DESCRIPTION, VR::LO, ""),
            key(tags::SERIES_NUMBER, VR::IS, ""),
            key(tags::NUMBER_OF_SERIES_RELATED_INSTANCES, VR::IS, ""),
        ]);
        let what = format!("the series of study {study_uid}");
        let mut series: Vec<SeriesInfo> = find(&mut a, &series_query, &what, None)?
            .0
            .iter()
            .map(|s| SeriesInfo {
                series_uid: text(s, tags::SERIES_INSTANCE_UID),
                modality: text(s, tags::MODALITY),
                description: text(s, tags::SERIES_DESCRIPTION),
                number: text(s, tags::SERIES_NUMBER).trim().parse().ok(),
                instances: text(s, tags::NUMBER_OF_SERIES_RELATED_INSTANCES)
                    .trim()
                    .parse()
                    .ok(),
            })
            .collect();
        series.sort_by_key(|s| (s.number.unwrap_or(i64::MAX), s.series_uid.clone()));
        let modalities = text(d, tags::MODALITIES_IN_STUDY);
        studies.push(StudyInfo {
            patient_name: text(d, tags::PATIENT_NAME),
            patient_id: text(d, tags::PATIENT_ID),
            date: text(d, tags::STUDY_DATE),
            modalities: modalities
                .split('\\')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect(),
            description: text(d, tags::STUDY_DESCRIPTION),
            accession: text(d, tags::ACCESSION_NUMBER),
            study_uid,
            series,
        });
    }
    a.release();
    Ok(Page {
        studies,
        more,
        ended,
        matches_read,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_reads_and_lengths_past_the_end_are_refused_before_parsing() {
        let echo = command(vec![
            DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, uids::VERIFICATION),
            DataElement::new(tags::COMMAND_FIELD, VR::US, dicom_value!(U16, [0x0030])),
        ])
        .expect("encodes");
        let read = read_command(&echo).expect("reads back");
        assert_eq!(status(&read), None);
        assert_eq!(
            read.get(tags::COMMAND_FIELD)
                .and_then(|e| e.to_int::<u16>().ok()),
            Some(0x0030)
        );
        // Group 0000, element 0100, declaring 2 GB: refused by the length check.
        let mut huge = vec![0x00, 0x00, 0x00, 0x01];
        huge.extend_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
        huge.extend_from_slice(&[0x30, 0x00]);
        let e = read_command(&huge).expect_err("too long");
        assert!(
            e.contains("declares 2147483647 bytes where 2 remain"),
            "{e}"
        );
        let mut stray = echo.clone();
        stray.extend_from_slice(&[1, 2, 3]);
        assert!(read_command(&stray).expect_err("stray").contains("3 stray"));
        assert!(read_command(b"this is not a command set")
            .expect_err("text")
            .contains("group 6874H"));
    }
}
