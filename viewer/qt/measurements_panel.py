"""List of measurements (all slices): double-click jumps to its slice; Delete removes it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from viewer.qt.view_paint import measurement_label
from viewer.state import AXES, ViewState

__all__ = ["MeasurementsPanel"]


class MeasurementsPanel(QWidget):
    def __init__(self, state: ViewState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("measurements_tree")
        self.tree.setHeaderLabels(["#", "View", "Slice", "Kind", "Result"])
        self.tree.setRootIsDecorated(False)
        self.tree.itemDoubleClicked.connect(self._jump)
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.clicked.connect(self.delete_selected)
        self.clear_button = QPushButton("Delete all", self)
        self.clear_button.clicked.connect(self.delete_all)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.tree)
        row = QHBoxLayout()
        row.addWidget(self.delete_button)
        row.addWidget(self.clear_button)
        row.addStretch(1)
        lay.addLayout(row)
        state.subscribe("measurements", self.refresh)
        state.subscribe("volume", self.refresh)

    def refresh(self, **_) -> None:
        self.tree.clear()
        for m in self.state.measurements:
            it = QTreeWidgetItem(
                self.tree,
                [
                    str(m.id),
                    AXES[m.axis],
                    str(m.index + 1),
                    m.kind,
                    measurement_label(m).replace("\n", "; "),
                ],
            )
            it.setData(0, Qt.ItemDataRole.UserRole, m.id)
        for c in range(4):
            self.tree.resizeColumnToContents(c)

    def _jump(self, item: QTreeWidgetItem, _col: int = 0) -> None:
        mid = item.data(0, Qt.ItemDataRole.UserRole)
        for m in self.state.measurements:
            if m.id == mid:
                self.state.set_layout(active_axis=m.axis)
                self.state.set_slice(m.axis, m.index)

    def delete_selected(self) -> bool:
        """Delete the selected measurement, else the newest one on the active view's slice."""
        item = self.tree.currentItem()
        if item is not None:
            self.state.remove_measurement(item.data(0, Qt.ItemDataRole.UserRole))
            return True
        ax = self.state.active_axis
        here = self.state.measurements_on(ax, self.state.cursor[ax])
        if here:
            self.state.remove_measurement(here[-1].id)
            return True
        return False

    def delete_all(self) -> None:
        for m in list(self.state.measurements):
            self.state.remove_measurement(m.id)
