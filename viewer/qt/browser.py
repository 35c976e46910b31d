"""Study browser: patient → study → series/stack tree, with warnings and skipped files visible."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

__all__ = ["StudyBrowser", "thumbnail_icon"]

WARN = QColor(255, 170, 0)
ROLE_STACK = Qt.ItemDataRole.UserRole + 1


def thumbnail_icon(rgb_or_gray: np.ndarray) -> QIcon:
    """A QIcon from a small uint8 image ([h, w] gray or [h, w, 3] RGB)."""
    a = np.ascontiguousarray(rgb_or_gray)
    if a.ndim == 2:
        img = QImage(a.data, a.shape[1], a.shape[0], a.shape[1], QImage.Format.Format_Grayscale8)
    else:
        img = QImage(a.data, a.shape[1], a.shape[0], a.shape[1] * 3, QImage.Format.Format_RGB888)
    return QIcon(QPixmap.fromImage(img.copy()))


class StudyBrowser(QWidget):
    """Shows a ``ScanResult``. ``stack_activated(stack)`` when a series/stack is double-clicked."""

    stack_activated = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("study_tree")
        self.tree.setHeaderLabels(["Name", "Modality", "Images", "Notes"])
        self.tree.setIconSize(QSize(48, 48))
        self.tree.setColumnWidth(0, 220)
        self.tree.itemActivated.connect(self._activated)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.tree)
        self._stack_items: dict[str, QTreeWidgetItem] = {}
        self.result: Any = None

    def clear(self) -> None:
        self.tree.clear()
        self._stack_items.clear()
        self.result = None

    def set_result(self, result: Any, *, hide_identity: bool = False) -> None:
        """Fill the tree from a ``viewer.dicom.scan.ScanResult``."""
        self.clear()
        self.result = result
        for pi, patient in enumerate(result.patients):
            name = (
                f"Patient {pi + 1}"
                if hide_identity
                else (f"{patient.patient_name.replace('^', ' ')} ({patient.patient_id})")
            )
            p_item = QTreeWidgetItem(self.tree, [name, "", "", ""])
            for study in patient.studies:
                s_item = QTreeWidgetItem(
                    p_item, [f"Study {_date(study.date)} {study.description}".strip(), "", "", ""]
                )
                for series in study.series:
                    multi = len(series.stacks) > 1
                    parent = s_item
                    if multi:
                        parent = QTreeWidgetItem(
                            s_item,
                            [
                                _series_name(series),
                                series.modality,
                                str(sum(k.image_count for k in series.stacks)),
                                f"{len(series.stacks)} stacks",
                            ],
                        )
                    for stack in series.stacks:
                        label = f"stack {stack.stack_id}" if multi else _series_name(series)
                        self._add_stack(parent, stack, label)
                s_item.setExpanded(True)
            p_item.setExpanded(True)
        if result.skipped:
            top = QTreeWidgetItem(self.tree, [f"Skipped files ({len(result.skipped)})", "", "", ""])
            top.setForeground(0, QBrush(WARN))
            for sk in result.skipped:
                it = QTreeWidgetItem(top, [f"{_short(sk.path)}: {sk.reason}", "", "", sk.reason])
                it.setToolTip(0, sk.path)
                it.setToolTip(3, sk.reason)
            top.setExpanded(True)
        if result.non_image:
            top = QTreeWidgetItem(
                self.tree, [f"Non-image objects ({len(result.non_image)})", "", "", ""]
            )
            for ob in result.non_image:
                QTreeWidgetItem(top, [_short(ob.path), ob.modality, "", ob.sop_class_name])
        for c in (1, 2):
            self.tree.resizeColumnToContents(c)

    def _add_stack(self, parent: QTreeWidgetItem, stack: Any, label: str) -> None:
        notes = "; ".join(stack.warnings)
        it = QTreeWidgetItem(parent, [label, stack.modality, str(stack.image_count), notes])
        it.setData(0, ROLE_STACK, stack)
        tip = f"{stack.rows}x{stack.columns}"
        if stack.spacing:
            tip += " spacing (z, y, x) mm: " + ", ".join(f"{s:.3g}" for s in stack.spacing)
        it.setToolTip(0, tip)
        if notes:
            it.setForeground(3, QBrush(WARN))
            it.setToolTip(3, "\n".join(stack.warnings))
            for w in stack.warnings:
                wi = QTreeWidgetItem(it, [f"⚠ {w}", "", "", w])
                wi.setForeground(0, QBrush(WARN))
                wi.setToolTip(3, w)
        self._stack_items[stack.stack_id] = it

    def add_warnings(self, stack_id: str, warnings: list[str]) -> int:
        """Show the loader's warnings under a stack (once each); returns how many were new."""
        it = self._stack_items.get(stack_id)
        if it is None:
            return 0
        have = {it.child(i).text(3) for i in range(it.childCount())}
        new = [w for w in warnings if w not in have]
        for w in new:
            wi = QTreeWidgetItem(it, [f"⚠ {w}", "", "", w])
            wi.setForeground(0, QBrush(WARN))
            wi.setToolTip(0, w)
        if new:
            notes = "; ".join(filter(None, [it.text(3), *new]))
            it.setText(3, notes)
            it.setForeground(3, QBrush(WARN))
            it.setExpanded(True)
        return len(new)

    def set_thumbnail(self, stack_id: str, image: np.ndarray) -> None:
        it = self._stack_items.get(stack_id)
        if it is not None:
            it.setIcon(0, thumbnail_icon(image))

    def select_stack(self, stack_id: str) -> None:
        it = self._stack_items.get(stack_id)
        if it is not None:
            self.tree.setCurrentItem(it)

    def stack_item(self, stack_id: str) -> QTreeWidgetItem | None:
        return self._stack_items.get(stack_id)

    def all_texts(self) -> list[str]:
        """Every cell's text (tests and accessibility)."""
        out = []

        def walk(item: QTreeWidgetItem) -> None:
            out.extend(item.text(c) for c in range(item.columnCount()))
            for i in range(item.childCount()):
                walk(item.child(i))

        for i in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(i))
        return out

    def _activated(self, item: QTreeWidgetItem, _col: int) -> None:
        stack = item.data(0, ROLE_STACK)
        if stack is not None:
            self.stack_activated.emit(stack)


def _series_name(series: Any) -> str:
    num = f"#{series.series_number} " if series.series_number is not None else ""
    return f"{num}{series.description or '(no description)'}"


def _date(d: str) -> str:
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


def _short(path: str) -> str:
    import os

    name = os.path.basename(path.rstrip("/")) or path
    return name if len(name) < 40 else "…" + name[-38:]
