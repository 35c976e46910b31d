"""A searchable DICOM tag browser for the current image (headers read with pydicom)."""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

__all__ = ["TagBrowser", "read_header"]

log = logging.getLogger(__name__)
MAX_VALUE = 200


def read_header(source: str) -> Any:
    """Header (``pydicom.Dataset``) of a file on disk, or of ``archive.zip!member`` (no pixels)."""
    import pydicom

    p = Path(source)
    if not p.exists() and "!" in source:
        archive, member = source.split("!", 1)
        with zipfile.ZipFile(archive) as zf:
            return pydicom.dcmread(io.BytesIO(zf.read(member)), stop_before_pixels=True, force=True)
    return pydicom.dcmread(str(p), stop_before_pixels=True, force=True)


def _value(elem: Any) -> str:
    if elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        return f"<{len(elem.value or b'')} bytes>" if isinstance(elem.value, bytes) else "<binary>"
    s = str(elem.value)
    return s if len(s) <= MAX_VALUE else s[:MAX_VALUE] + "…"


def _identifying(elem: Any) -> bool:
    """Hidden with "hide identity": PS3.15 basic-profile attributes, person names, private tags."""
    from viewer.anonymize import ACTIONS

    return (
        elem.keyword in ACTIONS
        or elem.VR == "PN"
        or elem.tag.is_private
        or "Patient" in elem.keyword
    )


class TagBrowser(QWidget):
    """Every element of one file; the filter matches tag, keyword or value (any case)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.source_label = QLabel("No image", self)
        self.source_label.setWordWrap(True)
        self.search = QLineEdit(self)
        self.search.setObjectName("tag_search")
        self.search.setPlaceholderText("Search tags (e.g. 0028,0030 or Spacing or a value)…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.apply_filter)
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("tag_tree")
        self.tree.setHeaderLabels(["Tag", "Name", "VR", "Value"])
        self.tree.setColumnWidth(0, 100)
        self.tree.setIndentation(12)
        self.tree.setColumnWidth(1, 165)
        self.tree.setColumnWidth(2, 32)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.source_label)
        lay.addWidget(self.search)
        lay.addWidget(self.tree)
        self.current_source = ""

    def show_file(self, source: str | None, *, hide_identity: bool = False) -> None:
        """Load the header of ``source`` (no-op when it is already shown)."""
        if source == self.current_source:
            return
        self.current_source = source or ""
        self.tree.clear()
        if not source:
            self.source_label.setText("No image")
            return
        try:
            ds = read_header(source)
        except Exception as exc:  # noqa: BLE001 - shown in the panel, not fatal
            self.source_label.setText(f"Cannot read the header of {source}: {exc}")
            return
        self.source_label.setText(Path(source.split("!")[-1]).name)
        self._fill(self.tree.invisibleRootItem(), ds, hide_identity)
        if ds.file_meta:
            meta = QTreeWidgetItem(self.tree, ["(0002,xxxx)", "File meta information", "", ""])
            self._fill(meta, ds.file_meta, hide_identity)
        self.apply_filter(self.search.text())

    def _fill(self, parent: QTreeWidgetItem, ds: Any, hide: bool) -> None:
        for key in list(ds.keys()):
            tag = f"({key.group:04X},{key.element:04X})"
            try:  # decoded lazily: one malformed (often private) element must not hide the rest
                elem = ds[key]
            except Exception as exc:  # noqa: BLE001 - shown in its row
                QTreeWidgetItem(
                    parent, [tag, "(unreadable)", "", f"cannot decode: {type(exc).__name__}"]
                )
                continue
            name = elem.keyword or elem.name
            if elem.VR == "SQ":
                it = QTreeWidgetItem(parent, [tag, name, "SQ", f"{len(elem.value)} item(s)"])
                for i, item in enumerate(elem.value):
                    sub = QTreeWidgetItem(it, ["", f"Item {i + 1}", "", ""])
                    self._fill(sub, item, hide)
                continue
            value = "(hidden)" if hide and _identifying(elem) else _value(elem)
            QTreeWidgetItem(parent, [tag, name, str(elem.VR), value])

    def apply_filter(self, text: str) -> int:
        """Hide rows that do not match ``text``; return the number of matching rows."""
        needle = text.strip().lower().replace(" ", "")

        def visit(item: QTreeWidgetItem) -> bool:
            hay = " ".join(item.text(c) for c in range(4)).lower().replace(" ", "")
            own = not needle or needle in hay
            child_match = False
            for i in range(item.childCount()):
                child_match = visit(item.child(i)) or child_match
            item.setHidden(not (own or child_match))
            nonlocal count
            count += int(own and bool(needle)) or int(not needle)
            return own or child_match

        count = 0
        root = self.tree.invisibleRootItem()
        for i in range(root.childCount()):
            visit(root.child(i))
        return count
