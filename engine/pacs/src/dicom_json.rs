//! Reading the few attributes a study list needs out of the DICOM JSON model (PS3.18 F.2), as
//! QIDO-RS answers: `{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}, ...}`. Hand-written over
//! serde_json because only strings, numbers and person names are read; a missing or empty
//! attribute reads as empty.

use serde_json::Value;

/// The attribute `tag` (eight hex digits) of one JSON dataset.
fn values<'a>(dataset: &'a Value, tag: &str) -> &'a [Value] {
    dataset
        .get(tag)
        .and_then(|a| a.get("Value"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A value as text: strings as they are, numbers printed, person names by their alphabetic
/// component (`Family^Given`).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => o
            .get("Alphabetic")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// The first value of `tag` as text, or empty.
pub fn string(dataset: &Value, tag: &str) -> String {
    values(dataset, tag)
        .first()
        .and_then(text)
        .unwrap_or_default()
}

/// Every value of `tag` as text (multi-valued attributes such as ModalitiesInStudy).
pub fn strings(dataset: &Value, tag: &str) -> Vec<String> {
    values(dataset, tag).iter().filter_map(text).collect()
}

/// The first value of `tag` as an integer (IS arrives as a string or a number).
pub fn integer(dataset: &Value, tag: &str) -> Option<i64> {
    match values(dataset, tag).first()? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_names_numbers_and_missing_values() {
        let d: Value = serde_json::json!({
            "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
            "00080061": {"vr": "CS", "Value": ["CT", "SEG"]},
            "00201208": {"vr": "IS", "Value": [42]},
            "00201209": {"vr": "IS", "Value": ["7"]},
            "00080050": {"vr": "SH"}
        });
        assert_eq!(string(&d, "0020000D"), "1.2.3");
        assert_eq!(string(&d, "00100010"), "Doe^Jane");
        assert_eq!(strings(&d, "00080061"), ["CT", "SEG"]);
        assert_eq!(integer(&d, "00201208"), Some(42));
        assert_eq!(integer(&d, "00201209"), Some(7));
        assert_eq!(string(&d, "00080050"), "");
        assert_eq!(string(&d, "00081030"), "");
        assert_eq!(integer(&d, "00081030"), None);
    }
}
