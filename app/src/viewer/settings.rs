//! What the viewer remembers between runs: recently opened studies, the model folder, the
//! reviewer, PACS servers (without their secrets). Stored as JSON in the platform's config
//! directory, written atomically.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const MAX_RECENT: usize = 10;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Settings {
    pub recent: Vec<PathBuf>,
    /// The checkpoint folder last used in the model panel.
    #[serde(default)]
    pub model_dir: Option<PathBuf>,
    /// The reviewer name recorded with verdicts and corrections.
    #[serde(default)]
    pub reviewer: Option<String>,
    /// PACS servers configured in File > Open from PACS (no secrets here: see
    /// [`crate::viewer::pacs_secrets`]).
    #[serde(default)]
    pub pacs_servers: Vec<PacsServer>,
    /// The PACS cache's bound in GB (default 20).
    #[serde(default)]
    pub pacs_cache_gb: Option<f64>,
}

/// A PACS as the user configured it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PacsServer {
    /// What the list shows, and the key of its password or token.
    pub name: String,
    /// `http(s)://host:port/path-to-dicom-web` or `dicom://AET@host:port`.
    pub address: String,
    /// Our AE title (DIMSE).
    pub calling_ae: String,
    /// DICOMweb basic authentication's user; the password is kept apart.
    #[serde(default)]
    pub user: Option<String>,
    /// DIMSE: retrieve by C-MOVE to our storage SCP on this port (the PACS must know our AE
    /// title at this machine and port); none: C-GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_port: Option<u16>,
}

impl Settings {
    /// `~/.config/groundglass/settings.json` on Linux (per the platform elsewhere).
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("org", "groundglass", "groundglass")
            .map(|d| d.config_dir().join("settings.json"))
    }

    /// Missing or unreadable settings are not an error: the viewer starts with defaults. A file
    /// that does not parse (edited by hand, from a newer version) is moved aside to
    /// `settings.json.unreadable`, not overwritten by the next save: its servers stay recoverable.
    pub fn load(path: &Path) -> Settings {
        load_or_keep_aside(path, "starting with default settings")
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

/// A JSON file read back: the default when it is missing; when it does not parse, the default
/// too, with the file renamed to `NAME.json.unreadable` (its permissions kept) and a warning that
/// says so and what follows (`consequence`).
pub fn load_or_keep_aside<T: serde::de::DeserializeOwned + Default>(
    path: &Path,
    consequence: &str,
) -> T {
    let Ok(text) = std::fs::read_to_string(path) else {
        return T::default();
    };
    serde_json::from_str(&text).unwrap_or_else(|e| {
        let aside = path.with_extension("json.unreadable");
        let kept = std::fs::rename(path, &aside).is_ok();
        eprintln!(
            "warning: {}: {e}; {consequence}{}",
            path.display(),
            if kept {
                format!(" (the file is kept as {})", aside.display())
            } else {
                String::new()
            }
        );
        T::default()
    })
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
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn a_partial_file_loads_and_a_broken_one_is_kept_aside() {
        let dir = std::env::temp_dir().join(format!("gg-settings-dir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("settings.json");
        // Written by hand: no recent list, a server without an AE title.
        std::fs::write(
            &file,
            r#"{"pacs_servers":[{"name":"PACS","address":"http://pacs/dicom-web"}]}"#,
        )
        .expect("write");
        let s = Settings::load(&file);
        assert!(s.recent.is_empty());
        assert_eq!(s.pacs_servers[0].address, "http://pacs/dicom-web");
        assert_eq!(s.pacs_servers[0].calling_ae, "");

        std::fs::write(&file, r#"{"pacs_servers": [ {"name": "PACS""#).expect("write");
        assert_eq!(Settings::load(&file), Settings::default());
        assert!(
            !file.exists(),
            "not left to be overwritten by the next save"
        );
        let aside = std::fs::read_to_string(dir.join("settings.json.unreadable")).expect("kept");
        assert!(aside.contains("PACS"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
