"""Grad-CAM per 512 x 512 slice on the PyTorch twin (target ≤ 1 s on 2 cores).

Model: the shipped ``lung-ct-unet`` package when installed, else a ``UNet2D`` with the shipped
architecture's defaults (base 16, depth 4, random weights: the cost does not depend on them).
For each method (Grad-CAM, Grad-CAM++, HiResCAM) and target layer, the time of one
:func:`inference.gradcam.compute_cam` call (forward + backward + map + resize, hooks set up and
released) on a 512² input, beside a plain no-grad forward of the same model. Medians of N runs
after one warm-up, measured side by side in one process, torch at 2 threads and at 1 thread.

Usage: ``python bench/bench_gradcam.py [--no-write] [--runs N]``. Prints a markdown table and
writes ``docs/bench/gradcam.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_S = 1.0


def load_model():
    from inference.package import find_package

    try:
        pkg = find_package("lung-ct-unet")
        from inference.gradcam import load_cam_model

        model, layer = load_cam_model(pkg)
        return model, layer, f"shipped {pkg.name} {pkg.version}", pkg.input.channels
    except Exception as exc:  # noqa: BLE001 - fall back to the same architecture
        from inference.networks import UNet2D

        print(f"(shipped model not available: {exc}; using UNet2D(base=16, depth=4) random weights)")
        model = UNet2D(1, 4, base=16, depth=4).eval()
        return model, "decoder.3", "UNet2D base 16, depth 4 (random weights)", 1


def median_time(fn, runs: int) -> float:
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
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    import torch

    from inference.gradcam import METHODS, compute_cam

    model, layer, desc, channels = load_model()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (1, channels, 512, 512)).astype(np.float32)
    layers = [layer] + [n for n in ("decoder.1", "bottleneck") if n != layer]
    rows = []
    for threads in (2, 1):
        torch.set_num_threads(threads)

        def forward():
            with torch.no_grad():
                model(torch.from_numpy(x))

        fwd = median_time(forward, args.runs)
        rows.append((threads, "forward only (no grad)", "-", fwd, None))
        for method in METHODS:
            for lay in layers if method == "gradcam" else [layer]:
                t = median_time(lambda m=method, lay=lay: compute_cam(model, x, target_label=1, method=m,
                                                                         target_layer=lay), args.runs)
                rows.append((threads, method, lay, t, t / fwd))
    lines = [
        "## Grad-CAM per 512² slice",
        "",
        f"Model: {desc}; target label 1 (predicted-mask target). Medians of {args.runs} runs after a "
        f"warm-up; target ≤ {TARGET_S:.0f} s per slice. torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}; load average at the end {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores (shared machine: 2-thread torch suffers most from outside load).",
        "",
        "| torch threads | method | target layer | s per slice | × forward | ≤ 1 s |",
        "|---|---|---|---|---|---|",
    ]
    for th, m, lay, t, ratio in rows:
        ok = "" if ratio is None else ("yes" if t <= TARGET_S else "NO")
        lines.append(f"| {th} | {m} | {lay} | {t:.3f} | {'' if ratio is None else f'{ratio:.1f}'} | {ok} |")
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        (ROOT / "docs" / "bench").mkdir(parents=True, exist_ok=True)
        (ROOT / "docs" / "bench" / "gradcam.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
