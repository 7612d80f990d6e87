//! Server addresses: `http(s)://host:port/path-to-dicom-web` or `dicom://AET@host:port`.

use crate::PacsError;

/// A PACS to talk to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Server {
    Web(WebServer),
    Dimse(DimsePeer),
}

/// A DICOMweb service: the base URL its QIDO-RS and WADO-RS paths hang from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebServer {
    /// Without a trailing slash.
    pub base: String,
    pub credentials: Credentials,
}

/// How a DICOMweb request authenticates. Passwords and tokens come from the environment or a
/// file only the user can read, never from the settings file (see the README).
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    #[default]
    None,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    // Never print a secret (error messages and logs show the Debug form).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => write!(f, "None"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            Credentials::Bearer(_) => write!(f, "Bearer(***)"),
        }
    }
}

/// A DIMSE peer and the AE title we call it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DimsePeer {
    pub called_ae: String,
    pub host: String,
    pub port: u16,
    pub calling_ae: String,
    /// Retrieve with C-MOVE to our storage SCP on this port (the PACS must know our AE title at
    /// this host and port); `None`: C-GET, on the same association, with no port to open.
    pub store_port: Option<u16>,
}

impl DimsePeer {
    /// `AET@host:port`, as dicom-ul takes it and as the user wrote it.
    pub fn address(&self) -> String {
        format!("{}@{}:{}", self.called_ae, self.host, self.port)
    }

    pub fn name(&self) -> String {
        format!("dicom://{}", self.address())
    }
}

impl Server {
    /// Parses an address; `calling_ae` is our AE title for DIMSE peers.
    pub fn parse(given: &str, calling_ae: &str) -> Result<Server, PacsError> {
        let bad = |why: &str| PacsError::BadAddress {
            given: given.to_string(),
            why: why.to_string(),
        };
        let given_trimmed = given.trim();
        if let Some(rest) = given_trimmed.strip_prefix("dicom://") {
            let (ae, hostport) = rest
                .split_once('@')
                .ok_or_else(|| bad("a DIMSE address names the called AE title before `@`"))?;
            check_ae(ae).map_err(|why| bad(&why))?;
            check_ae(calling_ae).map_err(|why| bad(&format!("our AE title: {why}")))?;
            let (host, port) = hostport
                .trim_end_matches('/')
                .rsplit_once(':')
                .ok_or_else(|| bad("the port is missing (dicom://AET@host:port)"))?;
            if host.is_empty() {
                return Err(bad("the host is missing"));
            }
            let port: u16 = port
                .parse()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad(&format!("`{port}` is not a port number")))?;
            return Ok(Server::Dimse(DimsePeer {
                called_ae: ae.to_string(),
                host: host.to_string(),
                port,
                calling_ae: calling_ae.to_string(),
                store_port: None,
            }));
        }
        let lower = given_trimmed.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let after_scheme = &given_trimmed[given_trimmed.find("://").map_or(0, |i| i + 3)..];
            let host = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() {
                return Err(bad("the host is missing"));
            }
            if host.contains('@') {
                return Err(bad(
                    "credentials do not belong in the address; give them apart from it (the viewer's User and Password fields; on the command line --user with GROUNDGLASS_PACS_PASSWORD, or GROUNDGLASS_PACS_TOKEN)",
                ));
            }
            if given_trimmed.contains(['?', '#']) {
                return Err(bad("a DICOMweb base URL has no query or fragment"));
            }
            return Ok(Server::Web(WebServer {
                base: given_trimmed.trim_end_matches('/').to_string(),
                credentials: Credentials::None,
            }));
        }
        Err(bad("unknown scheme"))
    }

    /// The name messages use.
    pub fn name(&self) -> String {
        match self {
            Server::Web(w) => w.base.clone(),
            Server::Dimse(p) => p.name(),
        }
    }
}

/// An AE title: 1-16 characters of the default repertoire, no backslash or control characters.
fn check_ae(ae: &str) -> Result<(), String> {
    if ae.trim().is_empty() {
        return Err("the AE title is empty".into());
    }
    if ae.len() > 16 {
        return Err(format!("AE title `{ae}` is longer than 16 characters"));
    }
    if ae
        .chars()
        .any(|c| !c.is_ascii() || c.is_ascii_control() || c == '\\')
    {
        return Err(format!(
            "AE title `{ae}` has characters an AE title cannot hold"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_address_forms_parse_and_wrong_ones_say_why() {
        assert_eq!(
            Server::parse("dicom://ORTHANC@127.0.0.1:4242", "GG").ok(),
            Some(Server::Dimse(DimsePeer {
                called_ae: "ORTHANC".into(),
                host: "127.0.0.1".into(),
                port: 4242,
                calling_ae: "GG".into(),
                store_port: None,
            }))
        );
        assert_eq!(
            Server::parse("http://localhost:8042/dicom-web/", "GG")
                .ok()
                .map(|s| s.name()),
            Some("http://localhost:8042/dicom-web".to_string())
        );
        for (bad, says) in [
            ("dicom://127.0.0.1:4242", "called AE title"),
            ("dicom://ORTHANC@127.0.0.1", "port is missing"),
            ("dicom://ORTHANC@127.0.0.1:99999", "not a port"),
            ("dicom://AN_AE_TITLE_TOO_LONG@h:1", "longer than 16"),
            ("ftp://x", "unknown scheme"),
            ("http://user:pw@host/dicom-web", "credentials"),
            ("http:///dicom-web", "host is missing"),
        ] {
            let e = Server::parse(bad, "GG").err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.contains(says)),
                "{bad}: {e:?}"
            );
        }
        let secret = format!(
            "{:?}",
            Credentials::Basic {
                user: "u".into(),
                password: "hunter2".into()
            }
        );
        assert!(!secret.contains("hunter2"));
    }
}
