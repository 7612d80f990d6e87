//! Small builders for writing DICOM elements (the phantom series, the DICOM SEG export): values
//! formatted as DICOM wants them.

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_object::InMemDicomObject;

/// A DS value of at most 16 characters.
pub fn ds(v: f64) -> String {
    for digits in (0..=8).rev() {
        let s = format!("{v:.digits$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        if s.len() <= 16 {
            return if s == "-0" { "0".into() } else { s };
        }
    }
    format!("{v:.0}")
}

pub fn text(tag: Tag, vr: VR, value: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::from(value))
}

pub fn multi(tag: Tag, vr: VR, values: &[String]) -> DataElement<InMemDicomObject> {
    DataElement::new(
        tag,
        vr,
        PrimitiveValue::Strs(values.iter().cloned().collect()),
    )
}

pub fn us(tag: Tag, v: u16) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::US, PrimitiveValue::from(v))
}

#[cfg(test)]
mod tests {
    use super::ds;

    #[test]
    fn ds_values_fit_sixteen_characters() {
        assert_eq!(ds(1.0), "1");
        assert_eq!(ds(-125.5), "-125.5");
        assert_eq!(ds(0.488281250000001), "0.48828125");
        assert!(ds(-123456.123456789).len() <= 16);
        assert_eq!(ds(-0.0), "0");
        assert_eq!(ds(2.2), "2.2");
        assert_eq!(ds(-174.9), "-174.9");
    }
}
