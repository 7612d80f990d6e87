//! PACS passwords and tokens, kept out of the settings file (which lists recent studies and may
//! be copied or shown around): a file of their own beside it, `pacs-credentials.json`, that only
//! the user can read (created 0600 on Unix, and put back to 0600 when found wider). A platform
//! keyring would be better where one runs; none is assumed here (headless machines, Xvfb, CI).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A server's secret: a basic-authentication password, or a bearer token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Secret {
    Password(String),
    Token(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    /// By server name.
    #[serde(default)]
    pub servers: BTreeMap<String, Secret>,
}

impl Secrets {
    /// The file beside the settings file.
    pub fn path_beside(settings: &Path) -> PathBuf {
        settings.with_file_name("pacs-credentials.json")
    }

    /// Missing: none. Unreadable: none, and the file moved aside to
    /// `pacs-credentials.json.unreadable` (still private) rather than overwritten by the next
    /// save.
    pub fn load(path: &Path) -> Secrets {
        super::settings::load_or_keep_aside(path, "PACS passwords and tokens must be entered again")
    }

    /// Written atomically through a temporary file that is private from its creation.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::File::options();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        std::io::Write::write_all(
            &mut file,
            &serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        private(path)
    }
}

/// Makes `path` readable by its owner only (a file an older version or the user left wider).
pub fn private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode != 0o600 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_live_apart_and_only_the_user_reads_them() {
        let dir = std::env::temp_dir().join(format!("gg-secrets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let settings = dir.join("settings.json");
        let path = Secrets::path_beside(&settings);
        assert_eq!(path, dir.join("pacs-credentials.json"));
        let mut s = Secrets::default();
        s.servers
            .insert("pacs".into(), Secret::Password("s3cret".into()));
        s.servers.insert("web".into(), Secret::Token("tok".into()));
        s.save(&path).expect("save");
        assert_eq!(Secrets::load(&path), s);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = || {
                std::fs::metadata(&path)
                    .expect("test file system")
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode(), 0o600);
            // A wider file is narrowed on the next save.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                .expect("test file system");
            s.save(&path).expect("save again");
            assert_eq!(mode(), 0o600);
        }
        std::fs::remove_dir_all(&dir).expect("test file system");
    }
}
