"""Engines side by side on the shipped lung model: torch eager, ONNX Runtime FP32, ONNX Runtime INT8.

Per-slice latency (median of ``--runs``) and throughput at the model's input size, batch 1 and
batch 8, in one run and one process; ratios ONNX/torch and INT8/FP32; and the time to segment a
300-slice 512² series end to end with ORT INT8 / FP32 (resample to the model spacing, window, pad,
infer, resize logits back, argmax). Prints a markdown table and writes ``docs/bench/engines.md``.

    python bench/bench_engines.py [--runs 10] [--threads 2] [--series 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.package import load_package  # noqa: E402
from inference.quantize import ort_session  # noqa: E402


def _median_ms(fn, x: np.ndarray, runs: int) -> tuple[float, float]:
    """Median wall-clock and process-CPU milliseconds per call."""
    fn(x)  # warm-up
    ts, cs = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn(x)
        ts.append(time.perf_counter() - t)
        cs.append(time.process_time() - c)
    return statistics.median(ts) * 1000.0, statistics.median(cs) * 1000.0


_GEMM = 2048


def _model_flops(model, size: int) -> float:
    """FLOPs of one ``size``² slice through the torch model (multiply-add = 2)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        model(torch.zeros(1, 1, size, size))
    return float(fc.get_total_flops())


