//! What a search asks and what it finds, in the JSON shape `groundglass pacs search --json`
//! prints.

use serde::Serialize;

/// A study search. Empty fields match anything; names and descriptions take DICOM wildcards
/// (`*`, `?`).
#[derive(Clone, Debug, Default)]
pub struct StudyQuery {
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
    pub modality: Option<String>,
    pub date: Option<DateRange>,
    pub accession: Option<String>,
    pub description: Option<String>,
    /// At most this many studies (a page), from `offset`.
    pub limit: usize,
    pub offset: usize,
}

/// Study dates, inclusive, `YYYYMMDD`; either end may be open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateRange {
    pub from: Option<String>,
    pub to: Option<String>,
}

impl DateRange {
    /// `YYYYMMDD-YYYYMMDD`, `YYYYMMDD-`, `-YYYYMMDD` or one day `YYYYMMDD`.
    pub fn parse(given: &str) -> Result<DateRange, String> {
        let day = |s: &str| -> Result<Option<String>, String> {
            if s.is_empty() {
                return Ok(None);
            }
            let ok = s.len() == 8
                && s.bytes().all(|b| b.is_ascii_digit())
                && (1..=12).contains(&s[4..6].parse::<u32>().unwrap_or(0))
                && (1..=31).contains(&s[6..8].parse::<u32>().unwrap_or(0));
            if ok {
                Ok(Some(s.to_string()))
            } else {
                Err(format!("`{s}` is not a date YYYYMMDD"))
            }
        };
        let range = match given.trim().split_once('-') {
            Some((a, b)) => DateRange {
                from: day(a)?,
                to: day(b)?,
            },
            None => {
                let d = day(given.trim())?;
                DateRange {
                    from: d.clone(),
                    to: d,
                }
            }
        };
        if let (Some(a), Some(b)) = (&range.from, &range.to) {
            if a > b {
                return Err(format!("the range {given} ends before it starts"));
            }
        }
        if range.from.is_none() && range.to.is_none() {
            return Err("an empty date range".into());
        }
        Ok(range)
    }

    /// As DICOM matches a range (`A-B`, `A-`, `-B`, or the one day).
    pub fn to_dicom(&self) -> String {
        match (&self.from, &self.to) {
            (Some(a), Some(b)) if a == b => a.clone(),
            (a, b) => format!(
                "{}-{}",
                a.as_deref().unwrap_or(""),
                b.as_deref().unwrap_or("")
            ),
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StudyInfo {
    pub study_uid: String,
    pub patient_name: String,
    pub patient_id: String,
    pub date: String,
    pub modalities: Vec<String>,
    pub description: String,
    pub accession: String,
    pub series: Vec<SeriesInfo>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SeriesInfo {
    pub series_uid: String,
    pub modality: String,
    pub description: String,
    pub number: Option<i64>,
    pub instances: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_ranges_parse_as_dicom_matches_them() {
        let r = |s: &str| DateRange::parse(s).map(|r| r.to_dicom());
        assert_eq!(r("20200101-20201231"), Ok("20200101-20201231".into()));
        assert_eq!(r("20200101-"), Ok("20200101-".into()));
        assert_eq!(r("-20201231"), Ok("-20201231".into()));
        assert_eq!(r("20200101"), Ok("20200101".into()));
        assert!(r("2020-01-01").is_err());
        assert!(r("20201301").is_err());
        assert!(r("20201231-20200101").is_err());
        assert!(r("-").is_err());
    }
}
