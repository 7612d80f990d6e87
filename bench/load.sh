#!/usr/bin/env bash
# Loading benchmark against the peers in ../shared/bench, in one run, printing ratios.
#
#   bash bench/load.sh            # RUNS=5 by default
#
# Needs: hyperfine, dcm2niix (apt-get install -y hyperfine dcm2niix) and python3 with pydicom,
# numpy, nibabel (pip install pydicom numpy nibabel). Makes /tmp/bench_series (300 x 512^2 CT,
# 152 MB) with the shared generator and its .nii.gz with dcm2niix when missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="$ROOT/../shared"
RUNS="${RUNS:-5}"
SERIES="${SERIES:-/tmp/bench_series}"
WORK="${WORK:-/tmp/gg-bench}"
OUT="$WORK/results"
mkdir -p "$WORK" "$OUT"

for t in hyperfine dcm2niix python3; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install -y hyperfine dcm2niix)"; exit 1; }
done
[[ -d "$SERIES" ]] || python3 "$SHARED/bench/make_series.py" from-slice \
  --src "$SHARED/testdata/dicom/transfer-syntax/pydicomdata_693_UNCI.dcm" --out "$SERIES" --count 300
if [[ ! -f "$WORK/bench.nii.gz" ]]; then
  dcm2niix -z y -f bench -o "$WORK" "$SERIES" >/dev/null
fi

cargo build --release -p groundglass --manifest-path "$ROOT/Cargo.toml" >/dev/null
GG="$ROOT/target/release/groundglass"
LOAD="python3 $SHARED/bench/peers_load.py"
D2N="$WORK/d2n"

hf() { local name="$1"; shift; hyperfine -N --warmup 1 --runs "$RUNS" --style basic --export-json "$OUT/$name.json" "$@" >/dev/null; }
hf dicom \
  -n "groundglass slice --plane sagittal" "$GG slice $SERIES --plane sagittal --out $WORK/sag.png" \
  --prepare "bash -c 'rm -rf $D2N && mkdir -p $D2N'" \
  -n "dcm2niix -z n" "dcm2niix -z n -f x -o $D2N $SERIES" \
  -n "pydicom+numpy" "$LOAD pydicom $SERIES"
hf nifti \
  -n "groundglass slice bench.nii.gz --plane sagittal" "$GG slice $WORK/bench.nii.gz --plane sagittal --out $WORK/sag_nii.png" \
  -n "nibabel get_fdata bench.nii.gz" "$LOAD nibabel $WORK/bench.nii.gz"

# Peak memory of the whole process (GNU time) and in-process first-slice latency.
/usr/bin/time -f "%M" -o "$OUT/rss_dicom.txt" "$GG" slice "$SERIES" --plane sagittal --out "$WORK/sag.png"
/usr/bin/time -f "%M" -o "$OUT/rss_nifti.txt" "$GG" slice "$WORK/bench.nii.gz" --plane sagittal --out "$WORK/sag_nii.png"
"$GG" bench load "$SERIES" > "$OUT/inprocess_dicom.json"
"$GG" bench load "$WORK/bench.nii.gz" > "$OUT/inprocess_nifti.json"

python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
def med(name):
    r = json.load(open(os.path.join(out, f"{name}.json")))["results"]
    return {x["command"]: x["median"] for x in r}
d, n = med("dicom"), med("nifti")
gg_d = d["groundglass slice --plane sagittal"]; d2n = d["dcm2niix -z n"]; pyd = d["pydicom+numpy"]
gg_n = n["groundglass slice bench.nii.gz --plane sagittal"]; nib = n["nibabel get_fdata bench.nii.gz"]
ind = json.load(open(os.path.join(out, "inprocess_dicom.json")))
inn = json.load(open(os.path.join(out, "inprocess_nifti.json")))
rss_d = int(open(os.path.join(out, "rss_dicom.txt")).read().split()[-1]) * 1024
rss_n = int(open(os.path.join(out, "rss_nifti.txt")).read().split()[-1]) * 1024
vox = ind["voxel_bytes"]
rows = [
  ("DICOM 300x512^2, slice --plane sagittal (s)", gg_d, d2n, "dcm2niix -z n", 0.5),
  ("  same, vs pydicom+numpy", gg_d, pyd, "pydicom+numpy", None),
  ("NIfTI .nii.gz, slice --plane sagittal (s)", gg_n, nib, "nibabel get_fdata", 0.25),
]
print("| measure | groundglass | peer | peer time | ratio | target |")
print("|---|---:|---|---:|---:|---:|")
for label, ours, peer, peer_name, target in rows:
    ratio = ours / peer
    t = f"<= {target}" if target else ""
    ok = "" if target is None else (" ok" if ratio <= target else " MISSED")
    print(f"| {label} | {ours:.3f} | {peer_name} | {peer:.3f} | {ratio:.2f}{ok} | {t} |")
print(f"| peak RSS, DICOM (whole process) | {rss_d/2**20:.0f} MiB | voxel bytes | {vox/2**20:.0f} MiB | {rss_d/vox:.2f}{' ok' if rss_d/vox <= 1.3 else ' MISSED'} | <= 1.3 |")
print(f"| peak RSS, NIfTI (whole process) | {rss_n/2**20:.0f} MiB | voxel bytes | {inn['voxel_bytes']/2**20:.0f} MiB | {rss_n/inn['voxel_bytes']:.2f}{' ok' if rss_n/inn['voxel_bytes'] <= 1.3 else ' MISSED'} | <= 1.3 |")
print(f"| first slice after opening the series, DICOM (in-process) | {ind['first_slice_ms']:.1f} ms | | | {' ok' if ind['first_slice_ms'] <= 150 else ' MISSED'} | <= 150 ms |")
print(f"| first slice after opening the series, NIfTI (in-process) | {inn['first_slice_ms']:.1f} ms | | | {' ok' if inn['first_slice_ms'] <= 150 else ' MISSED'} | <= 150 ms |")
print(f"| open (headers, grouping) DICOM, in-process | {ind['open_ms']:.1f} ms | full load {ind['load_ms']:.1f} ms | | | |")
PY
