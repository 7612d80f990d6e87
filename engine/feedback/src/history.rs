//! The answers given on one study, in the order they were asked, and the verdicts on their
//! findings. Switching slices shows the answers that belong to the slice.

use std::collections::HashMap;

use crate::record::{now_unix_ms, AskRecord, SliceRef, Verdict, VerdictEntry};

#[derive(Clone, Debug, Default)]
pub struct History {
    pub records: Vec<AskRecord>,
    /// (record id, finding index) -> the latest verdict.
    verdicts: HashMap<(u64, usize), VerdictEntry>,
    next_id: u64,
}

impl History {
    /// A fresh id for the next answer.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn push(&mut self, record: AskRecord) {
        self.next_id = self.next_id.max(record.id);
        self.records.push(record);
    }

    pub fn get(&self, id: u64) -> Option<&AskRecord> {
        self.records.iter().find(|r| r.id == id)
    }

    /// Answers asked on this slice (same series, plane and index), oldest first.
    pub fn for_slice<'a>(
        &'a self,
        slice: &'a SliceRef,
    ) -> impl Iterator<Item = &'a AskRecord> + 'a {
        self.records.iter().filter(move |r| {
            r.slice.series_uid == slice.series_uid
                && r.slice.plane == slice.plane
                && r.slice.index == slice.index
        })
    }

    /// Records a verdict (the last one given counts); `None` clears it.
    pub fn set_verdict(
        &mut self,
        record: u64,
        finding: usize,
        verdict: Option<Verdict>,
        reviewer: &str,
    ) -> Option<VerdictEntry> {
        match verdict {
            None => {
                self.verdicts.remove(&(record, finding));
                None
            }
            Some(verdict) => {
                let entry = VerdictEntry {
                    record,
                    finding,
                    verdict,
                    reviewer: reviewer.to_string(),
                    at_unix_ms: now_unix_ms(),
                };
                self.verdicts.insert((record, finding), entry.clone());
                Some(entry)
            }
        }
    }

    pub fn verdict(&self, record: u64, finding: usize) -> Option<Verdict> {
        self.verdicts.get(&(record, finding)).map(|e| e.verdict)
    }

    pub fn verdicts(&self) -> impl Iterator<Item = &VerdictEntry> {
        self.verdicts.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundglass_model::prompt::{Lang, Task};
    use groundglass_study::Plane;

    fn record(id: u64, index: usize) -> AskRecord {
        AskRecord {
            id,
            slice: SliceRef {
                series_uid: "1.2.3".into(),
                volume: 0,
                plane: Plane::Axial,
                index,
                size: [4, 4],
            },
            task: Task::Grounded,
            lang: Lang::En,
            question: None,
            clinical: None,
            semsam: false,
            model: "m".into(),
            created_unix_ms: 0,
            text: String::new(),
            findings: vec![],
            masks: vec![],
            tokens: 0,
            ttft_ms: 0.0,
            tok_per_s: 0.0,
            cancelled: false,
            input_spacing_mm: None,
            mark: None,
        }
    }

    #[test]
    fn answers_belong_to_their_slice_and_verdicts_to_their_finding() {
        let mut h = History::default();
        let a = h.next_id();
        h.push(record(a, 5));
        let b = h.next_id();
        h.push(record(b, 6));
        assert_ne!(a, b);
        let slice = h.records[0].slice.clone();
        assert_eq!(
            h.for_slice(&slice).map(|r| r.id).collect::<Vec<_>>(),
            vec![a]
        );
        h.set_verdict(a, 0, Some(Verdict::Accepted), "dr x");
        h.set_verdict(a, 0, Some(Verdict::Rejected), "dr y");
        assert_eq!(h.verdict(a, 0), Some(Verdict::Rejected));
        assert_eq!(h.verdict(b, 0), None);
        h.set_verdict(a, 0, None, "dr y");
        assert_eq!(h.verdict(a, 0), None);
    }
}
