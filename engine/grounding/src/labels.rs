//! RadGrounder's 121 classes (`assets/labels/`): class id -> internal name -> English or German
//! display name. Embedded at build time, so the app needs no data files for it.

use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    De,
}

impl Language {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "en" | "english" => Some(Language::En),
            "de" | "german" | "deutsch" => Some(Language::De),
            _ => None,
        }
    }
}

/// One class: its id, internal name and display names.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelClass {
    pub id: u32,
    pub name: String,
    pub english: String,
    pub german: String,
}

#[derive(Clone, Debug)]
pub struct LabelMap {
    by_id: BTreeMap<u32, LabelClass>,
}

const MERGED: &str = include_str!("../../../assets/labels/merged_label_map.json");
const ENGLISH: &str = include_str!("../../../assets/labels/class_2_organ_name_english.json");
const GERMAN: &str = include_str!("../../../assets/labels/class_2_organ_name_german.json");

impl LabelMap {
    /// The RadGrounder label map shipped with the app. Read from its embedded files once: the
    /// viewer asks for it for every answer it draws, the fuzzer for every input.
    pub fn radgrounder() -> Self {
        static MAP: std::sync::OnceLock<LabelMap> = std::sync::OnceLock::new();
        MAP.get_or_init(Self::read_radgrounder).clone()
    }

    fn read_radgrounder() -> Self {
        // The embedded files are part of the source tree; parsing them is checked by the tests.
        let ids: BTreeMap<String, u32> = serde_json::from_str(MERGED).unwrap_or_default();
        let english: BTreeMap<String, String> = serde_json::from_str(ENGLISH).unwrap_or_default();
        let german: BTreeMap<String, String> = serde_json::from_str(GERMAN).unwrap_or_default();
        let by_id = ids
            .into_iter()
            .map(|(name, id)| {
                let class = LabelClass {
                    id,
                    english: english
                        .get(&name)
                        .cloned()
                        .unwrap_or_else(|| name.replace('_', " ")),
                    german: german
                        .get(&name)
                        .cloned()
                        .unwrap_or_else(|| name.replace('_', " ")),
                    name,
                };
                (id, class)
            })
            .collect();
        LabelMap { by_id }
    }

    pub fn get(&self, id: u32) -> Option<&LabelClass> {
        self.by_id.get(&id)
    }

    pub fn display_name(&self, id: u32, language: Language) -> Option<&str> {
        self.get(id).map(|c| match language {
            Language::En => c.english.as_str(),
            Language::De => c.german.as_str(),
        })
    }

    /// The class a keyword names: its internal, English or German name, ignoring case.
    pub fn find(&self, keyword: &str) -> Option<u32> {
        let k = keyword.trim().to_lowercase();
        self.by_id
            .values()
            .find(|c| {
                c.english.to_lowercase() == k
                    || c.german.to_lowercase() == k
                    || c.name.replace('_', " ").to_lowercase() == k
            })
            .map(|c| c.id)
    }

    /// Every class, by id.
    pub fn classes(&self) -> impl Iterator<Item = &LabelClass> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_map_has_121_classes_in_two_languages() {
        let map = LabelMap::radgrounder();
        assert_eq!(map.len(), 121);
        assert_eq!(map.get(1).map(|c| c.name.as_str()), Some("spleen"));
        assert_eq!(map.display_name(2, Language::En), Some("right kidney"));
        assert_eq!(map.display_name(2, Language::De), Some("rechte Niere"));
        assert!((1..=121).all(|id| map.get(id).is_some()));
        assert_eq!(map.find("Spleen"), Some(1));
        assert_eq!(map.find("rechte Niere"), Some(2));
        assert_eq!(map.find("nonsense"), None);
    }
}
