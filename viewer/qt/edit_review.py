"""Review part of the edit dock: AI vs final volume per label, accept / reject, review state,
reader, and the provenance overlay toggle with its colour legend.

The statistics come from ``seg.label_stats()`` / ``seg.provenance_counts()`` (kept up to date
incrementally by the engine: microseconds), refreshed at most every 150 ms while the reader paints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.masks_labels import Decision, ReviewState
from viewer.qt.edit_layers import PROV_CLASSES, PROV_COLORS

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.edit_sessions import EditController

__all__ = ["ReviewPanel"]

ROLE = Qt.ItemDataRole.UserRole
COLUMNS = ["Label", "AI mL", "Final mL", "+ mL", "− mL", "Decision"]
REVIEW_TEXT = {
    ReviewState.NOT_REVIEWED: "Not reviewed",
    ReviewState.REVIEWED: "Reviewed",
    ReviewState.NEEDS_ATTENTION: "Needs attention",
}


class ReviewPanel(QWidget):
    def __init__(self, controller: EditController, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctrl = controller
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("edit_stats")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for col, tip in (
            (1, "volume the AI proposed"),
            (2, "volume after the reader's edits"),
            (3, "added by the reader"),
            (4, "removed by the reader"),
        ):
            self.table.horizontalHeaderItem(col).setToolTip(tip)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.counts = QLabel("", self)
        self.counts.setObjectName("edit_prov_counts")
        self.counts.setWordWrap(True)
        self.provenance = QCheckBox("Colour by provenance", self)
        self.provenance.setObjectName("edit_provenance")
        self.provenance.setToolTip(
            "Show which voxels are as the AI proposed, added or removed by the reader"
        )
        self.provenance.toggled.connect(self.ctrl.set_show_provenance)
        legend = QHBoxLayout()
        legend.setSpacing(8)
        for code, name in PROV_CLASSES.items():
            sw = QLabel(self)
            sw.setFixedSize(12, 12)
            sw.setStyleSheet(
                "background: rgb({},{},{}); border: 1px solid #555;".format(*PROV_COLORS[code])
            )
            legend.addWidget(sw)
            legend.addWidget(QLabel(name, self))
        legend.addStretch(1)
        self.review = QComboBox(self)
        self.review.setObjectName("edit_review_state")
        for st, text in REVIEW_TEXT.items():
            self.review.addItem(text, str(st))
        self.review.currentIndexChanged.connect(self._review_changed)
        self.reader = QLineEdit(self)
        self.reader.setObjectName("edit_reader")
        self.reader.setPlaceholderText("reader name (stored with the edits)")
        self.reader.setText(self.ctrl.reader)
        self.reader.editingFinished.connect(self._reader_changed)
        form = QFormLayout()
        form.addRow("Review", self.review)
        form.addRow("Reader", self.reader)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.provenance)
        lay.addLayout(legend)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.counts)
        lay.addLayout(form)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)
        self._timer.timeout.connect(self.refresh)
        self.ctrl.changed.connect(lambda _box: self._timer.start())
        self.ctrl.session_changed.connect(self.refresh)

    # ------------------------------------------------------------------ refresh
    def refresh(self) -> None:
        seg = self.ctrl.seg
        self.setEnabled(seg is not None)
        if seg is None:
            self.table.setRowCount(0)
            self.counts.setText("")
            return
        stats = seg.label_stats()
        self.table.setRowCount(len(stats))
        for r, st in enumerate(stats):
            info = seg.labels.get(st.value)
            name = QTableWidgetItem(
                f"{st.value}: {st.name}" + (" (reader)" if st.source == "reader" else "")
            )
            if info is not None:
                name.setData(Qt.ItemDataRole.DecorationRole, QColor(*info.color))
            name.setData(ROLE, st.value)
            self.table.setItem(r, 0, name)
            for c, v in enumerate((st.ai_ml, st.final_ml, st.added_ml, st.removed_ml), start=1):
                it = QTableWidgetItem(f"{v:.2f}")
                it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, it)
            box = self.table.cellWidget(r, 5)
            if not isinstance(box, QComboBox):
                box = QComboBox(self.table)
                for d in Decision:
                    box.addItem(str(d).capitalize(), str(d))
                box.currentIndexChanged.connect(lambda _i, b=box: self._decision_changed(b))
                self.table.setCellWidget(r, 5, box)
            box.blockSignals(True)
            box.setProperty("label_value", st.value)
            box.setCurrentIndex(max(box.findData(st.decision), 0))
            box.setEnabled(info is not None)
            box.blockSignals(False)
        self.table.resizeColumnsToContents()
        pc = seg.provenance_counts()
        ml = seg.voxel_ml
        h = seg.history
        self.counts.setText(
            f"Voxels added {pc['added']} ({pc['added'] * ml:.2f} mL), removed {pc['removed']} "
            f"({pc['removed'] * ml:.2f} mL), relabelled {pc['relabelled']}. "
            f"Undo: {len(h.undo_names())} step(s), {h.nbytes / 1024:.0f} KiB "
            f"of {h.max_bytes / 2**20:.0f} MiB"
        )
        self.review.blockSignals(True)
        self.review.setCurrentIndex(max(self.review.findData(str(seg.review_state)), 0))
        self.review.blockSignals(False)
        if not self.reader.hasFocus():
            self.reader.setText(seg.reader or self.ctrl.reader)
        self.provenance.blockSignals(True)
        self.provenance.setChecked(self.ctrl.show_provenance)
        self.provenance.blockSignals(False)

    def provenance_text(self) -> str:
        return self.counts.text()

    # ------------------------------------------------------------------ reader input
    def _decision_changed(self, box: QComboBox) -> None:
        seg = self.ctrl.seg
        value: Any = box.property("label_value")
        if seg is not None and value is not None:
            seg.set_decision(int(value), box.currentData())

    def _review_changed(self, _i: int) -> None:
        seg = self.ctrl.seg
        if seg is not None:
            seg.set_review_state(self.review.currentData())

    def _reader_changed(self) -> None:
        name = self.reader.text().strip()
        self.ctrl.reader = name
        self.ctrl.win.settings.setValue("reader_name", name)
        seg = self.ctrl.seg
        if seg is not None and seg.reader != name:
            seg.set_reader(name)
