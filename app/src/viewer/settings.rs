//! What the viewer remembers between runs: recently opened studies. Stored as JSON in the
//! platform's config directory, written atomically.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const MAX_RECENT: usize = 10;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub recent: Vec<PathBuf>,
    /// The checkpoint folder last used in the model panel.
    #[serde(default)]
    pub model_dir: Option<PathBuf>,
    /// The reviewer name recorded with verdicts and corrections.
    #[serde(default)]
    pub reviewer: Option<String>,
}

impl Settings {
    /// `~/.config/groundglass/settings.json` on Linux (per the platform elsewhere).
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("org", "groundglass", "groundglass")
            .map(|d| d.config_dir().join("settings.json"))
    }

    /// Missing or unreadable settings are not an error: the viewer starts with defaults.
    pub fn load(path: &Path) -> Settings {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, path)
    }

    /// Puts `path` first, without duplicates, keeping the list short.
    pub fn remember(&mut self, path: &Path) {
        self.recent.retain(|p| p != path);
        self.recent.insert(0, path.to_path_buf());
        self.recent.truncate(MAX_RECENT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_list_is_most_recent_first_without_duplicates() {
        let mut s = Settings::default();
        for p in ["a", "b", "a", "c"] {
            s.remember(Path::new(p));
        }
        assert_eq!(
            s.recent,
            vec![PathBuf::from("c"), PathBuf::from("a"), PathBuf::from("b")]
        );
        let file = std::env::temp_dir().join(format!("gg-settings-{}.json", std::process::id()));
        s.save(&file).expect("save");
        assert_eq!(Settings::load(&file), s);
    }
}
