"""Preview latency of each preprocessing filter on a 512 x 512 CT slice (target ≤ 30 ms).

A preview is: window the int16 HU slice to uint8 (:func:`viewer.preprocess.windowed_uint8`, the
display's mapping), run the filter with its default parameters (and the heaviest setting of its
slider), and for Canny compose the coloured edge overlay. Medians and 95th percentiles of 200
runs after 10 warm-up runs, one process, filters measured side by side.

Usage: ``python bench/bench_preprocess.py [--no-write] [--runs N]``. Prints a markdown table and
writes ``docs/bench/preprocess.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _report import publish  # noqa: E402  (bench/ is sys.path[0] when run as a script)

from viewer import preprocess as P  # noqa: E402

TARGET_MS = 30.0


def ct_slice(size: int = 512) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    c = size / 2
    hu = np.full((size, size), -1000.0)
    hu[((yy - c) / 0.4) ** 2 + ((xx - c) / 0.46) ** 2 < size**2] = 40
    for cx in (0.33, 0.67):
        hu[((yy - 0.47 * size) / 0.28) ** 2 + ((xx - cx * size) / 0.13) ** 2 < size**2] = -850
    hu[int(0.8 * size) : int(0.85 * size), int(0.45 * size) : int(0.55 * size)] = 900
    return (hu + rng.normal(0, 15, hu.shape)).astype(np.int16)


def timed(fn, runs: int) -> tuple[float, float, float]:
    """(median wall ms, p95 wall ms, median process CPU ms) of ``fn``."""
    for _ in range(10):
        fn()
    t = np.empty(runs)
    c = np.empty(runs)
    for i in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        t[i] = time.perf_counter() - t0
        c[i] = time.process_time() - c0
    return float(np.median(t) * 1e3), float(np.percentile(t, 95) * 1e3), float(np.median(c) * 1e3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    hu = ct_slice()
    win = (-600.0, 1500.0)
    heavy = {
        "clahe": {"clip_limit": 40.0, "tile_grid": 32},
        "canny": {"blur_sigma": 10.0},
        "sobel": {"ksize": 7},
        "gaussian": {"sigma": 10.0},
        "median": {"ksize": 11},
    }
    rows = []
    med, p95, cpu = timed(lambda: P.windowed_uint8(hu, *win), args.runs)
    rows.append(("window int16 → uint8 (512²)", "-", med, p95, cpu))
    for name, spec in P.FILTERS.items():
        settings = [("default", {})] + ([("slider max", heavy[name])] if name in heavy else [])
        for label, params in settings:
            if name == "canny":

                def run(params=params):
                    img = P.windowed_uint8(hu, *win)
                    return P.edges_overlay(img, P.apply_filter("canny", img, **params))
            else:

                def run(name=name, params=params):
                    return P.apply_filter(name, P.windowed_uint8(hu, *win), **params)

            med, p95, cpu = timed(run, args.runs)
            shown = ", ".join(f"{k}={v}" for k, v in P.validate_params(name, params).items()) or "-"
            rows.append(
                (
                    f"{spec.label} ({label})" + (" + overlay" if name == "canny" else ""),
                    shown,
                    med,
                    p95,
                    cpu,
                )
            )
    lines = [
        "## Preprocessing preview latency (512² slice)",
        "",
        f"Window + filter (+ edge overlay for Canny), medians and p95 of {args.runs} runs; "
        f"target ≤ {TARGET_MS:.0f} ms. "
        f"{platform.processor() or platform.machine()}, OpenCV {cv2.__version__}, "
        f"cv2 threads {cv2.getNumThreads()}; load average at the end "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine).",
        "",
        "The verdict uses the median wall time; p95 shows the effect of outside load; CPU ms is "
        "the work",
        "done by the process (all threads).",
        "",
        "| preview | parameters | median ms | p95 ms | CPU ms | ≤ 30 ms |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {n} | {p} | {m:.2f} | {q:.2f} | {c:.2f} | {'yes' if m <= TARGET_MS else 'NO'} |"
        for n, p, m, q, c in rows
    ]
    lines.append("")
    publish("preprocess", lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
