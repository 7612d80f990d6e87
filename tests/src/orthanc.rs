//! A real Orthanc (Debian's `orthanc` and `orthanc-dicomweb`) for tests. Orthanc listens on every
//! address, so it runs only inside a private network namespace with nothing but its own loopback:
//! [`in_private_network`] re-runs the calling test inside one (`unshare -n`, then
//! `ip link set lo up`). Without Orthanc or `unshare` a test is skipped with a message, except
//! under CI, where `.ci/run` installs Orthanc and the test must run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

/// [`crate::netns::in_private_network`], when Orthanc and its DICOMweb plugin are installed
/// (required under CI; skipped with a message elsewhere).
pub fn in_private_network(test: &str) -> bool {
    if std::env::var_os(crate::netns::INSIDE).is_some() {
        return true;
    }
    let have_orthanc = Command::new("Orthanc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let plugin = Path::new(PLUGIN).exists();
    if !(have_orthanc && plugin) {
        let why = format!("Orthanc {have_orthanc}, its DICOMweb plugin {plugin}");
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the Orthanc tests: {why}"
        );
        eprintln!("skipped: {why}");
        return false;
    }
    crate::netns::in_private_network(test)
}

/// A series as Orthanc lists it: its modality, its study's and its instances' Orthanc ids.
#[derive(Debug)]
pub struct StoredSeries {
    pub modality: String,
    pub study: String,
    pub instances: Vec<String>,
}

/// Orthanc, killed when dropped (its log printed when the test panicked).
pub struct Orthanc {
    child: Child,
    dir: PathBuf,
    /// The `Authorization` header the REST API wants, when a user is configured.
    authorization: Option<String>,
    pub http_port: u16,
    pub dicom_port: u16,
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("orthanc.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("Orthanc's log, last lines:");
            for line in tail.iter().rev() {
                eprintln!("  {line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Orthanc {
    /// Starts Orthanc on these loopback ports (AE title `ORTHANC`, which it checks; it knows the
    /// modality `GGTEST`); with `user`, its HTTP side asks for that user and password. Waits
    /// until it answers.
    pub fn start(http_port: u16, dicom_port: u16, user: Option<(&str, &str)>) -> Orthanc {
        Self::start_with(http_port, dicom_port, user, None)
    }

    /// As `start`, with a Lua script (Orthanc's `LuaScripts`): an `IncomingHttpRequestFilter`
    /// there decides which requests Orthanc refuses, with 403, as a hospital's access rules do.
    pub fn start_with(
        http_port: u16,
        dicom_port: u16,
        user: Option<(&str, &str)>,
        lua: Option<&str>,
    ) -> Orthanc {
        Self::start_configured(http_port, dicom_port, user, lua, serde_json::json!({}))
    }

    /// As `start_with`, with more of Orthanc's options (`{"LimitFindResults": 30}`, ...) over the
    /// generated configuration.
    pub fn start_configured(
        http_port: u16,
        dicom_port: u16,
        user: Option<(&str, &str)>,
        lua: Option<&str>,
        options: serde_json::Value,
    ) -> Orthanc {
        let dir =
            std::env::temp_dir().join(format!("gg-orthanc-{}-{http_port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("db")).expect("temp dir");
        let scripts: Vec<PathBuf> = lua
            .map(|script| {
                let path = dir.join("filter.lua");
                std::fs::write(&path, script).expect("Lua script");
                path
            })
            .into_iter()
            .collect();
        let mut config = serde_json::json!({
            "Name": "groundglass-test",
            "HttpPort": http_port,
            "DicomPort": dicom_port,
            "DicomAet": "ORTHANC",
            "DicomCheckCalledAet": true,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": user.is_some(),
            // An object even when empty: Orthanc refuses `null` ("Bad file format").
            "RegisteredUsers": user.map_or_else(|| serde_json::json!({}), |(u, p)| serde_json::json!({ u: p })),
            "StorageDirectory": dir.join("db"),
            "IndexDirectory": dir.join("db"),
            "Plugins": [PLUGIN],
            "DicomWeb": {"Enable": true, "Root": "/dicom-web/"},
            // Orthanc answers C-FIND only to modalities it knows, as a hospital's PACS does.
            "DicomModalities": {"groundglass": ["GGTEST", "127.0.0.1", 11112]},
            "LuaScripts": scripts,
        });
        if let (Some(config), Some(options)) = (config.as_object_mut(), options.as_object()) {
            config.extend(options.clone());
        }
        std::fs::write(dir.join("orthanc.json"), config.to_string()).expect("config");
        let log = std::fs::File::create(dir.join("orthanc.log")).expect("log");
        let child = Command::new("Orthanc")
            .arg(dir.join("orthanc.json"))
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("Orthanc starts");
        let authorization = user.map(|(u, p)| {
            use base64::Engine as _;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        let mut orthanc = Orthanc {
            authorization,
            child,
            dir,
            http_port,
            dicom_port,
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let t = Instant::now();
        // Any answer, "401 Unauthorized" included, means it is up.
        loop {
            match agent
                .get(&format!("http://127.0.0.1:{http_port}/system"))
                .call()
            {
                Ok(_) | Err(ureq::Error::StatusCode(_)) => break,
                Err(e) => {
                    if let Ok(Some(exit)) = orthanc.child.try_wait() {
                        panic!("Orthanc exited while starting ({exit})");
                    }
                    assert!(
                        t.elapsed() < Duration::from_secs(30),
                        "Orthanc did not answer within 30 s (last: {e})"
                    )
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        orthanc
    }

    /// `http://127.0.0.1:PORT/dicom-web`.
    pub fn dicom_web(&self) -> String {
        format!("http://127.0.0.1:{}/dicom-web", self.http_port)
    }

    /// A GET of Orthanc's REST API (`/series?expand`, ...), as JSON.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
        let mut request = agent.get(&format!("http://127.0.0.1:{}{path}", self.http_port));
        if let Some(a) = &self.authorization {
            request = request.header("Authorization", a);
        }
        let mut response = request.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let text = response
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    /// A POST of Orthanc's REST API with a JSON body (`/studies/ID/modify`, ...), as JSON.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
        let mut request = agent.post(&format!("http://127.0.0.1:{}{path}", self.http_port));
        if let Some(a) = &self.authorization {
            request = request.header("Authorization", a);
        }
        let mut response = request
            .send(body.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let text = response
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text}"))
    }

    /// Every series Orthanc holds (`/series?expand`).
    pub fn series(&self) -> Vec<StoredSeries> {
        let listed = self.get_json("/series?expand");
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
        listed
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|s| StoredSeries {
                modality: text(&s["MainDicomTags"]["Modality"]),
                study: text(&s["ParentStudy"]),
                instances: s["Instances"]
                    .as_array()
                    .map(|i| i.iter().map(text).collect())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Uploads every file of `dir` through the REST API; returns the count.
    pub fn upload(&self, dir: &Path) -> usize {
        let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("series")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for f in &files {
            let bytes = std::fs::read(f).expect("file");
            let mut request = agent.post(&format!("http://127.0.0.1:{}/instances", self.http_port));
            if let Some(a) = &self.authorization {
                request = request.header("Authorization", a);
            }
            request
                .send(&bytes[..])
                .unwrap_or_else(|e| panic!("upload {}: {e}", f.display()));
        }
        files.len()
    }
}
