"""Benchmark: brush strokes and undo in the real window (offscreen), from mouse event to pixels.

A ``MainWindow`` shows a ``--slices``x512x512 CT-like volume with an AI label map (two labels);
the Edit dock's brush (10 mm) paints with real ``QMouseEvent``s on the axial view. Per step:

* **brush move, 1x1** — one mouse-move event while the button is down (engine paint of the
  segment, provenance counts, redraw request) + a synchronous ``repaint()`` of the axial view;
* **brush move, provenance overlay** — the same with "Colour by provenance" on;
* **brush move, 2x2 MPR** — the move event + one event-loop pass repainting the views whose plane
  the changed box cuts (the stroke crosses the coronal plane here);
* **undo / redo (Ctrl+Z / Ctrl+Y actions)** of one ~40-segment drag + repaint.

Target (issue 8): one brush step and one undo ≤ 16 ms. Prints a markdown table and writes it to
``docs/bench/edit_gui.md``. Usage: ``python bench/bench_edit_gui.py [--slices 300] [--moves 200]``
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



def volume(slices: int) -> tuple[np.ndarray, np.ndarray]:
    zz, yy, xx = np.ogrid[:slices, :512, :512]
    body = ((yy - 256) / 200.0) ** 2 + ((xx - 256) / 240.0) ** 2 < 1
    lungs = (((yy - 240) / 120.0) ** 2 + ((np.abs(xx - 256) - 110) / 80.0) ** 2 < 1) & (zz >= 0)
    hu = np.where(body, 40, -1000).astype(np.int16) + np.zeros((slices, 1, 1), np.int16)
    hu[lungs] = -850
    labels = np.where(lungs, np.where(xx < 256, 1, 2), 0).astype(np.uint8)
    return hu, labels


def med(ts: list[float]) -> float:
    return statistics.median(ts) * 1000


def p95(ts: list[float]) -> float:
    return sorted(ts)[int(0.95 * (len(ts) - 1))] * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300, help="at least 30")
    ap.add_argument("--moves", type=int, default=200)
    args = ap.parse_args()
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from viewer.qt.main_window import MainWindow
    from viewer.state import LabelLayer
    from viewer.volume import Volume, VolumeMeta

    app = QApplication.instance() or QApplication([])
    hu, labels = volume(args.slices)
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton

    def send(view, kind, r, c):
        pos = QPointF(view.plane_to_screen(r, c))
        btn = none if kind == QEvent.Type.MouseMove else left
        held = none if kind == QEvent.Type.MouseButtonRelease else left
        ev = QMouseEvent(
            kind, pos, view.mapToGlobal(pos), btn, held, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(view, ev)

    def path(i: int) -> tuple[float, float]:  # a zig-zag over the right lung's edge
        return 240.0 + 60.0 * np.sin(i / 7.0), 120.0 + (i % 80) * 1.5

    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as home:
        os.environ["CLINICAL_VIEWER_HOME"] = home
        w = MainWindow(recording_errors=True)
        w.resize(1400, 900)
        w.show()
        vol = Volume(
            hu, (1.0, 0.7, 0.7), meta=VolumeMeta(modality="CT", series_instance_uid="1.2.3")
        )
        w.set_volume(vol, "bench")
        w.state.set_layer(
            LabelLayer(
                "segmentation",
                labels,
                {1: (220, 80, 60), 2: (60, 120, 220)},
                names={1: "right lung", 2: "left lung"},
            )
        )
        w.state.set_window(-600, 1500)
        app.processEvents()
        view = w.grid.views[0]
        w.edit_panel.set_size(10.0)
        box = (
            w.edit_panel.label_box
        )  # paint "left lung" over the right lung: every move changes voxels
        box.setCurrentIndex(box.findData(2))
        w.state.set_tool("brush")
        app.processEvents()

        fresh = iter(range(args.slices))

        def stroke(label: str, n: int, two_by_two: bool = False) -> None:
            w.state.set_slice(0, next(fresh))  # every stroke paints voxels not painted before
            app.processEvents()
            send(view, QEvent.Type.MouseButtonPress, *path(0))
            ts = []
            for i in range(1, n + 1):
                t = time.perf_counter()
                send(view, QEvent.Type.MouseMove, *path(i))
                if two_by_two:
                    app.processEvents()
                else:
                    view.repaint()
                ts.append(time.perf_counter() - t)
            send(view, QEvent.Type.MouseButtonRelease, *path(n))
            rows.append((label, med(ts), p95(ts)))

        stroke(f"brush move (10 mm), 1x1 axial {view.width()}x{view.height()}", args.moves)
        w.edit_panel.review.provenance.setChecked(True)
        stroke("brush move, provenance overlay on", args.moves)
        w.edit_panel.review.provenance.setChecked(False)
        w.state.set_layout("2x2")
        app.processEvents()
        stroke(
            "brush move, 2x2 MPR (views whose plane the stroke cuts repaint)",
            args.moves // 2,
            two_by_two=True,
        )
        w.state.set_layout("1x1", 0)
        app.processEvents()
        tu, tr = [], []
        for _ in range(20):
            stroke("_", 40)
            t = time.perf_counter()
            w.actions_by_name["undo"].trigger()
            view.repaint()
            tu.append(time.perf_counter() - t)
            t = time.perf_counter()
            w.actions_by_name["redo"].trigger()
            view.repaint()
            tr.append(time.perf_counter() - t)
        rows = [r for r in rows if r[0] != "_"]
        rows.append(("undo of a 40-segment drag (Ctrl+Z action) + repaint", med(tu), p95(tu)))
        rows.append(("redo (Ctrl+Y action) + repaint", med(tr), p95(tr)))
        seg = w.edit.seg
        hist = seg.history
        extra = (
            f"{len(hist.undo_names())} undo steps hold {hist.nbytes / 1024:.0f} KiB; "
            f"provenance: {seg.provenance_counts()['added']} voxels added, "
            f"{seg.provenance_counts()['removed']} removed"
        )
        w.edit.prompter.answers["close"] = "Discard edits"
        w.close()
    lines = [
        f"## Editing in the window ({args.slices}x512x512, offscreen Qt)",
        "",
        "| step | median ms | 95th pct ms |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {m:.2f} | {p:.2f} |" for name, m, p in rows]
    lines += [
        "",
        f"Target (issue 8): brush step and undo ≤ 16 ms. After the run: {extra}. "
        f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} during the run.",
        f"`python bench/bench_edit_gui.py --slices {args.slices} --moves {args.moves}`",
        "",
    ]
    publish("edit_gui", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
