//! Errors of the study layer. Every variant names the file it came from, so a message shown to the
//! user says which file is bad and why.

use std::path::PathBuf;

/// Result type of the study crate.
pub type Result<T, E = StudyError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a readable DICOM file: {message}")]
    Dicom { path: PathBuf, message: String },
    #[error("{path}: transfer syntax {name} ({uid}) cannot be decoded here")]
    UnsupportedTransferSyntax {
        path: PathBuf,
        uid: String,
        name: String,
    },
    #[error("{path}: pixel data could not be decoded ({syntax}): {message}")]
    Decode {
        path: PathBuf,
        syntax: String,
        message: String,
    },
    #[error("{path}: not a readable NIfTI file: {message}")]
    Nifti { path: PathBuf, message: String },
    #[error("{path}: {what} would need {bytes} bytes, above the limit of {limit} bytes; refusing to allocate")]
    TooLarge {
        path: PathBuf,
        what: String,
        bytes: u64,
        limit: u64,
    },
    #[error("{path}: {what} needs {} of memory and this machine has {} available; close other programs or open a smaller series", human_bytes(*bytes), human_bytes(*available))]
    NotEnoughMemory {
        path: PathBuf,
        what: String,
        bytes: u64,
        available: u64,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: no images found")]
    NoImages { path: PathBuf },
    #[error("loading was cancelled")]
    Cancelled,
}

impl StudyError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn dicom(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Self::Dicom {
            path: path.into(),
            message: message.to_string(),
        }
    }

    pub(crate) fn nifti(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Nifti {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The largest voxel buffer we agree to allocate for one volume (64 GiB), whatever the memory:
/// headers that ask for more are corrupt or hostile.
pub const MAX_VOLUME_BYTES: u64 = 64 << 30;

/// Checks a requested allocation against [`MAX_VOLUME_BYTES`] and against the memory available
/// now ([`available_memory_bytes`]): refusing with a message beats being killed by the kernel
/// half-way through a load.
pub(crate) fn check_alloc(path: &std::path::Path, what: &str, bytes: u64) -> Result<()> {
    if bytes > MAX_VOLUME_BYTES {
        return Err(StudyError::TooLarge {
            path: path.to_path_buf(),
            what: what.to_string(),
            bytes,
            limit: MAX_VOLUME_BYTES,
        });
    }
    if let Some(available) = available_memory_bytes() {
        if bytes > available {
            return Err(StudyError::NotEnoughMemory {
                path: path.to_path_buf(),
                what: what.to_string(),
                bytes,
                available,
            });
        }
    }
    Ok(())
}

/// Memory this process can still take, in bytes: the kernel's estimate of what can be allocated
/// without swapping (`MemAvailable` in `/proc/meminfo`), or less where a cgroup (a container, a
/// systemd slice) caps the process lower. `None` where neither can be read (not Linux): no check.
pub fn available_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let system = mem_available(&meminfo)?;
    let cgroup = (|| {
        // cgroup v2: this process's group, from /proc/self/cgroup ("0::/path").
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
        let dir = std::path::Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
        let max = std::fs::read_to_string(dir.join("memory.max")).ok()?;
        let current = std::fs::read_to_string(dir.join("memory.current")).ok()?;
        cgroup_room(&max, &current)
    })();
    Some(cgroup.map_or(system, |c| c.min(system)))
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Room left under a cgroup's `memory.max` ("max": no cap) given its `memory.current`.
fn cgroup_room(max: &str, current: &str) -> Option<u64> {
    let max: u64 = max.trim().parse().ok()?;
    let current: u64 = current.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// Bytes as people read them: "1.5 GB", "640 MB" (powers of 1000, as disks and shops count).
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..=999_999 => format!("{:.0} kB", b / 1e3),
        1_000_000..=999_999_999 => format!("{:.0} MB", b / 1e6),
        _ => format!("{:.1} GB", b / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_memory_reads_meminfo_and_a_cgroup_cap() {
        let meminfo =
            "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   21817980 kB\n";
        assert_eq!(mem_available(meminfo), Some(21_817_980 * 1024));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
        assert_eq!(cgroup_room("max\n", "123\n"), None, "no cap");
        assert_eq!(cgroup_room("1000000\n", "400000\n"), Some(600_000));
        assert_eq!(cgroup_room("100\n", "400\n"), Some(0));
        if cfg!(target_os = "linux") {
            assert!(available_memory_bytes().is_some_and(|b| b > 0));
        }
    }

    #[test]
    fn refusals_say_what_is_needed_and_what_there_is() {
        let e = StudyError::NotEnoughMemory {
            path: "ct.nii".into(),
            what: "the volume".into(),
            bytes: 1_572_864_000,
            available: 640_000_000,
        };
        assert_eq!(
            e.to_string(),
            "ct.nii: the volume needs 1.6 GB of memory and this machine has 640 MB available; close \
             other programs or open a smaller series"
        );
        assert!(check_alloc("x".as_ref(), "the volume", MAX_VOLUME_BYTES + 1).is_err());
        assert!(check_alloc("x".as_ref(), "the volume", 1 << 20).is_ok());
    }
}