def _sgemm_gflops(threads: int, runs: int = 7) -> float:
    """This CPU's attainable FP32 throughput: the best of ``runs`` 2048² matrix products (GFLOP/s)."""
    import torch

    torch.set_num_threads(threads)
    a = torch.rand(_GEMM, _GEMM)
    b = torch.rand(_GEMM, _GEMM)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(runs))
    return 2.0 * _GEMM**3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--package", default=str(ROOT / "resources" / "models" / "lung-ct-unet"))
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=256, help="model input H = W (pixels at the model spacing)")
    ap.add_argument("--series", type=int, default=300, help="slices of the end-to-end series (0 = skip)")
    ap.add_argument("--no-s8s8", action="store_true", help="skip the s8/s8 INT8 variant (quantised here)")
    a = ap.parse_args(argv)
    import torch

    from inference.evaluate import _torch_model

    torch.set_num_threads(a.threads)
    pkg = load_package(a.package, verify=True)
    model = _torch_model(pkg)
    s32, s8 = ort_session(pkg.file("onnx"), a.threads), ort_session(pkg.file("onnx_int8"), a.threads)

    def torch_eager(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    engines = {"torch eager": torch_eager,
               "ORT FP32": lambda x: s32.run(["logits"], {"image": x})[0],
               "ORT INT8": lambda x: s8.run(["logits"], {"image": x})[0]}
    if not a.no_s8s8:  # the quantiser's default type combination, for comparison with the shipped u8/s8
        import tempfile

        from inference.export import parity_inputs
        from inference.quantize import quantize_int8

        tmp = Path(tempfile.mkdtemp(prefix="bench-s8s8-"))
        q = quantize_int8(pkg.file("onnx"), tmp / "s8s8.onnx", parity_inputs(a.size, a.size, 8, 1, 0),
                          activations="s8", weights="s8")
        s8s8 = ort_session(q, a.threads)
        engines_extra = {"ORT INT8 s8/s8": lambda x: s8s8.run(["logits"], {"image": x})[0]}
    else:
        engines_extra = {}
    flops = _model_flops(model, a.size)
    ceiling = _sgemm_gflops(a.threads)
    rng = np.random.default_rng(0)
    rows, per = [], {}
    load0 = os.getloadavg()[0]
    for b in (1, 8):
        x = rng.random((b, 1, a.size, a.size), dtype=np.float32)
        for name, fn in engines.items():
            ms, cpu = _median_ms(fn, x, a.runs if b == 1 else max(3, a.runs // 3))
            per[(name, b)] = ms / b
            gf = flops * b / ms / 1e6  # GFLOP/s (the INT8 graph does the same work in 8-bit)
            rows.append(f"| {name} | {b} | {ms / b:.1f} | {1000.0 * b / ms:.1f} | {cpu / b:.1f} | "
                        f"{gf:.0f} ({100.0 * gf / ceiling:.0f} %) |")
    x1 = rng.random((1, 1, a.size, a.size), dtype=np.float32)
    for name, fn in engines_extra.items():
        ms, cpu = _median_ms(fn, x1, a.runs)
        gf = flops / ms / 1e6
        rows.append(f"| {name} (not shipped) | 1 | {ms:.1f} | {1000.0 / ms:.1f} | {cpu:.1f} | "
                    f"{gf:.0f} ({100.0 * gf / ceiling:.0f} %) |")
    r_onnx = {b: per[("torch eager", b)] / per[("ORT FP32", b)] for b in (1, 8)}
    r_int8 = {b: per[("ORT FP32", b)] / per[("ORT INT8", b)] for b in (1, 8)}
    e2e = []
    if a.series:
        sys.path.insert(0, str(ROOT / "bench"))
        from eval_model_real import segment

        hu = np.full((a.series, 512, 512), -1000, np.float32)
        yy, xx = np.mgrid[0:512, 0:512]
        hu[:, ((yy - 256) / 170) ** 2 + ((xx - 256) / 230) ** 2 < 1] = 40
        for name in ("ORT INT8", "ORT FP32"):
            t = time.perf_counter()
            segment(lambda x, f=engines[name]: f(x), hu, (0.7, 0.7), pkg.input, batch=2)
            e2e.append(f"| {name} | {a.series} × 512² at 0.7 mm → {pkg.input.spacing_mm} mm | "
                       f"{time.perf_counter() - t:.1f} s |")
    md = "\n".join([
        f"Model `{pkg.name}` {pkg.version}, input {a.size}×{a.size}, {a.threads} threads, "
        f"{platform.processor() or platform.machine()}, medians of {a.runs} runs (batch 8: {max(3, a.runs // 3)}).",
        f"1-min load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end, on {os.cpu_count()} CPUs "
        "(a load above the CPU count means other jobs shared the CPUs during the run and wall times "
        "are inflated; CPU ms per slice is less sensitive to that).",
        f"The model costs {flops / 1e9:.2f} GFLOP per slice (torch FlopCounterMode); the last column is the "
        f"throughput that implies, and its share of this machine's FP32 ceiling measured in the same run "
        f"({ceiling:.0f} GFLOP/s: a {_GEMM}² sgemm, {a.threads} threads).",
        "", "| engine | batch | ms / slice (wall) | slices / s | CPU ms / slice | GFLOP/s (of ceiling) |",
        "|---|---|---|---|---|---|",
        *rows, "",
        f"Roofline: at batch 1 ORT FP32 runs at {100.0 * flops / per[('ORT FP32', 1)] / 1e6 / ceiling:.0f} % "
        f"of the sgemm ceiling and torch eager at {100.0 * flops / per[('torch eager', 1)] / 1e6 / ceiling:.0f} %; "
        f"ONNX ≥ 2× torch at batch 1 would need ORT at {200.0 * flops / per[('torch eager', 1)] / 1e6 / ceiling:.0f} % "
        "of it.  ",
        f"ONNX FP32 vs torch eager: {r_onnx[1]:.2f}× (batch 1), {r_onnx[8]:.2f}× (batch 8); target ≥ 2×.  ",
        f"INT8 vs FP32: {r_int8[1]:.2f}× (batch 1), {r_int8[8]:.2f}× (batch 8); target ≥ 1.5×.", "",
        *(["| end to end | series | time |", "|---|---|---|", *e2e, "", "Target: 300 slices ≤ 10 s."] if e2e else []),
    ])
    print(md)
    out = ROOT / "docs" / "bench" / "engines.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# Inference engines\n\n" + md + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
