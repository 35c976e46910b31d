"""Reader edits on a 300 x 512 x 512 label map: brush, undo, memory, undo codecs, autosave.

Measures (medians and 95th percentiles of repeated runs, one process, side by side):

* one brush stroke step (the work of one mouse-move event: the segment between two mouse
  positions 4 px apart, applied with provenance and undo recording) for 10 mm and 30 mm brushes,
  axial and coronal, with and without threshold paint; the end of a 100-step drag (merging it into
  one undo step); undo and redo of a drag; undo of clearing a label in the whole series;
* memory after 200 edits (drags, plus clearing a label on 4 slices): bytes held by the undo
  history, and the growth of the process's resident memory, against the 75 MiB label map;
* the two undo codecs (zlib of the XOR difference vs sparse indices + values): bytes and time for
  a small stroke, a long drag across the slice and clearing a label in the whole series;
* autosave: the snapshot (the only part that blocks edits), the first save (writes the AI map
  once), a full save after 200 edits and incremental saves; statistics.

Target: brush step and undo ≤ 16 ms (one 60 Hz frame). Usage: ``python bench/bench_edit.py
[--no-write]``. Prints a markdown table and writes ``docs/bench/edit.md``.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from viewer.autosave import Autosaver, SeriesIdentity  # noqa: E402
from viewer.masks import EditableSegmentation  # noqa: E402
from viewer.masks_undo import decode_diff, encode_diff  # noqa: E402

SHAPE = (300, 512, 512)
SPACING = (1.0, 0.7, 0.7)
LABELS = [{"value": 1, "name": "right lung", "color": [220, 80, 80]},
          {"value": 2, "name": "left lung", "color": [80, 80, 220]},
          {"value": 3, "name": "nodule", "color": [240, 220, 60]}]


def phantom() -> tuple[np.ndarray, np.ndarray]:
    """AI label map (two ellipsoid lungs, a nodule) and an int16 HU image on the bench grid."""
    z, y, x = np.ogrid[:SHAPE[0], :SHAPE[1], :SHAPE[2]]
    ai = np.zeros(SHAPE, np.uint8)
    for lab, cx in ((1, 170), (2, 342)):
        e = ((z - 150) / 120.0) ** 2 + ((y - 250) / 150.0) ** 2 + ((x - cx) / 80.0) ** 2
        ai[e <= 1.0] = lab
    ai[((z - 120) / 8.0) ** 2 + ((y - 220) / 11.0) ** 2 + ((x - 150) / 11.0) ** 2 <= 1.0] = 3
    img = np.where(ai > 0, np.int16(-800), np.int16(40))
    img += (np.arange(SHAPE[2], dtype=np.int16)[None, None, :] % 200)
    return ai, img


def timed(fn: Callable[[], object], n: int) -> np.ndarray:
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t0) * 1000.0
    return out


def fmt(ms: np.ndarray) -> tuple[str, str]:
    return f"{np.median(ms):.2f}", f"{np.percentile(ms, 95):.2f}"


def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def drag(seg: EditableSegmentation, axis: int, index: int, start: tuple[float, float], steps: int,
         size_mm: float, step_px: float = 4.0, label: int = 3, **kw: object) -> np.ndarray:
    """One drag of ``steps`` mouse moves; returns the per-step times (ms)."""
    seg.begin_stroke()
    pts = [(start[0] + 0.3 * step_px * k, start[1] + step_px * k) for k in range(steps + 1)]
    times = np.empty(steps)
    for k in range(steps):
        t0 = time.perf_counter()
        seg.paint(axis, index, pts[k], pts[k + 1], label=label, size_mm=size_mm, **kw)
        times[k] = (time.perf_counter() - t0) * 1000.0
    seg.end_stroke()
    return times


def bench_latency(seg: EditableSegmentation, rows: list[tuple[str, str, str]]) -> None:
    """Every measured drag is on a slice of its own, so every step really changes voxels."""
    free = iter(range(30, 290))

    def drags(axis: int, size: float, n: int = 3, **kw: object) -> np.ndarray:
        return np.concatenate([drag(seg, axis, next(free), (100, 60), 100, size, **kw) for _ in range(n)])

    for axis, name in ((0, "axial"), (1, "coronal")):
        for size in (10.0, 30.0):
            rows.append((f"brush step, {name}, {size:.0f} mm", *fmt(drags(axis, size))))
    rows.append(("brush step, axial, 10 mm, threshold paint", *fmt(drags(0, 10.0, hu_range=(-900, -500)))))
    rows.append(("brush step, axial, 10 mm, paint over background only", *fmt(drags(0, 10.0, editable={0}))))
    rows.append(("eraser step, axial, 10 mm", *fmt(np.concatenate(
        [_erase_drag(seg, 150 + k) for k in range(3)]))))

    def drag_end() -> float:
        seg.begin_stroke()
        z = next(free)
        for k in range(100):
            seg.paint(0, z, (100 + 1.2 * k, 60 + 4 * k), (101.2 + 1.2 * k, 64 + 4 * k), label=3, size_mm=10.0)
        t0 = time.perf_counter()
        assert seg.end_stroke() is not None
        return (time.perf_counter() - t0) * 1000.0

    rows.append(("end of a 100-step drag (merge into one undo step)", *fmt(np.array([drag_end() for _ in range(5)]))))
    for _ in range(10):
        drag(seg, 0, next(free), (50, 40), 100, 10.0)
    t_undo = timed(lambda: seg.undo() or (_ for _ in ()).throw(RuntimeError("nothing to undo")), 10)
    t_redo = timed(seg.redo, 10)
    rows.append(("undo of a 100-step 10 mm drag", *fmt(t_undo)))
    rows.append(("redo of a 100-step 10 mm drag", *fmt(t_redo)))
    t_clear = timed(lambda: seg.clear_label(2), 1)
    t_undo_clear = timed(seg.undo, 1)
    t_redo_clear = timed(seg.redo, 1)
    seg.undo()
    rows.append(("clear a label in the whole series (one run)", f"{t_clear[0]:.0f}", "-"))
    rows.append(("undo / redo of that clear (one run each)", f"{t_undo_clear[0]:.0f} / {t_redo_clear[0]:.0f}", "-"))


def _erase_drag(seg: EditableSegmentation, z: int) -> np.ndarray:
    """An eraser drag through the right lung (label 1) on slice ``z``."""
    seg.begin_stroke("eraser")
    times = np.empty(100)
    for k in range(100):
        p0, p1 = (150 + 1.2 * k, 120 + 0.8 * k), (151.2 + 1.2 * k, 120.8 + 0.8 * k)
        t0 = time.perf_counter()
        seg.erase(0, z, p0, p1, size_mm=10.0, label=1)
        times[k] = (time.perf_counter() - t0) * 1000.0
    seg.end_stroke()
    return times


def bench_memory(ai: np.ndarray, img: np.ndarray, rows: list[tuple[str, str, str]]) -> EditableSegmentation:
    gc.collect()
    before = rss()
    seg = EditableSegmentation(ai, SPACING, LABELS, image=img)
    after_init = rss()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for k in range(200):
        if k % 50 == 49:
            seg.clear_label(1, axis=0, index=60 + k)
        else:
            drag(seg, int(rng.integers(0, 2)), int(rng.integers(20, 280)),  # rows: y (axial) or z (coronal)
                 (float(rng.uniform(30, 230)), float(rng.uniform(20, 300))), 20,
                 float(rng.uniform(5, 30)), label=3)
    t_edits = time.perf_counter() - t0
    gc.collect()
    grown = rss() - after_init
    vol = seg.current.nbytes
    rows.append(("label map (one copy) / AI copy + current", f"{vol / 2**20:.1f} MiB",
                 f"{(after_init - before) / 2**20:.1f} MiB RSS"))
    rows.append((f"undo history after 200 edits ({len(seg.history)} steps, bound "
                 f"{seg.history.max_bytes / 2**20:.0f} MiB)",
                 f"{seg.history.nbytes / 2**10:.0f} KiB", f"{100 * seg.history.nbytes / vol:.2f} % of map"))
    rows.append(("resident memory growth during the 200 edits", f"{grown / 2**20:.1f} MiB",
                 f"{100 * grown / vol:.1f} % of map"))
    rows.append(("time for the 200 edits (20-step drags)", f"{t_edits:.1f} s", "-"))
    return seg


def bench_codecs(seg: EditableSegmentation, rows: list[tuple[str, str, str]]) -> None:
    cases = []
    for name, fn in (("10 mm dab", lambda: seg.paint(0, 100, (200, 200), label=3, size_mm=10.0)),
                     ("drag across the slice, 10 mm",
                      lambda: seg.paint(0, 101, (20, 20), (490, 490), label=3, size_mm=10.0)),
                     ("clear a label in the whole series", lambda: seg.clear_label(1))):
        before = seg.current.copy()
        box = fn()
        assert box is not None
        diff = np.bitwise_xor(before[box.slices], seg.current[box.slices])
        cases.append((name, box, diff))
        seg.undo()
    for name, box, diff in cases:
        parts = []
        for codec in ("zlib", "sparse"):
            enc = timed(lambda c=codec: encode_diff(diff, c), 3)
            payload = encode_diff(diff, codec)
            dec = timed(lambda c=codec, p=payload: decode_diff(p, box.shape, c), 3)
            parts.append(f"{codec} {len(payload) / 1024:.1f} KiB, {np.median(enc):.1f}/{np.median(dec):.1f} ms")
        rows.append((f"codec, {name} (box {box.size / 1e6:.2f} Mvox, {np.count_nonzero(diff)} changed)",
                     parts[0], parts[1]))


def bench_autosave(seg: EditableSegmentation, rows: list[tuple[str, str, str]]) -> None:
    ident = SeriesIdentity.compute("1.2.3.4", [f"1.2.3.4.{i}" for i in range(SHAPE[0])], SHAPE, SPACING)
    with tempfile.TemporaryDirectory() as d:
        fresh = EditableSegmentation(seg.ai, SPACING, LABELS)
        saver = Autosaver(fresh, ident, directory=Path(d))
        fresh.paint(0, 150, (200, 200), label=3, size_mm=10.0)
        t_first = timed(saver.save_now, 1)[0]
        saver.close(flush=False)
        saver2 = Autosaver(seg, ident, directory=Path(d))
        saver2._digest = saver._digest
        saver2.saved_revision = -1
        t_full = timed(saver2.save_now, 1)[0]
        size = saver2.last_saved_path.stat().st_size
        t_inc = []
        t_snap_inc = []
        for k in range(5):
            rev = seg.revision
            drag(seg, 0, 40 + k, (100, 60), 50, 10.0)
            t_snap_inc.append(timed(lambda r=rev: seg.snapshot(since_revision=r), 1)[0])
            t_inc.append(timed(saver2.save_now, 1)[0])
        saver2.close(flush=False)
    t_snap = timed(seg.snapshot, 3)
    nchunks = len(seg.snapshot().chunks)
    rows.append((f"full snapshot, {nchunks} changed chunks (edits blocked meanwhile)",
                 f"{np.median(t_snap):.1f} ms", f"p95 {np.percentile(t_snap, 95):.1f} ms"))
    rows.append(("incremental snapshot after one 50-step drag (edits blocked meanwhile)",
                 f"{np.median(t_snap_inc):.2f} ms", f"max {np.max(t_snap_inc):.2f} ms"))
    rows.append(("autosave, first save of a session (hash + write the AI map once)", f"{t_first:.0f} ms", "-"))
    rows.append(("autosave, full save after the 200 edits", f"{t_full:.0f} ms", f"{size / 1024:.0f} KiB file"))
    rows.append(("autosave, incremental save after one more drag", f"{np.median(t_inc):.0f} ms",
                 f"max {np.max(t_inc):.0f} ms"))
    rows.append(("AI vs final statistics (label_stats)", *fmt(timed(seg.label_stats, 3))))
    rows.append(("provenance codes of one axial slice", *fmt(timed(lambda: seg.provenance_plane(0, 150), 20))))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true", help="do not write docs/bench/edit.md")
    args = ap.parse_args()
    t0 = time.perf_counter()
    ai, img = phantom()
    rows: list[tuple[str, str, str]] = []
    seg = bench_memory(ai, img, rows)
    lat: list[tuple[str, str, str]] = []
    bench_latency(seg, lat)
    codec_rows: list[tuple[str, str, str]] = []
    bench_codecs(seg, codec_rows)
    bench_autosave(seg, rows)
    lines = [
        "## Reader edits (`bench/bench_edit.py`)",
        "",
        f"Label map {SHAPE[0]}×{SHAPE[1]}×{SHAPE[2]} uint8, spacing {SPACING} mm, on "
        f"{platform.machine()} / Python {platform.python_version()}; target brush step and undo ≤ 16 ms.",
        "",
        "| operation | median ms | p95 ms |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in lat],
        "",
        "| memory and persistence | value | note |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        "| undo codec: bytes, encode/decode ms | zlib (XOR diff, level 1) | sparse (uint32 index + value) |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in codec_rows],
        "",
        f"Total bench time {time.perf_counter() - t0:.0f} s.",
        "",
    ]
    md = "\n".join(lines)
    print(md)
    if not args.no_write:
        out = ROOT / "docs" / "bench" / "edit.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
