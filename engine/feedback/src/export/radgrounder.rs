//! Training data in RadGrounder's format: per annotated slice, the slice image (16-bit PNG of
//! modality values + 32768, so CT HU survive exactly) and, per language, a JSON line with the
//! prompt (the grounded-report prompt in the contract's layout, without the image tokens) and the
//! target: one `<p bbox=<loc>x4 id=<segNNN>>keyword</p>` phrase per class, its box the union of
//! the class's boxes on that slice, coordinates in 512 bins of the slice (`int(v * 512)`, clamped).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use groundglass_grounding::{LabelMap, Language};
use groundglass_model::prompt::{Lang, Request, Task};
use groundglass_study::{extract, Series, Volume};
use serde::Serialize;

use super::{io_err, ExportError};
use crate::state::{Annotation, Corrections};

/// Added to modality values in the PNGs.
pub const VALUE_OFFSET: f32 = 32768.0;

#[derive(Serialize)]
struct Line<'a> {
    image: String,
    width: usize,
    height: usize,
    modality: &'a str,
    series_uid: &'a str,
    plane: groundglass_study::Plane,
    index: usize,
    value_offset: f32,
    lang: &'a str,
    prompt: String,
    target: String,
    boxes: Vec<BoxOut>,
}

#[derive(Serialize, Clone)]
struct BoxOut {
    keyword: String,
    class_id: Option<u32>,
    /// x0, y0, x1, y1 as fractions of the slice.
    box_norm: [f64; 4],
    bins: [u32; 4],
}

fn bin(v: f64) -> u32 {
    ((v.clamp(0.0, 1.0) * 512.0) as u32).min(512)
}

/// The target text for `boxes` in `language`.
pub fn target(boxes: &[(String, Option<u32>, [u32; 4])]) -> String {
    let phrases: Vec<String> = boxes
        .iter()
        .map(|(keyword, class, b)| {
            let id = class
                .map(|c| format!(" id=<seg{c:03}>"))
                .unwrap_or_default();
            format!(
                "<p bbox=<loc{:04}><loc{:04}><loc{:04}><loc{:04}>{id}>{keyword}</p>",
                b[0], b[1], b[2], b[3]
            )
        })
        .collect();
    format!("{}.", phrases.join(", "))
}

