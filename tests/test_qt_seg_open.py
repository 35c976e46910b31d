"""A DICOM SEG in a study folder: listed under its series, loaded as an overlay (headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from qt_helpers import write_phantom

from viewer.dicom.load import load_stack
from viewer.dicom.scan import scan
from viewer.export.seg import SegmentInfo, write_seg
from viewer.qt.main_window import MainWindow
from viewer.qt.seg_overlay import ROLE_SEG

pytestmark = pytest.mark.timeout(90)

SEGS = [
    SegmentInfo(1, "Right lung", (230, 96, 60), algorithm_name="lungseg", algorithm_version="1.0"),
    SegmentInfo(2, "Lesion", (250, 220, 40), algorithm_type="MANUAL"),
]


def study_with_seg(root: Path) -> tuple[Path, np.ndarray, str]:
    """Two series; a SEG on the smaller one ("ct") in its own sub-folder."""
    write_phantom(root / "ct", series_description="With SEG", uid_seed="with-seg")
    write_phantom(
        root / "ct2",
        shape=(16, 48, 80),
        series_description="Other",
        series_number=2,
        uid_seed="other",
    )
    stack = next(s for s in scan(str(root / "ct")).stacks)
    vol = load_stack(stack)
    lab = np.zeros(vol.shape, np.uint8)
    lab[:, 20:40, 30:50] = 2
    lab[3:6, 5:10, 5:15] = 1
    (root / "seg").mkdir()
    write_seg(root / "seg" / "seg.dcm", vol, lab, SEGS)
    return root, lab, vol.meta.series_instance_uid


def test_seg_listed_under_its_series_and_loaded_as_overlay(qtbot, tmp_path, screenshot_dir):
    root, lab, uid = study_with_seg(tmp_path / "study")
    w = MainWindow(recording_errors=True)
    qtbot.addWidget(w)
    w.show()
    try:
        with qtbot.waitSignals([w.volume_loaded, w.seg_overlays.found], timeout=30000):
            w.open_path(root)
        assert w.state.volume.meta.series_description == "Other"  # the larger series opens first
        assert list(w.seg_overlays.by_series) == [uid]
        items = w.seg_overlays.seg_items()
        assert len(items) == 1 and items[0].text(0) == "SEG: seg.dcm"
        path, stack_id = items[0].data(0, ROLE_SEG)
        parent = items[0].parent()
        assert "With SEG" in parent.text(0) and Path(path).name == "seg.dcm"
        w.state.set_hide_identity(True)  # the browser is rebuilt: the row comes back
        qtbot.waitUntil(lambda: len(w.seg_overlays.seg_items()) == 1, timeout=5000)
        items = w.seg_overlays.seg_items()
        # double-click: the SEG's series is loaded first, then the SEG on it
        with qtbot.waitSignal(w.seg_overlays.loaded, timeout=30000) as sig:
            w.browser.tree.itemActivated.emit(items[0], 0)
        layer = sig.args[0]
        qtbot.wait(50)
        w.grab().save(str(screenshot_dir / "export_study_seg_overlay.png"))
        assert w.state.series_key == stack_id and w.state.volume.meta.series_instance_uid == uid
        assert w.state.layers[layer.name] is layer and layer.name == "seg:seg.dcm"
        assert np.array_equal(layer.labels, lab)
        assert layer.names == {1: "Right lung", 2: "Lesion"}
        for v, rgb in ((1, (230, 96, 60)), (2, (250, 220, 40))):
            assert np.abs(np.subtract(layer.colors[v], rgb)).max() <= 3  # CIELab round trip
        assert [s.algorithm_type for s in layer.segments] == ["AUTOMATIC", "MANUAL"]
        # another series and back: the overlay returns with its series
        other = next(s for s in w.browser.result.stacks if s.stack_id != stack_id)
        with qtbot.waitSignal(w.volume_loaded, timeout=30000):
            w.loader.load_stack(other)
        assert layer.name not in w.state.layers
        w.loader.load_stack(next(s for s in w.browser.result.stacks if s.stack_id == stack_id))
        assert w.state.layers.get(layer.name) is layer
        # exporting it again keeps the SEG's segments (names, how they were made)
        dlg = w.exporter.open("seg", show=False)
        assert dlg.ctx.source == "seg"
        job = dlg.export_to(tmp_path / "again.dcm")
        with qtbot.waitSignal(job.finished, timeout=30000):
            pass
        assert not w.errors.records, [r.message for r in w.errors.records]
        ds = pydicom.dcmread(tmp_path / "again.dcm")
        assert [(s.SegmentLabel, s.SegmentAlgorithmType) for s in ds.SegmentSequence] == [
            ("Right lung", "AUTOMATIC"),
            ("Lesion", "MANUAL"),
        ]
    finally:
        w.close()
    assert w.runner.threads_alive() == 0


def test_seg_on_another_grid_is_refused_clearly(qtbot, tmp_path):
    root, _lab, _uid = study_with_seg(tmp_path / "study")
    w = MainWindow(recording_errors=True)
    qtbot.addWidget(w)
    w.show()
    try:
        with qtbot.waitSignals([w.volume_loaded, w.seg_overlays.found], timeout=30000):
            w.open_path(root)
        assert w.state.volume.meta.series_description == "Other"
        job = w.seg_overlays.load(str(root / "seg" / "seg.dcm"))  # onto the wrong series
        with qtbot.waitSignal(job.finished, timeout=30000):
            pass
        assert len(w.errors.records) == 1 and w.errors.records[0].title == "Loading the SEG failed"
        msg = w.errors.records[0].message
        assert "seg.dcm" in msg and (
            "rows" in msg.lower() or "grid" in msg.lower() or "48" in msg
        ), msg
        assert not any(n.startswith("seg:") for n in w.state.layers)
        # no segmentation on this series: the SEG export says so instead of writing an empty SEG
        dlg = w.exporter.open("seg", show=False)
        assert not dlg.export_button.isEnabled() and "no segmentation" in dlg.status.text()
        job = dlg.export_to(tmp_path / "none.dcm")
        with qtbot.waitSignal(job.finished, timeout=30000):
            pass
        assert not (tmp_path / "none.dcm").exists() and len(w.errors.records) == 2
        assert "no segmentation" in w.errors.records[1].message
    finally:
        w.close()
