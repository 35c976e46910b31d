"""Never lose work: a process edits through the Autosaver and is SIGKILLed; restoring in this
process must give back exactly the edits it had autosaved (at least those it reported saved).

The child keeps editing and autosaving after it reports, so the kill lands at a random point,
possibly in the middle of a save: the atomic write must still leave a complete, consistent save.
The restored revision tells how many edits of the deterministic sequence to replay here.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from viewer.autosave import Autosaver, SeriesIdentity, autosave_dir, find_restorable, restore
from viewer.masks import EditableSegmentation

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (16, 96, 96)
LABELS = [{"value": 1, "name": "lung", "color": [255, 0, 0]}, {"value": 2, "name": "mass", "color": [0, 0, 255]}]

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


def identity() -> SeriesIdentity:
    uid = "1.2.826.0.1.3680043.8.498.77"
    return SeriesIdentity.compute(uid, [f"{uid}.{i + 1}" for i in range(SHAPE[0])], SHAPE, (2.0, 0.8, 0.8))


def make_seg() -> EditableSegmentation:
    ai = np.zeros(SHAPE, np.uint8)
    ai[4:12, 20:70, 10:45] = 1
    ai[6:9, 30:40, 60:75] = 2
    return EditableSegmentation(ai, (2.0, 0.8, 0.8), LABELS, reader="kill test")


def apply_edit(seg: EditableSegmentation, k: int) -> None:
    """Edit number ``k`` of a deterministic endless sequence of varied edits."""
    rng = np.random.default_rng(k)
    axis = int(rng.integers(0, 3))
    index = int(rng.integers(0, SHAPE[axis]))
    rows = SHAPE[1] if axis == 0 else SHAPE[0]
    p0 = (float(rng.uniform(0, rows)), float(rng.uniform(0, 96)))
    p1 = (p0[0] + float(rng.uniform(-10, 10)), p0[1] + float(rng.uniform(-20, 20)))
    if k == 5:
        seg.add_label("nodule", (255, 255, 0))
    elif k == 9:
        seg.set_decision(2, "rejected")
    elif k % 7 == 6:
        seg.erase(axis, index, p0, p1, size_mm=float(rng.uniform(2, 12)))
    elif k % 11 == 10:
        seg.clear_label(1, axis=axis, index=index)
    else:
        with seg.stroke():
            seg.paint(axis, index, p0, p1, label=int(rng.integers(1, 4 if k > 5 else 3)),
                      size_mm=float(rng.uniform(1, 10)))
            seg.paint(axis, index, p1, p0, label=1, size_mm=1.0)


def child_main(first: int) -> None:
    """Run in the child process: edit, report the first save on stdout, keep editing forever."""
    seg = make_seg()
    saver = Autosaver(seg, identity(), delay_s=0.02, max_delay_s=0.1)
    saver.start(poll_s=0.005)
    for k in range(first):
        apply_edit(seg, k)
    assert saver.wait_saved(seg.revision, timeout=30)
    print(f"SAVED {seg.revision}", flush=True)
    k = first
    while True:
        apply_edit(seg, k)
        k += 1
        time.sleep(0.002)


def run_child_and_kill(delay_s: float) -> int:
    code = (f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]\n"
            "import test_autosave_kill as t\nt.child_main(40)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT, env=dict(os.environ))
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "child did not report a save within 60 s"
        line = proc.stdout.readline().decode().strip()
        assert line.startswith("SAVED "), line + proc.stderr.read().decode()
        time.sleep(delay_s)  # the child keeps editing and autosaving meanwhile
        assert proc.poll() is None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return int(line.split()[1])


@pytest.mark.parametrize("delay_s", [0.0, 0.4])
def test_sigkill_after_edits_restores_them_exactly(delay_s):
    reported = run_child_and_kill(delay_s)
    info = find_restorable(identity())
    assert info is not None and info.path.parent == autosave_dir()
    assert info.revision >= reported
    back = restore(identity())
    # replay the same deterministic sequence here up to the restored revision
    expect = make_seg()
    k = 0
    while expect.revision < info.revision:
        apply_edit(expect, k)
        k += 1
    assert expect.revision == info.revision and k >= 40
    np.testing.assert_array_equal(back.current, expect.current)
    assert back.labels == expect.labels
    assert back.has_unsaved_edits and back.reader == "kill test"
    assert not np.array_equal(back.current, back.ai)
