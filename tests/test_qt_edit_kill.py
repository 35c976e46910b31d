"""SIGKILL the viewer after edits made with the mouse; reopening the series restores them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from qt_helpers import SHAPE, write_phantom

from viewer.qt.edit_layers import EDIT_LAYER
from viewer.qt.main_window import MainWindow

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL"),
]

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent(
    """
    import os, sys, time
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    sys.path[:0] = [{root!r}, {tests!r}]
    import numpy as np
    from PySide6.QtWidgets import QApplication
    import viewer.qt  # noqa: F401 - PySide fix
    from viewer.qt.main_window import MainWindow
    from viewer.state import LabelLayer
    from qt_helpers import drag, mouse

    app = QApplication([])
    w = MainWindow(recording_errors=True)
    w.resize(1000, 700)
    w.show()
    loaded = []
    w.volume_loaded.connect(loaded.append)
    w.open_path({series!r})
    while not loaded:
        app.processEvents()
        time.sleep(0.01)
    ai = np.zeros(w.state.volume.shape, np.uint8)
    ai[:, 20:40, 30:50] = 1
    w.state.set_layer(LabelLayer("segmentation", ai, {{1: (255, 0, 0)}}, names={{1: "lesion"}}))
    app.processEvents()
    v = w.grid.views[0]
    w.edit_panel.set_size(3.0)
    w.state.set_tool("brush")
    drag(v, v.plane_to_screen(5, 5), v.plane_to_screen(10, 25))
    w.state.set_tool("eraser")
    drag(v, v.plane_to_screen(30, 35), v.plane_to_screen(30, 45))
    w.edit.prompter.answers.update({{"label_name": "nodule", "label_color": (0, 255, 0)}})
    w.edit_panel.add_label()
    w.state.set_tool("brush")
    mouse(v, "press", v.plane_to_screen(55, 60))
    mouse(v, "release", v.plane_to_screen(55, 60))
    seg = w.edit.seg
    t0 = time.monotonic()
    while seg.revision != w.edit.session.autosaver.saved_revision and time.monotonic() - t0 < 20:
        app.processEvents()  # the autosave thread saves on its own within seconds
        time.sleep(0.02)
    np.save({expected!r}, seg.current)
    print("READY", seg.revision, w.edit.session.autosaver.saved_revision, flush=True)
    while True:  # still "running" with the edits open: only SIGKILL ends it
        app.processEvents()
        time.sleep(0.02)
    """
)


def test_sigkill_after_mouse_edits_then_restore(qtbot, tmp_path):
    series = write_phantom(tmp_path / "s")
    expected = tmp_path / "expected.npy"
    code = CHILD.format(
        root=str(ROOT), tests=str(ROOT / "tests"), series=str(series), expected=str(expected)
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        line = ""
        t0 = time.monotonic()
        while "READY" not in line and time.monotonic() - t0 < 60:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
        assert "READY" in line, (
            proc.stderr.read() if proc.poll() is not None else "child did not get ready"
        )
        _, rev, saved = line.split()
        assert rev == saved  # the last edit was autosaved before the kill
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    edited = np.load(expected)
    assert edited.shape == SHAPE and (edited == 2).any() and (edited[:, 20:40, 30:50] == 0).any()
    w = MainWindow(recording_errors=True)
    qtbot.addWidget(w)
    w.show()
    try:
        w.edit.prompter.answers["restore"] = "Restore edits"
        with qtbot.waitSignal(w.volume_loaded, timeout=20000):
            w.open_path(series)
        qtbot.waitUntil(lambda: w.edit.seg is not None, timeout=5000)
        seg = w.edit.seg
        assert np.array_equal(seg.current, edited) and seg.labels[2].name == "nodule"
        assert w.state.layers[EDIT_LAYER].labels is seg.current
        assert [r.kind for r in w.edit.prompter.records] == ["restore"]
    finally:
        w.edit.prompter.answers["close"] = "Discard edits"
        w.close()
