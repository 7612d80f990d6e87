#!/usr/bin/env python3
"""How the bundled demo model's grounded answers change under q8_0.

Runs `groundglass ask --task grounded --json` on each axial slice of the demo study at f32 and
at q8_0 (the release build), and compares: answers identical token for token, the same set of
structures named, f32's findings found again, and the overlap (IoU) of their boxes.

    cargo build --release -p groundglass && python3 bench/q8_0_demo_answers.py
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GG", os.path.join(ROOT, "target", "release", "groundglass"))
STUDY = os.path.join(ROOT, "assets", "demo", "study")
MODEL = os.path.join(ROOT, "assets", "models", "demo")


def ask(dtype, index):
    run = subprocess.run(
        [BIN, "ask", STUDY, "--model", MODEL, "--dtype", dtype, "--task", "grounded",
         "--index", str(index), "--json"],
        capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def iou(a, b):
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def main():
    slices = int(sys.argv[1]) if len(sys.argv) > 1 else 72
    identical = same_classes = findings = found = 0
    overlaps = []
    for i in range(slices):
        a, b = ask("f32", i), ask("q8_0", i)
        identical += a["text"] == b["text"]
        boxes_a = {f["class_id"]: f["box_px"] for f in a["findings"]}
        boxes_b = {f["class_id"]: f["box_px"] for f in b["findings"]}
        same_classes += set(boxes_a) == set(boxes_b)
        findings += len(boxes_a)
        for c, box in boxes_a.items():
            if c in boxes_b:
                found += 1
                overlaps.append(iou(box, boxes_b[c]))
    overlaps.sort()
    print(f"slices {slices}: identical answers {identical}, same set of structures {same_classes}; "
          f"f32 findings {findings}, found again under q8_0 {found}; box IoU median "
          f"{overlaps[len(overlaps) // 2]:.3f}, 10th percentile {overlaps[len(overlaps) // 10]:.3f}, "
          f"lowest {overlaps[0]:.3f}")


if __name__ == "__main__":
    main()
