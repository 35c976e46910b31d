"""Overlay controls and statistics of a segmentation result (part of the segmentation dock).

Per-label colour and visibility, layer opacity, filled/outline, and a probability threshold that
re-thresholds the stored probabilities plane by plane (instant; the model is not re-run). The
statistics table lists each label's volume and HU, then each lesion; clicking a lesion row moves
the crosshair to the slice where its longest axial diameter was measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.state import ViewState

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.segmentation_panel import SegEntry

__all__ = ["ResultControls"]

ROLE = Qt.ItemDataRole.UserRole


class ResultControls(QWidget):
    def __init__(self, state: ViewState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.entry: SegEntry | None = None
        self.labels_table = QTableWidget(0, 3, self)
        self.labels_table.setObjectName("seg_labels")
        self.labels_table.setHorizontalHeaderLabels(["Show", "Colour", "Label"])
        self.labels_table.verticalHeader().hide()
        self.labels_table.cellClicked.connect(self._label_cell_clicked)
        self.labels_table.itemChanged.connect(self._visibility_changed)
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setObjectName("seg_opacity")
        self.opacity.setRange(0, 100)
        self.opacity.setValue(40)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self.outline = QCheckBox("Outline only", self)
        self.outline.setObjectName("seg_outline")
        self.outline.toggled.connect(self._outline_changed)
        self.threshold = QSlider(Qt.Orientation.Horizontal, self)
        self.threshold.setObjectName("seg_threshold")
        self.threshold.setRange(1, 99)
        self.threshold.setValue(50)
        self.threshold.valueChanged.connect(self._threshold_changed)
        self.threshold_label = QLabel("model output (post-processed)", self)
        self.stats_table = QTableWidget(0, 4, self)
        self.stats_table.setObjectName("seg_stats")
        self.stats_table.setHorizontalHeaderLabels(
            ["Structure", "Volume (mL)", "HU mean", "Slice / diameter"]
        )
        self.stats_table.verticalHeader().hide()
        self.stats_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.stats_table.cellClicked.connect(self._stats_clicked)
        self.stats_note = QLabel("", self)
        # what the model package says a label's output cannot be trusted for (model.json "caution")
        self.cautions = QLabel("", self)
        self.cautions.setObjectName("seg_cautions")
        self.cautions.setWordWrap(True)
        self.cautions.setStyleSheet(
            "QLabel { background: #fff3cd; color: #5c4400; border: 1px solid #d4a017; padding: 3px; }"
        )
        self.cautions.hide()
        self._stats_timer = QTimer(self)
        self._stats_timer.setSingleShot(True)
        self._stats_timer.setInterval(300)
        self._stats_timer.timeout.connect(self._recompute_stats)
        form = QFormLayout()
        form.addRow("Opacity", self.opacity)
        form.addRow("", self.outline)
        th = QHBoxLayout()
        th.addWidget(self.threshold)
        form.addRow("Probability ≥", th)
        form.addRow("", self.threshold_label)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.labels_table, 1)
        lay.addWidget(self.cautions)
        lay.addLayout(form)
        lay.addWidget(self.stats_table, 2)
        lay.addWidget(self.stats_note)
        self.setEnabled(False)

    # ------------------------------------------------------------------ entry
    def set_entry(self, entry: SegEntry | None) -> None:
        self.entry = entry
        self.setEnabled(entry is not None)
        self.labels_table.blockSignals(True)
        self.labels_table.setRowCount(0)
        cautions = entry.result.label_cautions if entry is not None else {}
        lines = entry.result.caution_lines() if cautions else []
        self.cautions.setText("\n".join(f"⚠ {c}" for c in lines))
        self.cautions.setVisible(bool(lines))
        if entry is None:
            self.labels_table.blockSignals(False)
            self.stats_table.setRowCount(0)
            return
        layer = entry.layer
        for v, name in sorted(layer.names.items()):
            if v == 0:
                continue
            r = self.labels_table.rowCount()
            self.labels_table.insertRow(r)
            show = QTableWidgetItem()
            show.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            show.setCheckState(
                Qt.CheckState.Unchecked if v in layer.hidden else Qt.CheckState.Checked
            )
            show.setData(ROLE, v)
            colour = QTableWidgetItem("")
            colour.setBackground(QColor(*layer.colors.get(v, (255, 255, 255))))
            colour.setData(ROLE, v)
            colour.setToolTip("Click to change the colour")
            self.labels_table.setItem(r, 0, show)
            self.labels_table.setItem(r, 1, colour)
            item = QTableWidgetItem(f"{v}: {name}" + (" ⚠" if v in cautions else ""))
            if v in cautions:
                item.setToolTip(cautions[v])
            self.labels_table.setItem(r, 2, item)
        self.labels_table.resizeColumnsToContents()
        self.labels_table.blockSignals(False)
        for w, val in (
            (self.opacity, round(layer.opacity * 100)),
            (self.outline, layer.outline),
            (self.threshold, round((layer.threshold or 0.5) * 100)),
        ):
            w.blockSignals(True)
            w.setChecked(val) if isinstance(w, QCheckBox) else w.setValue(val)
            w.blockSignals(False)
        self.threshold.setEnabled(layer.probabilities is not None)
        self._threshold_text()
        self.fill_stats(entry.stats)

    def _layer(self) -> Any:
        return None if self.entry is None else self.entry.layer

    def _changed(self) -> None:
        if self._layer() is not None and self.state.layers.get(self._layer().name) is self._layer():
            self.state.layer_changed(self._layer().name)

    # ------------------------------------------------------------------ overlay settings
    def _visibility_changed(self, item: QTableWidgetItem) -> None:
        layer = self._layer()
        if layer is None or item.column() != 0:
            return
        v = int(item.data(ROLE))
        if item.checkState() == Qt.CheckState.Checked:
            layer.hidden.discard(v)
        else:
            layer.hidden.add(v)
        self._changed()

    def _label_cell_clicked(self, row: int, col: int) -> None:
        layer = self._layer()
        if layer is None or col != 1:
            return
        item = self.labels_table.item(row, 1)
        v = int(item.data(ROLE))
        c = QColorDialog.getColor(
            QColor(*layer.colors.get(v, (255, 255, 255))), self, "Label colour"
        )
        if c.isValid():
            self.set_label_color(v, (c.red(), c.green(), c.blue()))

    def set_label_color(self, value: int, rgb: tuple[int, int, int]) -> None:
        layer = self._layer()
        layer.colors[int(value)] = tuple(int(x) for x in rgb)
        for r in range(self.labels_table.rowCount()):
            it = self.labels_table.item(r, 1)
            if int(it.data(ROLE)) == value:
                it.setBackground(QColor(*rgb))
        self._changed()

    def _opacity_changed(self, value: int) -> None:
        if self._layer() is not None:
            self._layer().opacity = value / 100.0
            self._changed()

    def _outline_changed(self, on: bool) -> None:
        if self._layer() is not None:
            self._layer().outline = bool(on)
            self._changed()

    def _threshold_changed(self, value: int) -> None:
        layer = self._layer()
        if layer is None or layer.probabilities is None:
            return
        layer.threshold = value / 100.0
        self._threshold_text()
        self._changed()
        self._stats_timer.start()  # statistics follow once the slider rests

    def _threshold_text(self) -> None:
        layer = self._layer()
        if layer is None or layer.threshold is None:
            self.threshold_label.setText(
                "model output (post-processed); move the slider to re-threshold"
            )
        else:
            self.threshold_label.setText(
                f"re-thresholded at p ≥ {layer.threshold:.2f} (no post-processing)"
            )

    # ------------------------------------------------------------------ statistics
    def _recompute_stats(self) -> None:
        """Statistics of the re-thresholded map, in a worker ("latest request wins")."""
        entry, win = self.entry, self.window()
        runner = getattr(win, "runner", None)
        if entry is None or runner is None or self.state.volume is None:
            return
        from viewer.segstats import segment_statistics

        vol, layer = self.state.volume, entry.layer
        names = dict(layer.names)

        def fn(progress, cancel):
            return segment_statistics(
                layer.current_labels(), vol.voxels, vol.spacing, label_names=names
            )

        job = runner.submit(fn, name="segstats", key="segstats")
        self.stats_note.setText("updating statistics …")

        def done(stats: dict[str, Any], e=entry) -> None:
            e.stats = stats
            if self.entry is e:
                self.fill_stats(stats)

        job.result.connect(done)

    def fill_stats(self, stats: dict[str, Any]) -> None:
        rows: list[tuple[list[str], Any]] = []
        for lab in stats.get("labels", []):
            hu = (lab.get("hu") or {}).get("mean")
            rows.append(
                (
                    [
                        lab["name"],
                        f"{lab.get('volume_ml', 0):.1f}",
                        "" if hu is None else f"{hu:.0f}",
                        "",
                    ],
                    None,
                )
            )
        rows.extend(
            (
                [
                    f"  {les['name']} {c['id']}",
                    f"{c['volume_ml']:.2f}",
                    f"{c.get('hu_mean', 0):.0f}",
                    f"z {c['slice_index'] + 1}, {c['longest_axial_diameter_mm']:.1f} mm",
                ],
                c,
            )
            for les in stats.get("lesions", {}).values()
            for c in les["components"]
        )
        self.stats_table.setRowCount(len(rows))
        for r, (cells, comp) in enumerate(rows):
            for col, text in enumerate(cells):
                it = QTableWidgetItem(text)
                it.setData(ROLE, comp)
                if comp is not None:
                    it.setToolTip("Click to go to this lesion's slice")
                self.stats_table.setItem(r, col, it)
        self.stats_table.resizeColumnsToContents()
        n = sum(les["count"] for les in stats.get("lesions", {}).values())
        self.stats_note.setText(f"{n} lesion(s)" if stats.get("lesions") else "")

    def _stats_clicked(self, row: int, _col: int) -> None:
        it = self.stats_table.item(row, 0)
        comp = it.data(ROLE) if it is not None else None
        if not comp:
            return
        z = int(comp["slice_index"])
        cy, cx = comp["centroid_zyx"][1], comp["centroid_zyx"][2]
        self.state.set_layout(active_axis=0)
        self.state.set_cursor(z, round(cy), round(cx))