/// Writes the slices with confirmed boxes of `series` to `out` (`slices/*.png`, `train_en.jsonl`,
/// `train_de.jsonl`); returns the number of slices.
pub fn export(
    out: &Path,
    series: &Series,
    volume: &Volume,
    corrections: &Corrections,
) -> Result<usize, ExportError> {
    std::fs::create_dir_all(out.join("slices")).map_err(io_err(out))?;
    let labels = LabelMap::radgrounder();
    // Confirmed boxes of this series, by slice.
    let mut by_slice: BTreeMap<(u8, usize), Vec<&Annotation>> = BTreeMap::new();
    for a in corrections
        .confirmed()
        .filter(|a| a.slice.series_uid == series.uid)
    {
        if a.box_px.is_some() {
            by_slice
                .entry((a.slice.plane as u8, a.slice.index))
                .or_default()
                .push(a);
        }
    }
    let mut files = Vec::new();
    for lang in ["en", "de"] {
        let path = out.join(format!("train_{lang}.jsonl"));
        files.push((
            lang,
            std::fs::File::create(&path).map_err(io_err(&path))?,
            path,
        ));
    }
    for annotations in by_slice.values() {
        let plane = annotations[0].slice.plane;
        let slice = extract(volume, plane, annotations[0].slice.index);
        let (w, h) = (slice.width, slice.height);
        // One union box per class (or per keyword when there is no class).
        let mut union: BTreeMap<String, (String, Option<u32>, [f64; 4])> = BTreeMap::new();
        for a in annotations {
            let Some(b) = a.box_px else { continue };
            let key = a
                .class_id
                .map(|c| format!("c{c:03}"))
                .unwrap_or_else(|| format!("k{}", a.keyword));
            let n = [
                b[0] / w as f64,
                b[1] / h as f64,
                b[2] / w as f64,
                b[3] / h as f64,
            ];
            union
                .entry(key)
                .and_modify(|(_, _, u)| {
                    *u = [
                        u[0].min(n[0]),
                        u[1].min(n[1]),
                        u[2].max(n[2]),
                        u[3].max(n[3]),
                    ]
                })
                .or_insert((a.keyword.clone(), a.class_id, n));
        }
        let name = format!(
            "{}_{}_{:04}.png",
            sanitize(&series.uid),
            plane.name(),
            slice.index
        );
        write_png(&out.join("slices").join(&name), &slice)?;
        for (lang, file, path) in &mut files {
            let language = if *lang == "de" {
                Language::De
            } else {
                Language::En
            };
            let boxes: Vec<BoxOut> = union
                .values()
                .map(|(keyword, class, n)| BoxOut {
                    // German targets name the class in German when it has one.
                    keyword: match (language, class) {
                        (Language::De, Some(c)) => labels
                            .display_name(*c, Language::De)
                            .map(str::to_string)
                            .unwrap_or_else(|| keyword.clone()),
                        _ => keyword.clone(),
                    },
                    class_id: *class,
                    box_norm: *n,
                    bins: n.map(bin),
                })
                .collect();
            let request = Request {
                task: Task::Grounded,
                lang: if *lang == "de" { Lang::De } else { Lang::En },
                clinical: None,
                question: None,
                options: vec![],
            };
            let line = Line {
                image: format!("slices/{name}"),
                width: w,
                height: h,
                modality: &series.modality,
                series_uid: &series.uid,
                plane,
                index: slice.index,
                value_offset: VALUE_OFFSET,
                lang,
                prompt: request.text(),
                target: target(
                    &boxes
                        .iter()
                        .map(|b| (b.keyword.clone(), b.class_id, b.bins))
                        .collect::<Vec<_>>(),
                ),
                boxes,
            };
            let mut text =
                serde_json::to_string(&line).map_err(|e| ExportError::Invalid(e.to_string()))?;
            text.push('\n');
            file.write_all(text.as_bytes()).map_err(io_err(path))?;
        }
    }
    for (_, file, path) in &files {
        file.sync_all().map_err(io_err(path))?;
    }
    Ok(by_slice.len())
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A 16-bit greyscale PNG of the slice's modality values plus `VALUE_OFFSET` (NaN -> 0).
pub fn write_png(path: &Path, slice: &groundglass_study::SliceImage) -> Result<(), ExportError> {
    let file = std::fs::File::create(path).map_err(io_err(path))?;
    let mut encoder = png::Encoder::new(
        std::io::BufWriter::new(file),
        slice.width as u32,
        slice.height as u32,
    );
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Sixteen);
    let mut writer = encoder
        .write_header()
        .map_err(|e| ExportError::Invalid(format!("{}: {e}", path.display())))?;
    let grey: Vec<f32> = if slice.channels == 3 {
        slice
            .values
            .chunks_exact(3)
            .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
            .collect()
    } else {
        slice.values.clone()
    };
    let bytes: Vec<u8> = grey
        .iter()
        .flat_map(|v| {
            let u = if v.is_finite() {
                (v + VALUE_OFFSET).round().clamp(0.0, 65535.0) as u16
            } else {
                0
            };
            u.to_be_bytes()
        })
        .collect();
    writer
        .write_image_data(&bytes)
        .map_err(|e| ExportError::Invalid(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_the_contract() {
        let t = target(&[
            ("liver".into(), Some(5), [100, 200, 300, 400]),
            ("spleen".into(), Some(1), [0, 0, 512, 512]),
        ]);
        assert_eq!(
            t,
            "<p bbox=<loc0100><loc0200><loc0300><loc0400> id=<seg005>>liver</p>, \
             <p bbox=<loc0000><loc0000><loc0512><loc0512> id=<seg001>>spleen</p>."
        );
        assert_eq!(bin(1.0), 512);
        assert_eq!(bin(0.5), 256);
        assert_eq!(bin(0.3), 153);
    }
}
