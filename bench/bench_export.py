"""Export timings on a 300 x 512 x 512 CT: DICOM SEG (plain, anonymised), SEG read-back, PDF report,
PNG key image, NIfTI label map.

The series is written with :mod:`viewer.dicom.synth` into a temporary folder and loaded with the
real loader; the label map has two lungs and a lesion (three segments, ~560 non-empty SEG frames).
Medians of ``--runs`` runs after one warm-up, one process, measured side by side.

Usage: ``python bench/bench_export.py [--no-write] [--runs N] [--slices N]``. Prints a markdown table
and writes ``docs/bench/export.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _report import publish  # noqa: E402  (bench/ is sys.path[0] when run as a script)

from viewer.dicom.load import load_path  # noqa: E402
from viewer.dicom.seg_reader import read_seg  # noqa: E402
from viewer.dicom.synth import write_series  # noqa: E402
from viewer.export.nifti import write_nifti  # noqa: E402
from viewer.export.png import compose_key_image, write_png  # noqa: E402
from viewer.export.report import build_report  # noqa: E402
from viewer.export.seg import SegmentInfo, write_seg  # noqa: E402
from viewer.segstats import segment_statistics  # noqa: E402

INFO = {1: {"name": "Right lung", "color": (230, 96, 60)}, 2: {"name": "Left lung", "color": (60, 140, 230)},
        3: {"name": "Lesion", "color": (250, 220, 40)}}


def timed(fn, runs: int) -> float:
    fn()
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return float(np.median(t))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--slices", type=int, default=300)
    args = ap.parse_args()
    nz = args.slices
    z, y, x = np.ogrid[:nz, :512, :512]
    lung_r = ((y - 256) / 170.0) ** 2 + ((x - 160) / 90.0) ** 2 + ((z - nz / 2) / (0.45 * nz)) ** 2 <= 1
    lung_l = ((y - 256) / 170.0) ** 2 + ((x - 352) / 90.0) ** 2 + ((z - nz / 2) / (0.45 * nz)) ** 2 <= 1
    lesion = ((y - 230) / 12.0) ** 2 + ((x - 150) / 12.0) ** 2 + ((z - nz / 2) / 12.0) ** 2 <= 1
    hu = np.full((nz, 512, 512), 40, np.int16)
    hu[lung_r | lung_l] = -850
    hu[lesion] = 30
    labels = np.zeros(hu.shape, np.uint8)
    labels[lung_r], labels[lung_l], labels[lesion] = 1, 2, 3
    segments = [SegmentInfo(v, d["name"], d["color"], algorithm_name="bench", algorithm_version="1")
                for v, d in INFO.items()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        t0 = time.perf_counter()
        write_series(t / "ct", hu, spacing=(1.0, 0.7, 0.7), uid_seed="bench")
        vol = load_path(t / "ct")
        setup = time.perf_counter() - t0
        stats = segment_statistics(labels, vol.voxels, vol.spacing, label_names={k: v["name"] for k, v in INFO.items()})
        seg_path = t / "seg.dcm"
        rows.append(("DICOM SEG write", timed(lambda: write_seg(seg_path, vol, labels, segments), args.runs)))
        size_mb = seg_path.stat().st_size / 1e6
        rows.append(("DICOM SEG write, anonymised", timed(
            lambda: write_seg(t / "a.dcm", vol, labels, segments, anonymize=True), args.runs)))
        rows.append(("DICOM SEG read onto the series (read_seg)", timed(lambda: read_seg(seg_path, vol), args.runs)))
        pdf: list[bytes] = []
        rows.append(("PDF report (auto key images)", timed(
            lambda: pdf.append(build_report(volume=vol, labels=labels, stats=stats, labels_info=INFO)), args.runs)))
        colors = {k: v["color"] for k, v in INFO.items()}
        rows.append(("key image compose + PNG write (512²)", timed(lambda: write_png(
            t / "k.png", compose_key_image(vol.voxels[nz // 2], labels=labels[nz // 2], colors=colors)), args.runs)))
        rows.append(("NIfTI label map (.nii.gz)", timed(
            lambda: write_nifti(labels, t / "labels.nii.gz", volume=vol), args.runs)))
    lines = [
        f"## Export timings ({nz} x 512 x 512 CT, 3 segments)",
        "",
        f"Medians of {args.runs} runs after a warm-up; SEG file {size_mb:.1f} MB; series written and loaded in "
        f"{setup:.1f} s (not included). {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}; load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
        f"cores (shared machine). PDF {len(pdf[-1]) / 1e3:.0f} kB.",
        "",
        "| export | median s |",
        "|---|---|",
    ]
    lines += [f"| {name} | {sec:.2f} |" for name, sec in rows]
    lines.append("")
    publish("export", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
