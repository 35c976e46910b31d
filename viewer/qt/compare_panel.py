"""The "Compare engines" dock (issue 7): PyTorch vs ONNX vs INT8 on this patient's images.

Choose engines A (reference) and B (``torch``, ``onnx``, ``onnx-int8``, ``onnx:<provider>`` for
each extra ONNX Runtime provider), edit the verdict thresholds, run
:func:`inference.compare.compare_engines` in a worker (key ``"compare"``, progress, cancel).
Results are kept per series. Shown: the verdict (PASS / FAIL with the reasons), a metrics table
per label (Dice, IoU, volume difference mL and %, HD95 mm, flip fraction; logits max/mean
absolute difference and engine timings for the pair), a per-slice strip with "jump to worst
slice", and A | B | difference views linked to the main views (:mod:`viewer.qt.compare_views`);
optionally the Grad-CAM heatmap (Explain dock) beside the ONNX engine's mask.

``install_compare(win)`` adds the dock; ``win.compare`` is the panel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.qt.compare_views import CompareViews, SliceStrip
from viewer.qt.workers import JobPanel

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.main_window import MainWindow
    from viewer.qt.workers import Job

__all__ = ["ComparePanel", "CompareEntry", "install_compare", "COLUMNS", "run_compare"]

log = logging.getLogger(__name__)

COLUMNS = ("Label", "Dice", "IoU", "ΔVol mL", "ΔVol %", "HD95 mm", "Flip fraction",
           "max |Δlogit|", "mean |Δlogit|")  # fmt: skip


@dataclass
class CompareEntry:
    """One series' comparison: the result and both label maps on the volume grid."""

    result: Any  # inference.compare_result.ComparisonResult
    a: str
    b: str
    labels_a: np.ndarray
    labels_b: np.ndarray
    flips_by_slice: np.ndarray  # [z] in source-volume order
    worst_z: int  # source-volume slice


def run_compare(volume: Any, package: Any, a: str, b: str, thresholds: Any, *,
                progress: Any = None, cancel: Any = None) -> CompareEntry:  # fmt: skip
    """Worker side: compare engines ``a`` and ``b`` and map the masks back to the volume grid."""
    from inference.compare import compare_engines

    res = compare_engines(volume, package, [a, b], thresholds=thresholds, progress=progress,
                          cancel=cancel)  # fmt: skip
    if len(res.engines) < 2:
        raise ValueError(f"comparison ran only {res.engines}: {'; '.join(res.warnings)}")
    shape = tuple(volume.voxels.shape[:3])
    la = res.labels_on_volume(res.engines[0], shape)
    lb = res.labels_on_volume(res.engines[1], shape)
    pair = res.pairs[0]
    n = len(pair.slice_flips)
    flips = np.zeros(n, np.int64)
    for i in range(n):
        flips[res.to_original_z(i)] = pair.slice_flips[i]
    worst = res.to_original_z(pair.worst_slice)
    return CompareEntry(res, res.engines[0], res.engines[1], la, lb, flips, worst)


def _item(text: str, *, align_right: bool = True, bad: bool = False) -> QTableWidgetItem:
    it = QTableWidgetItem(text)
    it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if align_right:
        it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if bad:
        it.setForeground(Qt.GlobalColor.red)
    return it


def _fmt(v: float | None, spec: str) -> str:
    if v is None:
        return "—"
    if not np.isfinite(v):
        return "∞"
    return format(v, spec)


