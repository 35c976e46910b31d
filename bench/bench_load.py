"""Benchmark: DICOM series loading (scan, first image, full volume) vs raw reads and SimpleITK.

Generates a 300-slice 512x512 CT series (a smooth body phantom with CT-like noise, BitsStored 12
as most scanners write) twice in a temporary folder: uncompressed (explicit VR little endian) and
JPEG Lossless SV1 (encoded by GDCM through SimpleITK; RLE Lossless when SimpleITK is missing).
Side by side in one run, medians of ``--runs`` runs with a warm file cache:

* raw read of the same files (``open().read()``),
* ``scan`` (headers only),
* time to first image: scan + decode of the middle slice (``first_slice_callback``),
* full load: scan + ``load_stack`` with the defaults (compressed: the imagecodecs route with up to
  4 threads), and for the compressed series also imagecodecs on 1 thread and the pylibjpeg
  (pydicom) route on 1 and 2 threads,
* SimpleITK ``ImageSeriesReader`` on the same folder (file list + Execute + array view),
* peak traced memory of ``load_stack`` (tracemalloc) relative to the int16 volume.

Prints a markdown table and writes it to ``docs/bench/load.md``.
Usage: ``python bench/bench_load.py [--runs 5] [--slices 300]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _report import publish  # noqa: E402  (bench/ is sys.path[0] when run as a script)

import viewer.dicom.fastcodecs as fastcodecs  # noqa: E402
from viewer.dicom.load import load_stack  # noqa: E402
from viewer.dicom.scan import scan  # noqa: E402
from viewer.dicom.synth import JPEG_LOSSLESS_SV1, encodable_transfer_syntaxes, write_series  # noqa: E402

_CODECS = fastcodecs._codecs


def phantom(nz: int, n: int = 512, seed: int = 0) -> np.ndarray:
    """[z, y, x] int16 HU: air, an elliptic body (soft tissue), two lungs, a spine, CT noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1 : 1 : complex(0, n), -1 : 1 : complex(0, n)]
    body = (x / 0.85) ** 2 + (y / 0.6) ** 2 < 1
    spine = (x**2 + (y - 0.4) ** 2) < 0.01
    vol = np.empty((nz, n, n), dtype=np.int16)
    for z in range(nz):
        r = 0.25 + 0.1 * np.sin(np.pi * z / nz)
        lungs = (((x - 0.4) / r) ** 2 + (y / (1.4 * r)) ** 2 < 1) | (
            ((x + 0.4) / r) ** 2 + (y / (1.4 * r)) ** 2 < 1
        )
        sl = np.where(body, 40, -1000).astype(np.float32)
        sl[lungs & body] = -850
        sl[spine] = 700
        sl += rng.normal(0, 12, sl.shape).astype(np.float32) * body
        vol[z] = np.clip(sl, -1024, 3071).astype(np.int16)
    return vol


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(
    folder: Path, runs: int, variants: list[tuple[str, int | None, bool]]
) -> dict[str, float]:
    """Times for ``folder``; ``variants`` are (label, threads, allow imagecodecs)."""
    files = sorted(folder.iterdir())
    res: dict[str, float] = {}

    def raw() -> None:
        for p in files:
            with open(p, "rb") as f:
                f.read()

    raw()  # warm the cache
    res["raw read"] = median_time(raw, runs)
    res["scan (headers)"] = median_time(lambda: scan(folder), runs)
    for tag, th, codecs in variants:
        fastcodecs._codecs = _CODECS if codecs else (lambda: None)
        firsts, fulls = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            first: list[float] = []

            def on_first(z: int, a: np.ndarray, t0: float = t0, first: list[float] = first) -> None:
                first.append(time.perf_counter() - t0)

            st = scan(folder).stacks[0]
            load_stack(st, threads=th, first_slice_callback=on_first)
            fulls.append(time.perf_counter() - t0)
            firsts.append(first[0])
        res[f"first image ({tag})"] = statistics.median(firsts)
        res[f"full load, scan + decode ({tag})"] = statistics.median(fulls)
    fastcodecs._codecs = _CODECS
    try:
        import SimpleITK as sitk

        def sitk_read() -> None:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
            sitk.GetArrayViewFromImage(reader.Execute())

        res["SimpleITK ImageSeriesReader"] = median_time(sitk_read, runs)
    except ImportError:
        res["SimpleITK ImageSeriesReader"] = float("nan")
    st = scan(folder).stacks[0]
    tracemalloc.start()
    vol = load_stack(st)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    res["peak memory / int16 volume"] = peak / (vol.shape[0] * vol.shape[1] * vol.shape[2] * 2)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--slices", type=int, default=300)
    args = ap.parse_args()
    vol = phantom(args.slices)
    comp = (
        JPEG_LOSSLESS_SV1
        if JPEG_LOSSLESS_SV1 in encodable_transfer_syntaxes()
        else "1.2.840.10008.1.2.5"
    )
    comp_name = (
        "JPEG Lossless SV1 (GDCM encoder)"
        if comp == JPEG_LOSSLESS_SV1
        else "RLE Lossless (no JPEG encoder)"
    )
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_load_") as tmp:
        for label, ts in (("uncompressed", "1.2.840.10008.1.2.1"), (comp_name, comp)):
            folder = Path(tmp) / label.split()[0]
            t0 = time.perf_counter()
            write_series(
                folder,
                vol,
                spacing=(1.0, 0.7, 0.7),
                transfer_syntax=ts,
                bits_stored=12,
                uid_seed="bench",
            )
            size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
            print(
                f"wrote {label}: {args.slices} files, {size:.0f} MiB in "
                f"{time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            variants = [("default", None, True)]
            if ts != "1.2.840.10008.1.2.1":
                variants += [
                    ("imagecodecs, 1 thread", 1, True),
                    ("pylibjpeg, 1 thread", 1, False),
                    ("pylibjpeg, 2 threads", 2, False),
                ]
            results[label] = measure(folder, args.runs, variants)
            results[label]["_size"] = size
    lines = [
        f"## DICOM loading ({args.slices} x 512 x 512 CT, int16 volume "
        f"{args.slices * 512 * 512 * 2 / 2**20:.0f} MiB; median of {args.runs} runs, warm cache)",
        "",
    ]
    for label, r in results.items():
        sitk_t = r["SimpleITK ImageSeriesReader"]
        lines += [
            f"### {label} ({r['_size']:.0f} MiB on disk)",
            "",
            "| step | time (s) | SimpleITK time / this |",
            "|---|---|---|",
        ]
        for k, v in r.items():
            if k.startswith("_") or k.startswith("peak"):
                continue
            ratio = f"{sitk_t / v:.2f}x" if k.startswith("full") and v > 0 else ""
            lines.append(f"| {k} | {v:.3f} | {ratio} |")
        lines.append(
            f"| peak memory during load_stack | {r['peak memory / int16 volume']:.2f} x volume | |"
        )
        lines.append("")
    u = results["uncompressed"]
    c = results[comp_name]
    full_u = u["full load, scan + decode (default)"]
    full_c = c["full load, scan + decode (default)"]
    checks = [
        ("first image <= 0.25 s (uncompressed)", u["first image (default)"] <= 0.25),
        ("first image <= 0.25 s (compressed)", c["first image (default)"] <= 0.25),
        (
            "uncompressed full load >= 3x faster than SimpleITK",
            u["SimpleITK ImageSeriesReader"] / full_u >= 3,
        ),
        (
            "compressed full load at least as fast as SimpleITK",
            c["SimpleITK ImageSeriesReader"] / full_c >= 1,
        ),
        ("peak memory <= 1.5x int16 volume (uncompressed)", u["peak memory / int16 volume"] <= 1.5),
        ("peak memory <= 1.5x int16 volume (compressed)", c["peak memory / int16 volume"] <= 1.5),
    ]
    lines += ["| target | met |", "|---|---|"] + [
        f"| {n} | {'yes' if ok else 'NO'} |" for n, ok in checks
    ]
    lines += [
        "",
        "Full load includes the header scan. SimpleITK: `GetGDCMSeriesFileNames` + `Execute` + "
        "array view (int16 here since the files are int16-compatible). Uncompressed slices are "
        "read with `numpy.frombuffer` at the offset found by the scan; compressed single-frame "
        "grayscale slices are decoded by imagecodecs (libjpeg-turbo, GIL-free, a thread pool of "
        "up to 4) when it is installed, else by pydicom + pylibjpeg (libjpeg holds the GIL, so "
        "threads do not help). The machine has 2 cores shared with other jobs, so absolute times "
        "vary; ratios are measured side by side.",
        "",
    ]
    publish("load", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
