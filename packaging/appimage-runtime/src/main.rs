//! An AppImage type-2 runtime that extracts instead of mounting: the image is this ELF followed by
//! a squashfs. On start it finds the squashfs (it begins where the ELF's section headers end, as
//! in AppImage's own runtime), extracts it once into the user's cache (keyed by the image's size
//! and modification time), and runs `AppRun` with the arguments, `APPIMAGE` and `APPDIR` set.
//! No FUSE is needed; `--appimage-extract` extracts into `./squashfs-root` and stops, as the
//! reference runtime does.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use backhand::{FilesystemReader, InnerNode};

/// End of the ELF: the section header table is its last part.
fn elf_end(image: &mut File) -> std::io::Result<u64> {
    let mut header = [0u8; 64];
    image.seek(SeekFrom::Start(0))?;
    image.read_exact(&mut header)?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 {
        return Err(std::io::Error::other("not a 64-bit ELF"));
    }
    let shoff = u64::from_le_bytes(header[0x28..0x30].try_into().unwrap_or([0; 8]));
    let shentsize = u64::from(u16::from_le_bytes([header[0x3A], header[0x3B]]));
    let shnum = u64::from(u16::from_le_bytes([header[0x3C], header[0x3D]]));
    Ok(shoff + shentsize * shnum)
}

fn extract(image: &Path, offset: u64, to: &Path) -> Result<(), String> {
    let file = File::open(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let fs = FilesystemReader::from_reader_with_offset(BufReader::new(file), offset)
        .map_err(|e| format!("{}: no squashfs at byte {offset}: {e}", image.display()))?;
    for node in fs.files() {
        let rel = node.fullpath.strip_prefix("/").unwrap_or(&node.fullpath);
        let path = to.join(rel);
        match &node.inner {
            InnerNode::Dir(_) => {
                std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?
            }
            InnerNode::File(f) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
                }
                let mut out = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                std::io::copy(&mut fs.file(f).reader(), &mut out)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let mode = u32::from(node.header.permissions) & 0o7777;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            InnerNode::Symlink(link) => {
                let _ = std::fs::remove_file(&path);
                symlink(&link.link, &path).map_err(|e| format!("{}: {e}", path.display()))?
            }
            _ => {}
        }
    }
    Ok(())
}

fn run() -> Result<ExitCode, String> {
    let image = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut file = File::open(&image).map_err(|e| format!("{}: {e}", image.display()))?;
    let offset = elf_end(&mut file).map_err(|e| format!("{}: {e}", image.display()))?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--appimage-extract") {
        extract(&image, offset, Path::new("squashfs-root"))?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.first().map(String::as_str) == Some("--appimage-offset") {
        println!("{offset}");
        return Ok(ExitCode::SUCCESS);
    }
    let meta = file.metadata().map_err(|e| e.to_string())?;
    let stamp = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("groundglass-appimage")
        .join(format!("{}-{stamp}", meta.len()));
    let done = cache.join(".extracted");
    if !done.exists() {
        let partial = cache.with_extension("partial");
        let _ = std::fs::remove_dir_all(&partial);
        extract(&image, offset, &partial)?;
        let _ = std::fs::remove_dir_all(&cache);
        std::fs::rename(&partial, &cache).map_err(|e| format!("{}: {e}", cache.display()))?;
        File::create(&done).map_err(|e| format!("{}: {e}", done.display()))?;
    }
    let err = Command::new(cache.join("AppRun"))
        .args(&args)
        .env("APPIMAGE", &image)
        .env("APPDIR", &cache)
        .exec();
    Err(format!("{}: {err}", cache.join("AppRun").display()))
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("AppImage runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
