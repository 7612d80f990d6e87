//! Small typed readers over dicom-object's in-memory data set. A missing or malformed value reads as
//! `None`: the caller decides whether that is an error, a warning or a default.

use dicom_core::value::PrimitiveValue;
use dicom_core::Tag;
use dicom_object::InMemDicomObject;

pub type Obj = InMemDicomObject;

pub fn string(obj: &Obj, tag: Tag) -> Option<String> {
    let s = obj.get(tag)?.to_str().ok()?;
    let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!s.is_empty()).then(|| s.to_string())
}

/// All values of a multi-valued string (e.g. ImageType).
pub fn strings(obj: &Obj, tag: Tag) -> Vec<String> {
    string(obj, tag)
        .map(|s| s.split('\\').map(|p| p.trim().to_string()).collect())
        .unwrap_or_default()
}

pub fn floats(obj: &Obj, tag: Tag) -> Option<Vec<f64>> {
    let v = obj.get(tag)?.to_multi_float64().ok()?;
    (!v.is_empty() && v.iter().all(|x| x.is_finite())).then_some(v)
}

pub fn float(obj: &Obj, tag: Tag) -> Option<f64> {
    floats(obj, tag)?.first().copied()
}

pub fn int(obj: &Obj, tag: Tag) -> Option<i64> {
    obj.get(tag)?.to_int::<i64>().ok()
}

pub fn uint(obj: &Obj, tag: Tag) -> Option<u32> {
    u32::try_from(int(obj, tag)?).ok()
}

pub fn items(obj: &Obj, tag: Tag) -> &[Obj] {
    obj.get(tag).and_then(|e| e.items()).unwrap_or(&[])
}

/// The first item of a sequence, if any.
pub fn first_item(obj: &Obj, tag: Tag) -> Option<&Obj> {
    items(obj, tag).first()
}

/// A vector of three finite numbers (ImagePositionPatient).
pub fn vec3(obj: &Obj, tag: Tag) -> Option<[f64; 3]> {
    let v = floats(obj, tag)?;
    (v.len() >= 3).then(|| [v[0], v[1], v[2]])
}

/// Words of an OW/US element such as LUT data: 16-bit values, or bytes widened when the data
/// was stored 8 bits a sample.
pub fn words(obj: &Obj, tag: Tag, expected: usize) -> Option<Vec<u16>> {
    let prim = obj.get(tag)?.value().primitive()?;
    match prim {
        PrimitiveValue::U16(v) => Some(v.to_vec()),
        PrimitiveValue::I16(v) => Some(v.iter().map(|&x| x as u16).collect()),
        PrimitiveValue::U8(v) => {
            if v.len() >= expected * 2 && expected > 0 {
                Some(
                    v.chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect(),
                )
            } else {
                Some(v.iter().map(|&x| u16::from(x)).collect())
            }
        }
        _ => None,
    }
}
