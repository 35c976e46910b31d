"""Cancel and close during work through the GUI's job runner (``viewer.qt.workers``), in process.

For each job type (scan, load, segment, compare, Grad-CAM, SEG export, PDF export) the real job
function runs on a :class:`JobRunner` thread; once it reports progress it is cancelled (or the
runner is shut down, as ``MainWindow.closeEvent`` does). The job must end promptly as
``cancelled``, leave no thread behind (job threads, decoder pools, Qt's global pool) and no file.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QThreadPool

from tests.test_faults_subprocess import data  # noqa: F401 - module-scoped fixture
from viewer.qt.workers import JobRunner

pytestmark = pytest.mark.timeout(180)
KINDS = ["scan", "load", "segment", "compare", "gradcam", "seg", "pdf"]


def _shipped_torch():
    from inference.package import shipped_models_dir

    if not (shipped_models_dir() / "lung-ct-unet" / "model.pt").is_file():
        pytest.skip("shipped package with a PyTorch file absent")
    from inference.package import find_package

    return find_package("lung-ct-unet")


def _job(kind: str, data: Path, out: Path):  # noqa: F811 - 'data' is the fixture's value here
    """The real job function ``fn(*, progress, cancel)`` of ``kind``."""
    from viewer.dicom import load_path, load_stack, scan

    if kind == "scan":
        return lambda **kw: scan(data / "many", **kw)
    if kind == "load":
        stack = scan(data / "j2k").stacks[0]
        return lambda **kw: load_stack(stack, threads=2, **kw)
    if kind in ("segment", "compare"):
        from inference.package import load_package
        from inference.pipeline import make_engine, segment_volume

        pkg = load_package(data / "models" / "slow", verify=True)
        vol = load_path(data / "ct")
        if kind == "segment":
            return lambda **kw: segment_volume(vol, pkg, force_domain=True, **kw)
        from inference.compare import compare_engines

        a, b = (make_engine(pkg, "onnx", cache=False) for _ in range(2))
        return lambda **kw: compare_engines(vol, pkg, [("a", a), ("b", b)], **kw)
    vol = load_path(data / "j2k")
    lab = np.zeros(vol.shape, np.uint8)
    lab[:, 60:200, 60:200] = 1
    if kind == "gradcam":
        pkg = _shipped_torch()
        from inference.gradcam import compute_cam_series, load_cam_model

        model, _ = load_cam_model(pkg)

        def cam(**kw):
            heat = compute_cam_series(model, vol, pkg, target_label=1, **kw)
            np.save(out / "heat.npy", heat)  # only reached when not cancelled
            return heat

        return cam
    if kind == "seg":
        from viewer.export.seg import SegmentInfo, write_seg

        return lambda **kw: write_seg(
            out / "seg.dcm", vol, lab, [SegmentInfo(1, "x", (255, 0, 0))], **kw
        )
    from viewer.export.report import write_report

    return lambda **kw: write_report(out / "report.pdf", volume=vol, labels=lab, **kw)


def _threads_settle(before: set[int], timeout: float = 15.0) -> list[str]:
    """Threads started during the test that are still alive after ``timeout`` s."""
    end = time.monotonic() + timeout
    while True:
        extra = [
            t
            for t in threading.enumerate()
            if t.ident not in before and t.is_alive() and not t.daemon
        ] + [
            t
            for t in threading.enumerate()
            if t.name.startswith(("job-", "dicom-decode")) and t.is_alive()
        ]
        if not extra or time.monotonic() > end:
            return [t.name for t in extra]
        time.sleep(0.05)


def _run_and_interrupt(qtbot, data, tmp_path, kind: str, how: str):  # noqa: F811
    out = tmp_path / "out"
    out.mkdir()
    fn = _job(kind, data, out)
    before = {t.ident for t in threading.enumerate()}
    runner = JobRunner()
    job = runner.submit(fn, name=kind)
    with qtbot.waitSignal(job.progress, timeout=60000):
        pass
    t0 = time.monotonic()
    if how == "cancel":
        with qtbot.waitSignal(job.finished, timeout=30000):
            job.cancel()
        assert job.state == "cancelled", job.state
    else:  # close: what MainWindow.closeEvent does
        assert runner.shutdown(timeout=20.0)
        qtbot.wait(50)
        assert job.state in ("cancelled", "done"), job.state  # done = finished before the close
    stopped = time.monotonic() - t0
    assert job.wait(10.0) and runner.threads_alive() == 0
    assert _threads_settle(before) == []
    assert QThreadPool.globalInstance().activeThreadCount() == 0
    assert stopped < 20.0, f"{kind}: {stopped:.1f} s to stop"
    if job.state == "cancelled":
        assert [p.name for p in out.rglob("*")] == [], "partial output left behind"


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_during_job(qtbot, data, tmp_path, kind):  # noqa: F811
    _run_and_interrupt(qtbot, data, tmp_path, kind, "cancel")


@pytest.mark.parametrize("kind", ["load", "segment", "seg"])
def test_close_during_job(qtbot, data, tmp_path, kind):  # noqa: F811
    _run_and_interrupt(qtbot, data, tmp_path, kind, "close")


def test_main_window_close_while_segmenting(qtbot, data, monkeypatch):  # noqa: F811
    """The real GUI path: the segmentation panel runs the slow model; closing the window
    stops it, joins every thread and delivers nothing afterwards."""
    from viewer.qt.main_window import MainWindow

    monkeypatch.setenv("CLINICAL_VIEWER_MODELS", str(data / "models"))
    before = {t.ident for t in threading.enumerate()}
    w = MainWindow(recording_errors=True)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.volume_loaded, timeout=30000):
        w.open_path(data / "ct")
    assert w.segmentation.select_model("slow")
    w.segmentation.force.setChecked(True)
    job = w.segmentation.run()
    assert job is not None
    with qtbot.waitSignal(job.progress, timeout=30000):
        pass
    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 20.0
    assert w.runner.threads_alive() == 0
    assert _threads_settle(before) == []
    assert not w.errors.records
