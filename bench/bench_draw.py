"""Benchmark: drawing CT slices in the viewer (offscreen, no OpenGL).

Side by side in one run (medians over ``--frames`` frames, 512x512 int16 CT-like slices):

* **frame build** — window/level int16 → uint8 plus two overlays (a label map with a packed
  palette, a float heatmap with a colormap) composited to RGB (``viewer.display``); also with an
  RGBA image overlay in place of the heatmap;
* **frame + Qt paint** — the same plus scaling to 1024x1024 and painting into a QImage: with
  QPainter's smooth transform, and with cv2.resize + an unscaled draw (what the slice view does);
* **scrolling in the real widget** — a ``MainWindow`` showing a 300x512x512 volume with a label
  layer and a heatmap layer; per step: ``state.step_slice`` + a synchronous ``repaint()`` of the
  axial view (window, overlays, QPainter, corner text, orientation letters, crosshair);
* **opening a series** — scan + load of a written 300-slice series in the real window: time to
  the first (middle) slice on screen and to the whole volume;
* **event-loop stall during inference** (when a model package is installed, or with a synthetic
  30-conv ONNX model otherwise): longest gap between 5 ms timer ticks while the segmentation
  runs in a worker with 1 intra-op thread.

Target (issue 3): frame ≤ 5 ms; stall ≤ 50 ms (issue 5). Prints a markdown table and writes it to
``docs/bench/draw.md``. Usage: ``python bench/bench_draw.py [--frames 200] [--slices 300]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _report import publish  # noqa: E402  (bench/ is sys.path[0] when run as a script)

import numpy as np  # noqa: E402

from viewer.display import (  # noqa: E402
    HeatmapPlane,
    LabelPlane,
    RGBAPlane,
    colormap,
    composite,
    pack_palette,
    window_to_uint8,  # noqa: E402
)



def ct_volume(nz: int, n: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int16 HU [nz, n, n] (body ellipse, lungs, noise), uint8 labels and float32 heat."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n - 0.5
    body = (xx / 0.42) ** 2 + (yy / 0.32) ** 2 <= 1
    lungs = ((np.abs(xx) - 0.17) / 0.12) ** 2 + (yy / 0.22) ** 2 <= 1
    sl = np.where(body, 40, -1000).astype(np.float32)
    sl[lungs] = -850
    hu = np.empty((nz, n, n), np.int16)
    for z in range(nz):
        hu[z] = np.clip(sl + rng.normal(0, 15, (n, n)), -1024, 3000).astype(np.int16)
    lab2d = (lungs & (xx < 0)).astype(np.uint8) + 2 * (lungs & (xx >= 0)).astype(np.uint8)
    labels = np.repeat(lab2d[None], nz, axis=0)
    heat = np.exp(-((xx - 0.1) ** 2 + (yy + 0.05) ** 2) / 0.01).astype(np.float32)
    return hu, labels, np.repeat(heat[None], nz, axis=0)


def bench_frames(frames: int) -> list[tuple[str, float]]:
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtWidgets import QApplication

    QApplication.instance() or QApplication([])
    hu, labels, heat = ct_volume(8)
    pal = pack_palette({1: (220, 80, 60), 2: (60, 120, 220)})
    jet = colormap("jet")
    rgba = np.zeros((512, 512, 4), np.uint8)
    rgba[100:300, 100:300] = (255, 0, 255, 128)

    def build(i: int, with_rgba: bool = False) -> np.ndarray:
        z = i % hu.shape[0]
        gray = window_to_uint8(hu[z], -600, 1500)
        second = RGBAPlane(rgba, 0.8) if with_rgba else HeatmapPlane(heat[z], jet, 0.5, 0.2)
        return composite(gray, [LabelPlane(labels[z], pal, 0.4), second])

    target = QImage(1024, 1024, QImage.Format.Format_RGB32)

    def paint(i: int) -> None:
        rgb = build(i)
        img = QImage(rgb.data, 512, 512, 512 * 3, QImage.Format.Format_RGB888)
        p = QPainter(target)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.drawImage(QRectF(0, 0, 1024, 1024), img)
        p.end()

    def paint_cv2(i: int) -> None:
        import cv2

        bgra = cv2.cvtColor(
            cv2.resize(build(i), (1024, 1024), interpolation=cv2.INTER_LINEAR), cv2.COLOR_RGB2BGRA
        )
        img = QImage(bgra.data, 1024, 1024, 1024 * 4, QImage.Format.Format_RGB32)
        p = QPainter(target)
        p.drawImage(0, 0, img)
        p.end()

    variants = [
        ("window/level only (int16 → uint8)", lambda i: window_to_uint8(hu[i % 8], -600, 1500)),
        ("frame build: window + label map + heatmap", build),
        ("frame build: window + label map + RGBA image", lambda i: build(i, True)),
        ("frame build + QPainter smooth scaling to 1024² (not used)", paint),
        ("frame build + cv2 resize to 1024² + QPainter draw (the view's path)", paint_cv2),
    ]
    times: dict[str, list[float]] = {name: [] for name, _ in variants}
    for i in range(frames):  # interleaved, so machine-load drift hits every variant alike
        for name, fn in variants:
            t = time.perf_counter()
            fn(i)
            times[name].append(time.perf_counter() - t)
    return [(name, statistics.median(times[name]) * 1000) for name, _ in variants]


def bench_scroll(slices: int) -> list[tuple[str, float]]:
    from PySide6.QtWidgets import QApplication

    from viewer.qt.main_window import MainWindow
    from viewer.state import HeatmapLayer, LabelLayer
    from viewer.volume import Volume, VolumeMeta

    app = QApplication.instance() or QApplication([])
    hu, labels, heat = ct_volume(slices)
    with tempfile.TemporaryDirectory() as home:
        os.environ["CLINICAL_VIEWER_HOME"] = home
        w = MainWindow(recording_errors=True)
        w.resize(1400, 900)
        w.show()
        vol = Volume(
            hu, (1.0, 0.7, 0.7), meta=VolumeMeta(modality="CT", patient_name="Bench^Patient")
        )
        w.set_volume(vol, "bench")
        w.state.set_layer(LabelLayer("seg", labels, {1: (220, 80, 60), 2: (60, 120, 220)}))
        w.state.set_layer(HeatmapLayer("cam", heat))
        w.state.set_window(-600, 1500)
        w.state.set_slice(0, 0)
        view = w.grid.views[0]
        app.processEvents()
        ts = []
        t_all = time.perf_counter()
        for _ in range(slices - 1):
            t = time.perf_counter()
            w.state.step_slice(0, 1)
            view.repaint()
            ts.append(time.perf_counter() - t)
        total = time.perf_counter() - t_all
        size = f"{view.width()}x{view.height()}"
        w.state.set_layout("2x2")
        app.processEvents()
        ts2 = []
        for _ in range(60):
            t = time.perf_counter()
            w.state.step_slice(0, -1)  # the views schedule update(); one event-loop pass paints all
            app.processEvents()
            ts2.append(time.perf_counter() - t)
        w.close()
    ts.sort()
    return [
        (
            f"scroll {slices - 1} slices, axial view {size}: median per frame",
            statistics.median(ts) * 1000,
        ),
        ("scroll: 95th percentile per frame", ts[int(0.95 * len(ts))] * 1000),
        (f"scroll: whole pass of {slices - 1} slices (ms)", total * 1000),
        (
            "2x2 MPR, one step (3 views updated, one event-loop pass): median",
            statistics.median(ts2) * 1000,
        ),
    ]


def bench_stall() -> list[tuple[str, float]]:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from inference.package import discover_packages, load_package
    from inference.pipeline import segment_volume
    from viewer.qt.workers import JobRunner
    from viewer.volume import Volume, VolumeMeta

    app = QApplication.instance() or QApplication([])
    pkgs, _ = discover_packages()
    tmp = tempfile.TemporaryDirectory()
    if pkgs:
        pkg, what = pkgs[0], pkgs[0].name
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        from tests.test_engines import build_slow_onnx, write_package

        root = Path(tmp.name) / "slow"
        root.mkdir()
        wide = {
            "modalities": ["CT"],
            "hu_range": [-1100, 3100],
            "pixel_spacing_mm": [0.1, 5.0],
            "fov_mm": [10, 1000],
            "orientations": ["axial"],
            "body_parts": [""],
        }
        pkg = load_package(
            write_package(
                root, {"onnx": build_slow_onnx(root / "model.onnx", layers=30)}, domain=wide
            )
        )
        what = "synthetic 30-conv ONNX"
    hu, _, _ = ct_volume(12)
    vol = Volume(hu, (2.0, 0.7, 0.7), meta=VolumeMeta(modality="CT", body_part="CHEST"))
    runner = JobRunner()
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(5)
    job = runner.submit(
        lambda progress, cancel: segment_volume(
            vol, pkg, threads=1, force_domain=True, progress=progress, cancel=cancel
        )
    )
    t0 = time.perf_counter()
    while job.state in ("pending", "running"):
        app.processEvents()
        time.sleep(0.001)
    run_s = time.perf_counter() - t0
    timer.stop()
    runner.shutdown()
    tmp.cleanup()
    gaps = np.diff(ticks) * 1000 if len(ticks) > 1 else np.array([float("nan")])
    return [
        (f"inference ({what}, 12 slices, 1 thread): run time (ms)", run_s * 1000),
        ("longest GUI event-loop stall during inference", float(gaps.max())),
        ("median timer interval during inference (5 ms timer)", float(np.median(gaps))),
    ]


def bench_open(slices: int) -> list[tuple[str, float]]:
    """Open a written series in the real window: time to the first image and to the volume."""
    from PySide6.QtWidgets import QApplication

    from viewer.dicom.synth import write_series
    from viewer.qt.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    hu, _, _ = ct_volume(slices)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CLINICAL_VIEWER_HOME"] = str(Path(tmp) / "home")
        write_series(Path(tmp) / "series", hu, spacing=(1.0, 0.7, 0.7))
        w = MainWindow(recording_errors=True)
        w.show()
        marks: dict[str, float] = {}
        w.loader._first.connect(lambda *_: marks.setdefault("first", time.perf_counter()))
        w.volume_loaded.connect(lambda _v: marks.setdefault("volume", time.perf_counter()))
        t0 = time.perf_counter()
        w.open_path(Path(tmp) / "series")
        while "volume" not in marks and time.perf_counter() - t0 < 120:
            app.processEvents()
            time.sleep(0.001)
        w.close()
    return [
        (
            f"open a {slices}-slice 512² series in the window: first image (ms)",
            (marks["first"] - t0) * 1000,
        ),
        (
            f"open a {slices}-slice 512² series in the window: whole volume shown (ms)",
            (marks["volume"] - t0) * 1000,
        ),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--no-stall", action="store_true")
    args = ap.parse_args()
    rows = bench_frames(args.frames) + bench_scroll(args.slices) + bench_open(args.slices)
    if not args.no_stall:
        rows += bench_stall()
    lines = [
        "## Drawing slices (512x512 CT, offscreen Qt, median per frame)",
        "",
        "| what | ms |",
        "|---|---|",
    ]
    lines += [f"| {name} | {ms:.2f} |" for name, ms in rows]
    lines += [
        "",
        "Targets: frame ≤ 5 ms (issue 3), GUI stall ≤ 50 ms while inference runs (issue 5).",
        f"`python bench/bench_draw.py --frames {args.frames} --slices {args.slices}`",
        "",
    ]
    publish("draw", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
