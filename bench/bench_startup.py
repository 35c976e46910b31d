"""Benchmark: time from launching ``clinical-viewer`` to a visible, usable window (offscreen).

Each run starts a fresh interpreter on ``main.py`` with ``CLINICAL_VIEWER_EXIT_WHEN_READY=1``:
the app prints ``READY`` once the shown window has painted and
the event loop turns, then quits (``viewer.qt.app._startup_probe``). Side by side, medians of
``--runs``: an empty interpreter, the whole launch, and a phase breakdown measured in a fresh
interpreter (imports, QApplication, MainWindow construction, show + first paint). It also checks
that torch / torchvision / pytorch-grad-cam / onnxruntime are *not* imported at start-up.

Target (issue 3): ≤ 1.5 s. Prints a markdown table and writes it to ``docs/bench/startup.md``.
Usage: ``python bench/bench_startup.py [--runs 5]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from _report import publish  # noqa: E402  (bench/ is sys.path[0] when run as a script)

PHASES = r"""
import time, sys
t0 = time.perf_counter()
from PySide6.QtWidgets import QApplication
t1 = time.perf_counter()
import viewer.qt.main_window
t2 = time.perf_counter()
from viewer.qt.app import create_app
app = create_app()
t3 = time.perf_counter()
w = viewer.qt.main_window.MainWindow()
t4 = time.perf_counter()
w.show(); app.processEvents(); w.repaint(); app.processEvents()
t5 = time.perf_counter()
heavy = [m for m in ("torch", "torchvision", "pytorch_grad_cam", "onnxruntime") if m in sys.modules]
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, ",".join(heavy) or "-")
w.close()
"""


def _env(home: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM="offscreen", CLINICAL_VIEWER_HOME=home, CLINICAL_VIEWER_EXIT_WHEN_READY="1"
    )
    return env


def launch(home: str) -> tuple[float, str]:
    """(wall seconds from spawn to the READY line, heavy modules loaded)."""
    t = time.perf_counter()
    p = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py")],
        cwd=ROOT,
        env=_env(home),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    line = ""
    assert p.stderr is not None
    for line in p.stderr:
        if line.startswith("READY"):
            break
    wall = time.perf_counter() - t
    p.wait(timeout=60)
    parts = line.split()
    if len(parts) < 2 or parts[0] != "READY":
        raise RuntimeError(f"the app did not report READY (last line: {line!r})")
    return wall, parts[1]


def empty_interpreter() -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t


def phases(home: str) -> tuple[list[float], str]:
    r = subprocess.run(
        [sys.executable, "-c", PHASES],
        cwd=ROOT,
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    vals = r.stdout.split()
    return [float(v) for v in vals[:5]], vals[5]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        launch(home)  # warm the file cache (and settings file)
        empties = [empty_interpreter() for _ in range(args.runs)]
        runs = [launch(home) for _ in range(args.runs)]
        ph = [phases(home) for _ in range(args.runs)]
    heavy = sorted({r[1] for r in runs} | {p[1] for p in ph})
    med = statistics.median
    names = [
        "import PySide6.QtWidgets",
        "import viewer.qt.main_window (numpy, cv2 lazily, …)",
        "QApplication",
        "MainWindow() (menus, docks, model discovery)",
        "show + first paint",
    ]
    rows = [
        ("empty Python interpreter (`python -c pass`)", med(empties)),
        ("**launch → visible usable window** (spawn to READY)", med(r[0] for r in runs)),
        ("slowest launch", max(r[0] for r in runs)),
    ]
    rows += [(f"phase: {n}", med(p[0][i] for p in ph)) for i, n in enumerate(names)]
    lines = [
        f"## Start-up (offscreen, median of {args.runs} runs)",
        "",
        "| what | s |",
        "|---|---|",
    ]
    lines += [f"| {n} | {v:.3f} |" for n, v in rows]
    lines += [
        "",
        f"Heavy modules imported at start-up: {', '.join(h for h in heavy if h != '-') or 'none'} "
        "(torch, torchvision, pytorch-grad-cam and onnxruntime are loaded when first needed).",
        "Target: ≤ 1.5 s (issue 3). `python bench/bench_startup.py`",
        "",
    ]
    publish("startup", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
