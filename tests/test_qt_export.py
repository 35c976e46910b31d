"""File → Export from the GUI (headless): PDF / SEG / NIfTI / PNG written and read back."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from qt_helpers import SPACING, write_phantom

from tests.test_engines import WIDE_DOMAIN as WIDE, band_package
from viewer.anonymize import identifiers_of, scan_files
from viewer.errors import ExportError
from viewer.qt.export_jobs import KINDS
from viewer.qt.main_window import MainWindow
from viewer.state import HeatmapLayer, Measurement

pytestmark = pytest.mark.timeout(120)

CENTERS = (0.0, 0.6, 0.8, 1.0)  # the 100 HU square → label 3 "lesion", air → 0
NAME, PID, BIRTH = "Exportova^Jana", "EXP-4711", "19610203"


@pytest.fixture
def win(qtbot, tmp_path):
    band_package(Path(os.environ["CLINICAL_VIEWER_MODELS"]) / "band", CENTERS, domain=WIDE)
    w = MainWindow(recording_errors=True)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    with qtbot.waitSignal(w.volume_loaded, timeout=20000):
        w.open_path(
            write_phantom(tmp_path / "study", patient_name=NAME, patient_id=PID, birth_date=BIRTH)
        )
    panel = w.segmentation
    panel.refresh_models()
    assert panel.select_model("band")
    job = panel.run()
    with qtbot.waitSignal(job.finished, timeout=60000):
        pass
    assert w.state.series_key in panel.results
    yield w
    w.close()
    assert w.runner.threads_alive() == 0


def export(qtbot, w, kind, path, **opts):
    dlg = w.exporter.open(kind, show=False)
    options = dlg.options()
    for k, v in opts.items():
        setattr(options, k, v)
    job = dlg.export_to(path, options=options)
    assert job is not None
    with qtbot.waitSignal(job.finished, timeout=60000):
        pass
    assert not w.errors.records, [r.message for r in w.errors.records]
    return dlg


def dciodvfy_clean(path: Path) -> None:
    if shutil.which("dciodvfy"):
        from test_export_seg import dciodvfy_errors

        errors, warnings = dciodvfy_errors(path)
        assert errors == [] and warnings == [], errors + warnings


def pdf_text(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def test_menu_has_every_export(qtbot, win):
    from PySide6.QtWidgets import QMenu

    menu = win.findChild(QMenu, "menu_export")
    assert [a.text() for a in menu.actions()] == [v[0] for v in KINDS.values()]
    file_menu = win.menuBar().actions()[0].menu()
    assert menu.menuAction() in file_menu.actions() and menu.isEnabled()
    win.actions_by_name["export_png"].trigger()
    assert win.exporter.dialog is not None and win.exporter.dialog.isVisible()
    assert win.exporter.dialog.kind == "png"


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_every_export_reads_back(qtbot, win, tmp_path):
    import highdicom as hd
    import nibabel as nib

    vol = win.state.volume
    z = 5
    win.state.set_cursor(z, 30, 40)
    win.state.add_measurement(
        Measurement("ruler", 0, z, [(20.0, 30.0), (39.0, 49.0)], {"length_mm": 19.9})
    )
    win.state.set_layer(
        HeatmapLayer(
            "Grad-CAM lesion", np.linspace(0, 1, 64 * 80).reshape(64, 80).astype(np.float32), z=z
        )
    )
    labels = win.segmentation.results[win.state.series_key].layer.current_labels()
    assert 3 in np.unique(labels) and labels[:, 30, 40].min() == 3
    out = tmp_path / "out"
    out.mkdir()
    dlg = export(qtbot, win, "report", out / "report.pdf")
    assert "measurement" in dlg.content.text() and "no comparison run" in dlg.content.text()
    text = pdf_text(out / "report.pdf")
    for needle in (
        "Not for diagnostic use",
        "band",
        "lesion",
        "Phantom",
        "Exportova",
        "19.9",
        "Grad-CAM lesion",
        "AI result, not reviewed",
    ):
        assert needle in text, needle
    pages = subprocess.run(
        ["pdfinfo", str(out / "report.pdf")], capture_output=True, text=True
    ).stdout
    assert "Pages:" in pages
    export(qtbot, win, "seg", out / "seg.dcm")
    dciodvfy_clean(out / "seg.dcm")
    ds = pydicom.dcmread(out / "seg.dcm")
    assert ds.SeriesInstanceUID != vol.meta.series_instance_uid
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == vol.meta.series_instance_uid
    seg_desc = {int(s.SegmentNumber): s for s in ds.SegmentSequence}
    assert [s.SegmentLabel for s in seg_desc.values()] == ["right lung", "left lung", "lesion"]
    assert {s.SegmentAlgorithmType for s in seg_desc.values()} == {"AUTOMATIC"}
    assert seg_desc[3].SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "band"
    seg = hd.seg.segread(out / "seg.dcm")
    got = seg.get_pixels_by_source_instance(list(vol.meta.sop_instance_uids), combine_segments=True)
    assert np.array_equal(np.asarray(got), labels)
    export(qtbot, win, "labels_nifti", out / "labels.nii.gz")
    export(qtbot, win, "volume_nifti", out / "volume.nii.gz")
    lab_img, vol_img = nib.load(out / "labels.nii.gz"), nib.load(out / "volume.nii.gz")
    assert np.array_equal(np.asarray(lab_img.dataobj).transpose(2, 1, 0), labels)
    assert np.array_equal(np.asarray(vol_img.dataobj).transpose(2, 1, 0), vol.voxels)
    assert np.allclose(lab_img.affine, vol.affine_ras()) and np.allclose(
        vol_img.affine, vol.affine_ras()
    )
    export(qtbot, win, "png", out / "key.png")
    import cv2

    png = cv2.imread(str(out / "key.png"), cv2.IMREAD_COLOR)[:, :, ::-1]
    sy, sx = SPACING[1:]
    assert png.shape == (64, round(80 * sx / sy), 3)  # full resolution, square pixels
    inside = png[30, round(35 * sx / sy)].astype(int)
    air = png[10, 5].astype(int)
    assert inside[0] != inside[1] or inside[1] != inside[2]  # the lesion colour over the gray
    assert (
        abs(air[0] - air[1]) <= 1 and abs(air[1] - air[2]) <= 1 or air.max() > 0
    )  # heatmap or gray
    assert sorted(os.listdir(out)) == [
        "key.png",
        "labels.nii.gz",
        "report.pdf",
        "seg.dcm",
        "volume.nii.gz",
    ]


def test_edits_give_types_reader_and_review(qtbot, win, tmp_path):
    win.edit.reader = "Dr Edith Reader"
    session = win.edit.start_editing()
    seg = session.seg
    new = seg.add_label("Nodule", (20, 200, 20))
    seg.paint(0, 4, (10.0, 10.0), label=new.value, size_mm=3.0)
    seg.paint(0, 4, (50.0, 70.0), label=3, size_mm=3.0)
    seg.set_review_state("reviewed")
    assert seg.has_unsaved_edits
    dlg = export(qtbot, win, "seg", tmp_path / "seg.dcm")
    assert dlg.reader.text() == "Dr Edith Reader" and dlg.review.text() == "edited, reviewed"
    ds = pydicom.dcmread(tmp_path / "seg.dcm")
    kinds = {s.SegmentLabel: s.SegmentAlgorithmType for s in ds.SegmentSequence}
    assert kinds["lesion"] == "SEMIAUTOMATIC" and kinds["Nodule"] == "MANUAL"
    assert kinds["right lung"] == "AUTOMATIC"
    assert str(ds.ContentCreatorName) == "Reader^Edith^^Dr"  # PN form of the typed name
    assert not seg.has_unsaved_edits  # an export commits the edits
    dciodvfy_clean(tmp_path / "seg.dcm")
    export(qtbot, win, "report", tmp_path / "report.pdf")
    text = pdf_text(tmp_path / "report.pdf")
    assert "Dr Edith Reader" in text and "edited, reviewed" in text and "Nodule" in text
    assert "AI" in text and "Final" in text  # the AI vs final columns


def test_anonymised_exports_hold_no_identifiers(qtbot, win, tmp_path):
    out = tmp_path / "anon"
    out.mkdir()
    for kind, name in (
        ("report", "report.pdf"),
        ("seg", "seg.dcm"),
        ("labels_nifti", "labels.nii.gz"),
        ("volume_nifti", "volume.nii.gz"),
        ("png", "key.png"),
    ):
        export(qtbot, win, kind, out / name, anonymize=True)
    files = sorted(out.iterdir())
    assert len(files) == 5
    idents = identifiers_of(patient_name=NAME, patient_id=PID, birth_date=BIRTH)
    assert scan_files(files, idents) == {}
    text = pdf_text(out / "report.pdf")
    assert "Exportova" not in text and PID not in text and "anonymised" in text
    dciodvfy_clean(out / "seg.dcm")
    ds = pydicom.dcmread(out / "seg.dcm")
    assert str(ds.PatientIdentityRemoved) == "YES" and "Exportova" not in str(ds.PatientName)


def test_cancel_and_read_only_leave_no_file(qtbot, win, tmp_path):
    out = tmp_path / "c"
    out.mkdir()
    dlg = win.exporter.open("seg", show=False)
    job = dlg.export_to(out / "seg.dcm")
    job.cancel()
    with qtbot.waitSignal(job.finished, timeout=60000):
        pass
    assert job.state == "cancelled"
    assert os.listdir(out) == [] and "nothing was written" in dlg.status.text()
    assert not win.errors.records
    blocker = tmp_path / "not_a_folder"
    blocker.write_bytes(
        b"x"
    )  # a path through a file: fails for root too (unlike a read-only folder)
    job = dlg.export_to(blocker / "seg.dcm")
    with qtbot.waitSignal(job.finished, timeout=60000):
        pass
    assert blocker.read_bytes() == b"x" and sorted(os.listdir(tmp_path)) == [
        "c",
        "not_a_folder",
        "study",
    ]
    assert len(win.errors.records) == 1 and isinstance(win.errors.records[0].exception, ExportError)
    assert win.errors.records[0].title == "Export failed" and "Failed" in dlg.status.text()


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_report_preview_then_save(screenshot_dir, qtbot, win, tmp_path):
    win.state.set_cursor(5, 30, 40)
    win.state.add_measurement(
        Measurement("ruler", 0, 5, [(20.0, 30.0), (39.0, 49.0)], {"length_mm": 19.9})
    )
    heat = np.zeros((64, 80), np.float32)
    heat[15:45, 25:55] = np.hanning(30)[:, None] * np.hanning(30)[None, :]
    win.state.set_layer(HeatmapLayer("Grad-CAM", heat, z=5))
    win.edit.reader = "Dr A. Reader"
    dlg = win.exporter.open("report")
    assert dlg.gradcam.isEnabled() and dlg.gradcam.isChecked()
    dlg.path.setText("/home/reader/exports/report.pdf")  # a tidy path for the screenshot
    qtbot.wait(50)
    dlg.grab().save(str(screenshot_dir / "export_dialog.png"))
    prev = dlg.show_preview()
    with qtbot.waitSignal(prev.ready, timeout=60000) as sig:
        pass
    assert sig.args[0] >= 1 and len(prev.pages) == sig.args[0] and prev.pages[0].shape[2] == 3
    qtbot.wait(50)
    prev.grab().save(str(screenshot_dir / "report_preview.png"))
    job = prev.save(tmp_path / "report.pdf")
    with qtbot.waitSignal(job.finished, timeout=60000):
        pass
    assert (tmp_path / "report.pdf").read_bytes() == prev.pdf  # what was previewed is what is saved
    text = pdf_text(tmp_path / "report.pdf")
    assert (
        "Dr A. Reader" in text
        and "Grad-CAM" in text
        and "Explanation and preprocessing views" in text
    )


def test_preview_without_pdftoppm_shows_a_text_summary(screenshot_dir, qtbot, win, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QLabel

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a machine without poppler-utils
    dlg = win.exporter.open("report")
    prev = dlg.show_preview()
    with qtbot.waitSignal(prev.ready, timeout=60000) as sig:
        pass
    assert sig.args[0] == 0 and prev.fallback and prev.pages == []
    text = prev.findChild(QLabel, "preview_text").text()
    assert "pdftoppm is not installed" in text and "Review state: AI result, not reviewed" in text
    qtbot.wait(50)
    prev.grab().save(str(screenshot_dir / "report_preview_text.png"))
    job = prev.save(tmp_path / "r.pdf")
    with qtbot.waitSignal(job.finished, timeout=60000):
        pass
    data = (tmp_path / "r.pdf").read_bytes()
    assert data == prev.pdf and data.startswith(b"%PDF")
