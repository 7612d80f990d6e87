#!/usr/bin/env bash
# Installers for Groundglass that work with no network: the binary, the bundled demo study and
# demo model, the label maps, the icon and a desktop entry.
#
#   bash packaging/build.sh deb|appimage|dmg|windows --out DIR [--model DIR] [--profile release|dev]
#
#   deb       dpkg-deb (Debian's own packager; on every Debian/Ubuntu machine). Built and tested here.
#   appimage  an AppDir squashed by mksquashfs (squashfs-tools) behind an AppImage type-2 runtime:
#             ours (packaging/appimage-runtime, extract-and-run, no FUSE) unless
#             APPIMAGE_RUNTIME=FILE names another (e.g. AppImage's own). Built and tested here.
#   dmg       macOS only: Groundglass.app (Info.plist in packaging/macos) in a disk image (hdiutil).
#   windows   Windows only: a folder and a zip, or an MSI with WiX 4 (packaging/windows).
#
# --model DIR bundles that checkpoint instead of the demo model (RadGrounder's weights are never
# bundled by default: their licence is non-commercial). --profile dev packages the binary the
# test build already made (CI), release (default) builds an optimised one.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FORMAT="${1:-}"
shift || true
OUT="" MODEL="" PROFILE="release"
while (($#)); do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --model) MODEL="$2"; shift 2 ;;
    --profile) PROFILE="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$FORMAT" && -n "$OUT" ]] || { sed -n 2,20p "$0"; exit 2; }
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"
MODEL="${MODEL:-$ROOT/assets/models/demo}"
for f in config.json tokenizer.json model.safetensors; do
  [[ -e "$MODEL/$f" || -e "$MODEL/model.safetensors.index.json" ]] || { echo "$MODEL has no $f" >&2; exit 1; }
done

# Cargo's output folder: CARGO_TARGET_DIR when set (relative to where the script is called from),
# else the workspace's target/.
TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")"

build() {
  local features="${1:-}"
  if [[ "$PROFILE" == "release" ]]; then
    cargo build --release -p groundglass ${features:+--features $features} --manifest-path "$ROOT/Cargo.toml" >&2
    echo "$TARGET_DIR/release/groundglass"
  else
    cargo build -p groundglass ${features:+--features $features} --manifest-path "$ROOT/Cargo.toml" >&2
    echo "$TARGET_DIR/debug/groundglass"
  fi
}

