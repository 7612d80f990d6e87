#!/usr/bin/env bash
# PACS retrieval benchmark: WADO-RS of one series from a local Orthanc (Debian's orthanc +
# orthanc-dicomweb), Groundglass's `pacs retrieve` against curl fetching the same multipart, in one
# run, printing the ratio (<= 1.2: the target); then C-GET, `pacs retrieve` over DIMSE against
# dcmtk's getscu (<= 1.0), and C-MOVE to our storage SCP against dcmtk's movescu with its own
# (<= 1.0). Orthanc runs on loopback inside a private network
# namespace that this script makes for itself (`unshare -n`).
#
#   SERIES=/tmp/s300 bash bench/pacs.sh     # e.g. the 300 x 512^2 series of ../shared/bench:
#   python3 ../shared/bench/make_series.py from-slice \
#       --src ../shared/testdata/dicom/transfer-syntax/pydicomdata_693_UNCI.dcm --out /tmp/s300 --count 300
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SERIES="${SERIES:-/tmp/s300}"
RUNS="${RUNS:-3}"
GG="${GG:-${CARGO_TARGET_DIR:-$ROOT/target}/release/groundglass}"
if [[ -z "${GG_PACS_BENCH_NETNS:-}" ]]; then
  [[ -x "$GG" ]] || cargo build --release -p groundglass --manifest-path "$ROOT/Cargo.toml" >/dev/null
  exec unshare -n env GG_PACS_BENCH_NETNS=1 SERIES="$SERIES" RUNS="$RUNS" GG="$GG" bash "$0"
fi
ip link set lo up
WORK="$(mktemp -d)"
trap 'kill "$ORTHANC" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cat > "$WORK/orthanc.json" <<JSON
{"HttpPort": 18042, "DicomPort": 14242, "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
 "StorageDirectory": "$WORK/db", "IndexDirectory": "$WORK/db",
 "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"], "DicomWeb": {"Enable": true, "Root": "/dicom-web/"},
 "DicomModalities": {"gg": ["GROUNDGLASS", "127.0.0.1", 11112], "getscu": ["GETSCU", "127.0.0.1", 11113],
                     "movescu": ["MOVESCU", "127.0.0.1", 11114]}}
JSON
Orthanc "$WORK/orthanc.json" > "$WORK/orthanc.log" 2>&1 &
ORTHANC=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:18042/system >/dev/null && break; sleep 0.2; done
for f in "$SERIES"/*; do curl -sf -X POST --data-binary @"$f" http://127.0.0.1:18042/instances >/dev/null; done
BASE=http://127.0.0.1:18042/dicom-web
IDS=$("$GG" pacs search --server "$BASE" --json | python3 -c '
import json, sys
s = json.load(sys.stdin)["studies"][0]
print(s["study_uid"], s["series"][0]["series_uid"], s["series"][0]["instances"])')
read -r STUDY SER COUNT <<<"$IDS"
echo "series $SER: $COUNT instances, $(du -sh "$SERIES" | cut -f1) on disk"
ACCEPT='Accept: multipart/related; type="application/dicom"; transfer-syntax=*'
for run in $(seq "$RUNS"); do
  C=$(curl -s -o "$WORK/curl.multipart" -H "$ACCEPT" -w '%{time_starttransfer} %{time_total} %{size_download}' "$BASE/studies/$STUDY/series/$SER")
  rm -rf "$WORK/out"
  G=$("$GG" pacs retrieve --server "$BASE" --study "$STUDY" --series "$SER" --out "$WORK/out" 2>/dev/null)
  python3 - "$C" "$G" <<'PY'
import re, sys
first_c, total_c, size = map(float, sys.argv[1].split())
m = re.search(r"\(([\d.]+) MB\) into .* in ([\d.]+) s \(first after ([\d.]+) s\)", sys.argv[2])
mb, total_g, first_g = map(float, m.groups())
print(f"curl {total_c:.2f} s ({size / 1e6:.0f} MB, first byte {first_c:.3f} s); groundglass {total_g:.2f} s "
      f"({mb:.0f} MB written, first instance on disk {first_g:.3f} s); ratio {total_g / total_c:.2f} (target <= 1.2)")
PY
done
# One DIMSE line: the operation, the peer, its start and end, our `pacs retrieve` output, the
# peer's file count.
dimse_ratio() {
  python3 - "$@" <<'PY'
import re, sys
op, peer, t0, t1, ours, files = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
m = re.search(r"^(\d+) instances .* in ([\d.]+) s \(first after ([\d.]+) s\)", ours)
n, total_g, first_g = int(m.group(1)), float(m.group(2)), float(m.group(3))
print(f"{op}: {peer} {t1 - t0:.2f} s ({files} files); groundglass {total_g:.2f} s ({n} files, first on disk {first_g:.3f} s); "
      f"ratio {total_g / (t1 - t0):.2f} (target <= 1.0)")
PY
}
# C-GET: dcmtk's getscu against `pacs retrieve` over DIMSE (both write one file per instance).
if command -v getscu >/dev/null; then
  for run in $(seq "$RUNS"); do
    rm -rf "$WORK/getscu" "$WORK/out" && mkdir "$WORK/getscu"
    T0=$(date +%s.%N)
    # TCP_NODELAY=1: dcmtk leaves Nagle's algorithm on otherwise, and each instance then waits
    # for a delayed ACK (14-16 s for 300 instances on loopback instead of about 1 s).
    TCP_NODELAY=1 getscu -aet GETSCU -aec ORTHANC -k QueryRetrieveLevel=SERIES -k StudyInstanceUID="$STUDY" \
      -k SeriesInstanceUID="$SER" -od "$WORK/getscu" 127.0.0.1 14242
    T1=$(date +%s.%N)
    G=$("$GG" pacs retrieve --server dicom://ORTHANC@127.0.0.1:14242 --study "$STUDY" --series "$SER" --out "$WORK/out" 2>/dev/null)
    dimse_ratio C-GET getscu "$T0" "$T1" "$G" "$(ls "$WORK/getscu" | wc -l)"
  done
else
  echo "getscu (dcmtk) not installed: no C-GET comparison"
fi
# C-MOVE: dcmtk's movescu, receiving on its own port as MOVESCU, against `pacs retrieve
# --store-port` (our storage SCP on 11112 as GROUNDGLASS); Orthanc sends each instance to the
# destination it knows for the AE title.
if command -v movescu >/dev/null; then
  for run in $(seq "$RUNS"); do
    rm -rf "$WORK/movescu" "$WORK/out" && mkdir "$WORK/movescu"
    T0=$(date +%s.%N)
    TCP_NODELAY=1 movescu -aet MOVESCU -aec ORTHANC -aem MOVESCU --port 11114 -S -k QueryRetrieveLevel=SERIES \
      -k StudyInstanceUID="$STUDY" -k SeriesInstanceUID="$SER" -od "$WORK/movescu" 127.0.0.1 14242
    T1=$(date +%s.%N)
    G=$("$GG" pacs retrieve --server dicom://ORTHANC@127.0.0.1:14242 --study "$STUDY" --series "$SER" \
      --store-port 11112 --out "$WORK/out" 2>/dev/null)
    dimse_ratio C-MOVE movescu "$T0" "$T1" "$G" "$(ls "$WORK/movescu" | wc -l)"
  done
else
  echo "movescu (dcmtk) not installed: no C-MOVE comparison"
fi