class ComparePanel(JobPanel, QWidget):
    """Engine chooser, thresholds, run/cancel, verdict, table, strip and linked views."""

    def __init__(self, win: MainWindow, parent: QWidget | None = None):
        super().__init__(parent)
        self.win = win
        self.state = win.state
        self.results: dict[str, CompareEntry] = {}
        self.entry: CompareEntry | None = None
        self.job: Job | None = None
        self._providers: list[str] | None = None
        self.a_box = QComboBox(self)
        self.a_box.setObjectName("cmp_a")
        self.b_box = QComboBox(self)
        self.b_box.setObjectName("cmp_b")
        self.dice_fp32 = self._spin(float(win.settings.value("compare/dice_fp32", 0.999)))
        self.dice_int8 = self._spin(float(win.settings.value("compare/dice_int8", 0.99)))
        self.max_flip = self._spin(float(win.settings.value("compare/max_flip", 0.0)))
        self.max_flip.setSpecialValueText("not checked")
        self.run_button = QPushButton("Compare", self)
        self.run_button.setObjectName("cmp_run")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.verdict = QLabel("No comparison for this series yet", self)
        self.verdict.setObjectName("cmp_verdict")
        self.verdict.setWordWrap(True)
        self.timing = QLabel("", self)
        self.timing.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("cmp_table")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.strip = SliceStrip(self)
        self.strip.slice_clicked.connect(lambda z: self.state.set_slice(0, z))
        self.worst_button = QPushButton("Jump to worst slice", self)
        self.worst_button.setObjectName("cmp_worst")
        self.worst_button.setEnabled(False)
        self.worst_button.clicked.connect(self.jump_to_worst)
        self.cam_check = QCheckBox("Grad-CAM (Explain dock) beside the ONNX mask", self)
        self.cam_check.toggled.connect(lambda *_: self._sync_cam())
        self.views = CompareViews(self.state, self)
        form = QFormLayout()
        engines = QHBoxLayout()
        engines.addWidget(self.a_box, 1)
        engines.addWidget(QLabel("vs", self))
        engines.addWidget(self.b_box, 1)
        form.addRow("Engines A / B", engines)
        form.addRow("Dice ≥ (FP32)", self.dice_fp32)
        form.addRow("Dice ≥ (INT8)", self.dice_int8)
        form.addRow("Flip fraction ≤", self.max_flip)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        top = QWidget(self)
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(form)
        tl.addLayout(buttons)
        tl.addWidget(self.verdict)
        strip_row = QHBoxLayout()
        strip_row.addWidget(self.strip, 1)
        strip_row.addWidget(self.worst_button)
        tl.addLayout(strip_row)
        tl.addWidget(self.cam_check)
        bottom = QWidget(self)
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.table, 1)
        bl.addWidget(self.timing)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(top)
        split.addWidget(self.views)
        split.addWidget(bottom)
        split.setStretchFactor(1, 3)
        split.setStretchFactor(2, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split)
        for w in (self.dice_fp32, self.dice_int8, self.max_flip):
            w.valueChanged.connect(self._thresholds_changed)
        self.state.subscribe("volume", self._on_volume)
        self.state.subscribe("cursor", self._on_cursor)
        self.state.subscribe("layers", self._on_layers)
        seg = getattr(win, "segmentation", None)
        if seg is not None:  # follow the model chosen in the segmentation panel
            seg.model_box.currentIndexChanged.connect(lambda *_: self.refresh_engines())
        self.refresh_engines()

    def _spin(self, value: float) -> QDoubleSpinBox:
        s = QDoubleSpinBox(self)
        s.setRange(0.0, 1.0)
        s.setDecimals(4)
        s.setSingleStep(0.001)
        s.setValue(value)
        return s

    # ------------------------------------------------------------------ engines
    def package(self) -> Any:
        seg = getattr(self.win, "segmentation", None)
        return seg.package() if seg is not None else None

    def engines(self) -> list[str]:
        """Engines of the current package (plus ``onnx:<provider>`` for extra ORT providers)."""
        pkg = self.package()
        if pkg is None:
            return []
        out = [e for e, ok in (("torch", pkg.has_torch), ("onnx", "onnx" in pkg.files),
                               ("onnx-int8", pkg.has_int8)) if ok]  # fmt: skip
        for prov in self._providers or []:
            short = prov.replace("ExecutionProvider", "").lower()
            if short not in ("cpu", "azure") and "onnx" in pkg.files:
                out.append(f"onnx:{short}")
        return out

    def refresh_engines(self) -> None:
        engines = self.engines()
        a, b = self.a_box.currentData(), self.b_box.currentData()
        for box, cur, default in ((self.a_box, a, 0), (self.b_box, b, 1)):
            box.blockSignals(True)
            box.clear()
            for e in engines:
                box.addItem(e, e)
            i = box.findData(cur)
            box.setCurrentIndex(i if i >= 0 else min(default, len(engines) - 1))
            box.blockSignals(False)
        self._update_buttons()

    def showEvent(self, e: Any) -> None:  # noqa: N802 - Qt API
        super().showEvent(e)
        if self._providers is None:  # onnxruntime is imported once the panel is seen, later
            QTimer.singleShot(300, self.load_providers)

    def load_providers(self) -> None:
        """Add ``onnx:<provider>`` engines for the installed ONNX Runtime providers (once)."""
        if self._providers is not None:
            return
        try:
            from inference.onnx_engine import available_providers

            self._providers = list(available_providers())
        except Exception:  # noqa: BLE001 - no ORT: torch vs nothing; the run reports it
            self._providers = []
        self.refresh_engines()

    def set_engines(self, a: str, b: str) -> None:
        self.refresh_engines()
        self.a_box.setCurrentIndex(self.a_box.findData(a))
        self.b_box.setCurrentIndex(self.b_box.findData(b))

    def thresholds(self) -> Any:
        from inference.compare_result import Thresholds

        mf = self.max_flip.value()
        return Thresholds(self.dice_fp32.value(), self.dice_int8.value(), mf if mf > 0 else None)

    def _thresholds_changed(self, *_: Any) -> None:
        s = self.win.settings
        s.setValue("compare/dice_fp32", self.dice_fp32.value())
        s.setValue("compare/dice_int8", self.dice_int8.value())
        s.setValue("compare/max_flip", self.max_flip.value())

    # ------------------------------------------------------------------ run
    def run(self) -> Job | None:
        vol, pkg = self.state.volume, self.package()
        a, b = self.a_box.currentData(), self.b_box.currentData()
        if vol is None or pkg is None or not a or not b:
            self.win.message("Open a series and choose a model in the Segmentation panel first")
            return None
        if a == b:
            self.win.errors.present(ValueError(f"engines A and B are both {a!r}: choose two"),
                                    title="Compare engines")  # fmt: skip
            return None
        th, key = self.thresholds(), self.state.series_key

        def fn(progress, cancel):
            return run_compare(vol, pkg, a, b, th, progress=progress, cancel=cancel)

        job = self._start(
            fn, name="compare", key="compare", title="Comparison failed",
            result=lambda e, k=key, v=vol: self._done(e, k, v),
            cancelled=lambda: self.verdict.setText("Comparison cancelled"),
        )  # fmt: skip
        self.verdict.setText(f"Comparing {a} with {b} …")
        self.verdict.setStyleSheet("")
        return job

    def _update_buttons(self) -> None:
        self.run_button.setEnabled(
            self.job is None and self.state.volume is not None and self.a_box.count() >= 2
        )
        self.cancel_button.setEnabled(self.job is not None)
        self.worst_button.setEnabled(self.entry is not None)

    def _done(self, entry: CompareEntry, key: str, vol: Any) -> None:
        self.results[key] = entry
        self.progress.setValue(self.progress.maximum())
        if key == self.state.series_key and vol is self.state.volume:
            self.show_entry(entry)

    # ------------------------------------------------------------------ display
    def show_entry(self, entry: CompareEntry | None) -> None:
        self.entry = entry
        self._update_buttons()
        if entry is None:
            self.views.clear()
            self.table.setRowCount(0)
            self.strip.set_values(np.zeros(0), -1)
            self.verdict.setText("No comparison for this series yet")
            self.verdict.setStyleSheet("")
            self.timing.setText("")
            return
        res = entry.result
        pkg = self.package()
        colors = {lab.value: tuple(lab.color) for lab in pkg.labels if lab.value} if pkg else {}
        colors = colors or {v: (255, 255, 0) for v in res.label_names if v}
        self.views.show_pair(entry.a, entry.b, entry.labels_a, entry.labels_b, colors,
                             res.label_names)  # fmt: skip
        self._fill_table(entry)
        self.strip.set_values(entry.flips_by_slice, entry.worst_z)
        self.strip.set_current(self.state.cursor[0])
        self._sync_cam()

    def _fill_table(self, entry: CompareEntry) -> None:
        res = entry.result
        pair = res.pairs[0]
        la, lb = res.labels[entry.a], res.labels[entry.b]
        rows = len(pair.labels) + 1
        self.table.setRowCount(rows)
        for r, m in enumerate(pair.labels):
            flip = float(((la == m.value) != (lb == m.value)).sum()) / max(la.size, 1)
            vals = [
                _fmt(m.dice, ".5f"), _fmt(m.iou, ".5f"), _fmt(m.volume_diff_ml, "+.2f"),
                _fmt(m.volume_diff_pct, "+.2f"), _fmt(m.hd95_mm, ".2f"), _fmt(flip, ".2e"),
                "", "",
            ]  # fmt: skip
            self.table.setItem(r, 0, _item(m.name, align_right=False))
            for c, v in enumerate(vals, start=1):
                self.table.setItem(r, c, _item(v, bad=(c == 1 and m.dice < pair.threshold)))
        last = rows - 1
        self.table.setItem(last, 0, _item("all labels", align_right=False))
        allv = ["", "", "", "", "", _fmt(pair.flip_fraction, ".2e"),
                _fmt(pair.logits_max_abs, ".3g"), _fmt(pair.logits_mean_abs, ".3g")]  # fmt: skip
        for c, v in enumerate(allv, start=1):
            self.table.setItem(last, c, _item(v))
        self.table.resizeColumnsToContents()
        ok = pair.passed
        th = res.thresholds
        why = "" if ok else "<br>" + "<br>".join(pair.reasons)
        self.verdict.setText(
            f"<b style='font-size:15px'>{'PASS' if ok else 'FAIL'}</b> — {entry.b} vs {entry.a}: "
            f"min Dice {pair.min_dice:.5f} (threshold {pair.threshold:g}; FP32 "
            f"{th.dice_fp32:g}, INT8 {th.dice_int8:g}), {pair.flips} voxels flip"
            f"{why}"
        )
        color = "#0a0" if ok else "#d00"
        self.verdict.setStyleSheet(f"color: white; background: {color}; padding: 4px;")
        t = res.timings
        self.timing.setText(
            "Timing (same run): "
            + "; ".join(
                f"{n}: {t[n].per_slice_ms:.1f} ms/slice, {t[n].total_s:.2f} s total"
                for n in res.engines
            )  # fmt: skip
            + (f"<br>Warnings: {'; '.join(res.warnings)}" if res.warnings else "")
            + f"<br>Worst slice {entry.worst_z + 1} ({int(entry.flips_by_slice[entry.worst_z])}"
            " flipped voxels on the model grid)"
        )

    def jump_to_worst(self) -> None:
        """Move the cursor to the slice where A and B disagree most."""
        if self.entry is not None:
            self.state.set_slice(0, self.entry.worst_z)

    def _onnx_index(self) -> int | None:
        if self.entry is None:
            return None
        for i, name in enumerate((self.entry.a, self.entry.b)):
            if name.startswith("onnx"):
                return i
        return None

    def _sync_cam(self) -> None:
        from viewer.qt.analysis_gradcam import CAM_LAYER

        cam = self.state.layers.get(CAM_LAYER)
        i = self._onnx_index()
        for j in (0, 1):
            on = self.cam_check.isChecked() and i == j and cam is not None
            st = self.views.states[j]
            if on:
                st.set_layer(cam)
            elif CAM_LAYER in st.layers:
                st.remove_layer(CAM_LAYER)

    def _on_layers(self, name: str = "", **_: Any) -> None:
        if name == "gradcam":
            self._sync_cam()

    def _on_volume(self, volume: Any = None, **_: Any) -> None:
        self.refresh_engines()
        self.show_entry(self.results.get(self.state.series_key) if volume is not None else None)

    def _on_cursor(self, **_: Any) -> None:
        self.strip.set_current(self.state.cursor[0])

    def detach(self) -> None:
        for ev, cb in (("volume", self._on_volume), ("cursor", self._on_cursor),
                       ("layers", self._on_layers)):  # fmt: skip
            self.state.unsubscribe(ev, cb)
        self.views.detach()


def install_compare(win: MainWindow) -> ComparePanel:
    """Create the Compare panel and add it as a right-hand dock (tabbed with the others)."""
    panel = ComparePanel(win)
    win.add_dock("Compare engines", panel, Qt.DockWidgetArea.RightDockWidgetArea)
    win.compare = panel
    return panel
