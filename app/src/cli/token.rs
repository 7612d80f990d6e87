//! Bearer tokens for `serve` and its clients: from a file (the first line, trimmed), so that the
//! token stays out of the process list and the shell history, or from the environment.

use std::path::Path;

use anyhow::{bail, Context};

/// The variable a client's token comes from when no file is given.
pub const REMOTE_TOKEN_VARIABLE: &str = "GROUNDGLASS_REMOTE_TOKEN";

/// The token in `file`: its first line, trimmed. An empty one is refused, and a file that others
/// may read is named in a warning (it is still used: refusing it would only make the user loosen
/// something else).
pub fn from_file(file: &Path, flag: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{flag} {}: cannot read the token", file.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        bail!("{flag} {}: the file's first line is empty", file.display());
    }
    warn_if_others_can_read(file, flag);
    Ok(token)
}

/// A client's token: from `file` when given, else from `GROUNDGLASS_REMOTE_TOKEN`, else none.
pub fn for_client(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    match file {
        Some(f) => from_file(f, "--remote-token-file").map(Some),
        None => Ok(std::env::var(REMOTE_TOKEN_VARIABLE)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())),
    }
}

/// A secret (a token, a TLS key) in a file others may read is named in a warning.
#[cfg(unix)]
pub fn warn_if_others_can_read(file: &Path, flag: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(file) {
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "warning: {flag} {}: others may read this secret (chmod 600 it)",
                file.display()
            );
        }
    }
}

#[cfg(not(unix))]
pub fn warn_if_others_can_read(_file: &Path, _flag: &str) {}