# The installed layout under PREFIX: bin/groundglass, share/groundglass/assets/..., the desktop
# entry and the icon. The app finds its assets at ../share/groundglass from its executable.
stage() {
  local prefix="$1" bin="$2"
  install -Dm755 "$bin" "$prefix/bin/groundglass"
  # Debug info is most of a dev build's size; installers do not need it.
  if command -v strip >/dev/null; then strip --strip-debug "$prefix/bin/groundglass"; fi
  local share="$prefix/share/groundglass/assets"
  mkdir -p "$share/demo" "$share/models" "$share/labels"
  cp -r "$ROOT/assets/demo/study" "$share/demo/"
  cp -r "$MODEL" "$share/models/demo"
  rm -f "$share/models/demo/train_state.json" "$share/models/demo"/semsam_*.safetensors
  cp "$ROOT"/assets/labels/*.json "$share/labels/"
  install -Dm644 "$ROOT/packaging/linux/groundglass.desktop" "$prefix/share/applications/groundglass.desktop"
  install -Dm644 "$ROOT/assets/icons/groundglass.png" "$prefix/share/icons/hicolor/256x256/apps/groundglass.png"
  install -Dm644 "$ROOT/README.md" "$prefix/share/doc/groundglass/README.md"
}

case "$FORMAT" in
  deb)
    BIN="$(build)"
    ARCH="$(dpkg --print-architecture)"
    STAGE="$(mktemp -d)"
    stage "$STAGE/usr" "$BIN"
    mkdir -p "$STAGE/DEBIAN"
    cat > "$STAGE/DEBIAN/control" <<EOF
Package: groundglass
Version: $VERSION
Architecture: $ARCH
Maintainer: Groundglass developers <maintainers@groundglass.invalid>
Section: science
Priority: optional
Depends: libc6, libgcc-s1, libstdc++6
Recommends: libvulkan1, mesa-vulkan-drivers
Installed-Size: $(du -sk "$STAGE/usr" | cut -f1)
Description: CT and MR viewer with a grounded vision-language model
 Reads DICOM series, DICOMDIR, multi-frame and NIfTI; GPU viewer with MPR; asks an embedded
 PaliGemma-2 model about the current slice and draws its grounded findings. Ships a demo
 phantom study and a small demo model; makes no network connection.
EOF
    DEB="$OUT/groundglass_${VERSION}_${ARCH}.deb"
    dpkg-deb --build --root-owner-group -Zgzip -z6 "$STAGE" "$DEB" >&2
    rm -rf "$STAGE"
    echo "$DEB"
    ;;
  appimage)
    BIN="$(build)"
    APPDIR="$OUT/Groundglass.AppDir"
    rm -rf "$APPDIR"
    stage "$APPDIR/usr" "$BIN"
    cp "$ROOT/packaging/linux/groundglass.desktop" "$APPDIR/groundglass.desktop"
    cp "$ROOT/assets/icons/groundglass.png" "$APPDIR/groundglass.png"
    cat > "$APPDIR/AppRun" <<'EOF'
#!/bin/sh
HERE="$(dirname "$(readlink -f "$0")")"
exec "$HERE/usr/bin/groundglass" "$@"
EOF
    chmod +x "$APPDIR/AppRun"
    command -v mksquashfs >/dev/null || { echo "mksquashfs missing: apt-get install squashfs-tools" >&2; exit 1; }
    SQUASH="$OUT/groundglass.squashfs"
    rm -f "$SQUASH"
    mksquashfs "$APPDIR" "$SQUASH" -root-owned -noappend -comp gzip >&2
    if [[ -z "${APPIMAGE_RUNTIME:-}" ]]; then
      # Our own runtime (packaging/appimage-runtime: extracts to the cache and runs AppRun, no
      # FUSE), marked as an AppImage type 2 ("AI\x02" at byte 8 of the ELF header).
      cargo build --release --locked --manifest-path "$ROOT/packaging/appimage-runtime/Cargo.toml" >&2
      APPIMAGE_RUNTIME="$OUT/runtime"
      cp "$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/packaging/appimage-runtime/target}")/release/groundglass-appimage-runtime" "$APPIMAGE_RUNTIME"
      printf 'AI\x02' | dd of="$APPIMAGE_RUNTIME" bs=1 seek=8 conv=notrunc status=none
    fi
    IMG="$OUT/Groundglass-$VERSION-$(uname -m).AppImage"
    cat "$APPIMAGE_RUNTIME" "$SQUASH" > "$IMG"
    chmod +x "$IMG"
    echo "$IMG"
    ;;
  dmg)
    [[ "$(uname)" == "Darwin" ]] || { echo "dmg builds on macOS only (see packaging/README.md)" >&2; exit 1; }
    BIN="$(build metal)"
    APP="$OUT/Groundglass.app"
    rm -rf "$APP"
    mkdir -p "$APP/Contents/MacOS" "$APP/Contents/Resources"
    sed "s/@VERSION@/$VERSION/" "$ROOT/packaging/macos/Info.plist" > "$APP/Contents/Info.plist"
    stage "$APP/Contents" "$BIN"
    mv "$APP/Contents/bin/groundglass" "$APP/Contents/MacOS/groundglass"
    rmdir "$APP/Contents/bin"
    # ../share/groundglass from Contents/MacOS is Contents/share/groundglass: staged above.
    sips -s format icns "$ROOT/assets/icons/groundglass.png" --out "$APP/Contents/Resources/groundglass.icns" >/dev/null
    hdiutil create -volname Groundglass -srcfolder "$APP" -ov -format UDZO "$OUT/Groundglass-$VERSION.dmg" >&2
    echo "$OUT/Groundglass-$VERSION.dmg"
    ;;
  windows)
    case "$(uname -s)" in MINGW*|MSYS*|CYGWIN*) ;; *) echo "windows builds on Windows only (see packaging/README.md)" >&2; exit 1 ;; esac
    BIN="$(build)"
    DIR="$OUT/Groundglass"
    rm -rf "$DIR"
    mkdir -p "$DIR/bin"
    cp "$BIN.exe" "$DIR/bin/groundglass.exe"
    mkdir -p "$DIR/share/groundglass/assets/demo" "$DIR/share/groundglass/assets/models" "$DIR/share/groundglass/assets/labels"
    cp -r "$ROOT/assets/demo/study" "$DIR/share/groundglass/assets/demo/"
    cp -r "$MODEL" "$DIR/share/groundglass/assets/models/demo"
    cp "$ROOT"/assets/labels/*.json "$DIR/share/groundglass/assets/labels/"
    if command -v wix >/dev/null; then
      wix build "$ROOT/packaging/windows/groundglass.wxs" -d Version="$VERSION" -d SourceDir="$DIR" -o "$OUT/Groundglass-$VERSION.msi" >&2
      echo "$OUT/Groundglass-$VERSION.msi"
    else
      (cd "$OUT" && powershell -Command "Compress-Archive -Force -Path Groundglass -DestinationPath Groundglass-$VERSION.zip") >&2
      echo "$OUT/Groundglass-$VERSION.zip"
    fi
    ;;
  *)
    echo "unknown format $FORMAT: expected deb, appimage, dmg or windows" >&2
    exit 2
    ;;
esac
