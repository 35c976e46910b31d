"""The report from the GUI carries the Compare-engines verdict and the Explain dock's preprocessing
view with its parameters (headless; real ONNX sessions, real OpenCV filters)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from test_qt_compare import compare_panel, gated_models, gated_volume, run  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed"),
]


def test_report_has_parity_verdict_and_preprocessing_view(qtbot, tmp_path, gated_models):  # noqa: F811
    from viewer.qt.main_window import MainWindow

    w = MainWindow(recording_errors=True)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    try:
        w.segmentation.refresh_models()
        assert w.segmentation.select_model("gated")
        panel = compare_panel(w)
        w.set_volume(gated_volume(), "gated-series")
        panel.set_engines("onnx", "onnx-int8")
        run(qtbot, panel)
        assert w.compare.results["gated-series"].result.passed is False
        pre = w.explain.preprocess
        w.explain.show_tab("preprocess")
        pre.filter_box.setCurrentIndex(pre.filter_box.findData("clahe"))
        pre.mode_box.setCurrentText("side by side")
        qtbot.waitUntil(
            lambda: pre.displayed is not None and pre.displayed["filter"] == "clahe", timeout=10000
        )
        dlg = w.exporter.open("report", show=False)
        assert "parity verdict: yes" in dlg.content.text()
        assert dlg.ctx.parity["passed"] is False
        assert dlg.preprocess.isEnabled() and dlg.preprocess.isChecked()
        job = dlg.export_to(tmp_path / "report.pdf")
        with qtbot.waitSignal(job.finished, timeout=60000):
            pass
        assert not w.errors.records, [r.message for r in w.errors.records]
        text = subprocess.run(
            ["pdftotext", str(tmp_path / "report.pdf"), "-"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert "PyTorch vs ONNX parity" in text and "FAIL" in text
        assert "Preprocessing: CLAHE (axial slice" in text
        assert "clip_limit: 2.0" in text and "W 400 L 40" in text
        # unticked: the view is left out
        opts = dlg.options()
        opts.include_preprocess = False
        job = dlg.export_to(tmp_path / "plain.pdf", options=opts)
        with qtbot.waitSignal(job.finished, timeout=60000):
            pass
        plain = subprocess.run(
            ["pdftotext", str(tmp_path / "plain.pdf"), "-"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert "Preprocessing:" not in plain and "PyTorch vs ONNX parity" in plain
    finally:
        w.close()
    assert w.runner.threads_alive() == 0
