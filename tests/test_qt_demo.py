"""The demo study: written once as real DICOM, opened through the real loader, lung window."""

from __future__ import annotations

import pytest

from tests.test_engines import WIDE_DOMAIN, band_package
from viewer.demo import demo_dir, ensure_demo_study
from viewer.qt.app import start_demo
from viewer.qt.main_window import MainWindow
from viewer.qt.segmentation_panel import SEG_LAYER

pytestmark = pytest.mark.timeout(120)
SMALL = (6, 96, 96)


def test_demo_study_written_once():
    folder = ensure_demo_study(shape=SMALL)
    import os

    assert folder.parent == demo_dir(SMALL) and str(folder).startswith(
        os.environ["CLINICAL_VIEWER_HOME"]
    )
    files = sorted(folder.rglob("*.dcm"))
    assert len(files) == SMALL[0]
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert ensure_demo_study(shape=SMALL) == folder
    assert [
        f.stat().st_mtime_ns for f in sorted(folder.rglob("*.dcm"))
    ] == mtimes  # reused, not rewritten
    from viewer.dicom.load import load_path

    vol = load_path(folder)
    assert (
        vol.shape == SMALL and vol.meta.patient_name == "Demo^Patient" and vol.meta.modality == "CT"
    )
    assert vol.voxels.min() < -900 and vol.voxels.max() > 0  # air and tissue: a chest, not a blank


def test_demo_opens_with_lung_window_and_segments(qtbot, tmp_path, monkeypatch):
    import os
    from pathlib import Path

    band_package(
        Path(os.environ["CLINICAL_VIEWER_MODELS"]) / "demo-band", (0.0, 0.6, 0.8, 1.0), domain=WIDE_DOMAIN
    )
    w = MainWindow(recording_errors=True)
    qtbot.addWidget(w)
    w.show()
    try:
        with qtbot.waitSignal(w.volume_loaded, timeout=60000):
            start_demo(w, segment=True, shape=SMALL, model="demo-band")
        assert w.state.window == (-600.0, 1500.0)
        assert w.state.volume.meta.patient_name == "Demo^Patient"
        qtbot.waitUntil(lambda: SEG_LAYER in w.state.layers, timeout=60000)
        assert not w.errors.records
        assert w.segmentation.package().name == "demo-band"
        assert w.loader.scan_result.skipped == []  # the marker file is not in the scanned folder
    finally:
        w.close()
