"""End-to-end segmentation of a 300-slice 512x512 CT series with each engine, in one run.

Measures, per engine (ONNX Runtime FP32, ONNX Runtime INT8, PyTorch eager): DICOM load (once,
shared), ``segment_volume`` by stage (domain check, engine/session creation, preprocessing,
inference, resampling back, post-processing), statistics, NIfTI write, the end-to-end sum, and
the peak resident memory above the level before the run (sampled every 10 ms with psutil).
Target: end to end ≤ 10 s with ONNX on 2 cores.

The series is a real DICOM series written with :mod:`viewer.dicom.synth` from an
:func:`inference.phantom.generate_volume` chest phantom (30 slices of 10 mm, each repeated 10x
along z to make 300 slices of 1 mm: generating 300 thin slices takes minutes, and the engine
cost does not depend on the z detail).

Usage: ``python bench/bench_segment.py [--model DIR] [--slices 300] [--threads 2]
[--engines onnx,onnx-int8,torch]``. Prints a markdown table and writes ``docs/bench/segment.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class PeakRSS:
    """Peak resident set size (bytes) of this process while the block runs, sampled every 10 ms."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self.proc.memory_info().rss
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def make_series(folder: Path, slices: int, size: int) -> None:
    from inference.phantom import generate_volume
    from viewer.dicom.synth import write_series

    base = max(1, slices // 10)
    sx = 360.0 / size
    hu, _, _ = generate_volume(
        np.random.default_rng(2024),
        shape=(base, size, size),
        spacing=(10.0, sx, sx),
        z_range=(0.2, 0.8),
        lesions=2,
    )
    rep = int(np.ceil(slices / base))
    vol = np.repeat(hu[::-1], rep, axis=0)[:slices].astype(np.int16)  # slice 0 most caudal (HFS)
    write_series(
        folder,
        vol,
        spacing=(10.0 / rep, sx, sx),
        origin=(-180.0, -180.0, -300.0),
        extra={"BodyPartExamined": "CHEST"},
        window=(-600.0, 1500.0),
    )


def run(args: argparse.Namespace) -> str:
    import onnxruntime as ort

    from inference.package import find_package, load_package
    from inference.pipeline import clear_engine_cache, segment_volume
    from viewer.dicom.load import load_path
    from viewer.export.nifti import write_nifti
    from viewer.segstats import segment_statistics

    pkg = load_package(args.model, verify=True) if args.model else find_package("lung-ct-unet")
    with tempfile.TemporaryDirectory() as tmp:
        series = Path(tmp) / "series"
        t = time.perf_counter()
        make_series(series, args.slices, args.size)
        print(
            f"wrote {args.slices} x {args.size}² DICOM in {time.perf_counter() - t:.1f} s",
            file=sys.stderr,
        )
        t = time.perf_counter()
        vol = load_path(series)
        t_load = time.perf_counter() - t
        rows = []
        for kind in args.engines.split(","):
            fkey = {"onnx": "onnx", "onnx-int8": "onnx_int8", "torch": "torch"}[kind]
            if fkey not in pkg.files:
                print(f"skip {kind}: not in package", file=sys.stderr)
                continue
            clear_engine_cache()
            with PeakRSS() as mem:
                c0 = sum(os.times()[:2])
                t0 = time.perf_counter()
                res = segment_volume(
                    vol,
                    pkg,
                    engine=kind,
                    threads=args.threads,
                    batch_size=args.batch,
                    keep_probabilities=args.probabilities,
                )
                t1 = time.perf_counter()
                stats = segment_statistics(
                    res.labels, vol.voxels, vol.spacing, label_names=res.label_names
                )
                t2 = time.perf_counter()
                write_nifti(res.labels, Path(tmp) / f"labels-{kind}.nii.gz", volume=vol)
                t3 = time.perf_counter()
                cpu = sum(os.times()[:2]) - c0
            tm = res.timings
            lungs = sum(e["volume_ml"] for e in stats["labels"] if "lung" in e["name"])
            rows.append(
                SimpleNamespace(
                    kind=kind,
                    e2e=t_load + (t1 - t0) + (t2 - t1) + (t3 - t2),
                    seg=t1 - t0,
                    cpu=cpu,
                    stats=t2 - t1,
                    write=t3 - t2,
                    tm=tm,
                    per_slice=1000 * tm["inference"] / vol.shape[0],
                    mem=(mem.peak - mem.base) / 2**20,
                    lungs=lungs,
                    provider=res.engine.get("provider"),
                )
            )
            print(
                f"{kind}: {t1 - t0:.2f} s segment, {rows[-1].e2e:.2f} s end to end", file=sys.stderr
            )
            del res
    lines = [
        "## Segmentation end to end (`bench/bench_segment.py`)",
        "",
        f"{args.slices} slices x {args.size}² ({vol.spacing[1]:.2f} mm pixels) CT series, "
        "DICOM on disk → labels.nii.gz"
        f" + statistics; model `{pkg.name}` {pkg.version} (input {pkg.input.inplane_policy} "
        f"{pkg.input.spacing_mm or pkg.input.size}), {args.threads} intra-op threads, batch "
        f"{args.batch}, "
        f"probabilities {'kept (GUI path)' if args.probabilities else 'not kept (CLI path)'}. "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} before the run, "
        f"onnxruntime {ort.__version__}, "
        f"{platform.python_implementation()} {platform.python_version()}. Target: ONNX end to "
        "end ≤ 10 s on 2 cores.",
        "",
        "| engine | end to end s | load s | segment s | session s | preprocess s | inference s "
        "| resample back s "
        "| postprocess s | stats s | NIfTI s | inference ms/slice | CPU s (after load) "
        "| peak RSS +MB | lungs mL |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        tm = r.tm
        lines.append(
            f"| {r.kind} | **{r.e2e:.2f}** | {t_load:.2f} | {r.seg:.2f} | "
            f"{tm['engine_load']:.2f} | {tm['preprocess']:.2f} "
            f"| {tm['inference']:.2f} | {tm['resample_back']:.2f} | {tm['postprocess']:.2f} | "
            f"{r.stats:.2f} "
            f"| {r.write:.2f} | {r.per_slice:.1f} | {r.cpu:.1f} | {r.mem:.0f} | {r.lungs:.0f} |"
        )
    lines += [
        "",
        "Peak RSS is above the process level just before the run (volume already loaded; with "
        "--probabilities it includes the uint8 probabilities, K x 300 x 512² bytes; for torch "
        "its import). "
        "The load is shared by "
        "all engines and counted in each end-to-end figure. CPU s is the process's user + system "
        "time from segmentation to NIfTI: unlike wall time it hardly depends on other jobs; on an "
        "idle 2-core machine the wall time of those steps lies between CPU/2 and CPU. The machine "
        "is shared (2 cores, a training job): compare ratios, not absolutes.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model", default=None, help="package folder (default: the shipped lung-ct-unet)"
    )
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--engines", default="onnx,onnx-int8,torch")
    ap.add_argument(
        "--probabilities",
        action="store_true",
        help="also keep uint8 probabilities (the GUI path; the CLI does not)",
    )
    ap.add_argument("--no-write", action="store_true", help="do not write docs/bench/segment.md")
    args = ap.parse_args()
    md = run(args)
    print(md)
    if not args.no_write:
        out = ROOT / "docs" / "bench" / "segment.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
