"""DICOM SEG objects found in a study folder: listed under their series, loaded as overlays.

When a scan finishes, a worker reads the header of every SEG among the scan's non-image objects
(:func:`viewer.dicom.seg_reader.referenced_series_uids`) and the study browser shows each one as a
"SEG: <file>" row under the series it references. Activating (double-clicking) such a
row loads that series if needed, then reads the SEG onto it in a worker
(:func:`viewer.dicom.seg_reader.read_seg`) and shows its label map as a
:class:`viewer.state.LabelLayer` named ``"seg:<file>"`` with the SEG's segment names and colours
(the layer keeps the segment descriptions in ``layer.segments``). Overlays are kept per series
and come back with it. ``install_seg_overlays(win)`` wires it; ``win.seg_overlays`` is the
controller.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QTreeWidgetItem

from viewer.state import LabelLayer

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.main_window import MainWindow
    from viewer.qt.workers import Job

__all__ = ["ROLE_SEG", "SEG_OVERLAY_PREFIX", "SegOverlays", "install_seg_overlays", "map_segs"]

log = logging.getLogger(__name__)
SEG_OVERLAY_PREFIX = "seg:"
ROLE_SEG = Qt.ItemDataRole.UserRole + 7
SEG_COLOR = QColor(70, 150, 230)


def map_segs(
    non_image: list[Any], *, progress: Any = None, cancel: Any = None
) -> dict[str, list[str]]:
    """Series Instance UID → paths of the SEG objects (among a scan's non-image objects) on it."""
    from inference.jobs import check_cancel, report
    from viewer.dicom.seg_reader import SEG_SOP_CLASSES, referenced_series_uids
    from viewer.errors import DicomError

    segs = [o for o in non_image if str(getattr(o, "sop_class_uid", "")) in SEG_SOP_CLASSES]
    out: dict[str, list[str]] = {}
    for i, obj in enumerate(segs):
        check_cancel(cancel)
        try:
            uids = referenced_series_uids(obj.path)
        except (DicomError, OSError) as exc:
            log.info("SEG not usable: %s (%s)", Path(obj.path).name, type(exc).__name__)
            continue
        for uid in dict.fromkeys(uids):
            out.setdefault(uid, []).append(str(obj.path))
        report(progress, i + 1, len(segs), "segmentation objects")
    return out


def _name(path: str) -> str:
    return Path(path.split("!")[-1]).name


class SegOverlays(QObject):
    """SEGs of the scanned folder per series, and the SEG overlays loaded per series.

    Signals
    -------
    found(object)    dict series UID → SEG paths, after a scan (may be empty)
    loaded(object)   the LabelLayer of a SEG that was put on the current series
    """

    found = Signal(object)
    loaded = Signal(object)

    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.win, self.state = win, win.state
        self.by_series: dict[str, list[str]] = {}
        self.layers: dict[str, dict[str, LabelLayer]] = {}  # series key → layer name → layer
        self._pending: tuple[str, str] | None = (
            None  # (stack id, SEG path) to load after the series
        )
        self.job: Job | None = None
        win.scan_finished.connect(self._scanned)
        win.browser.tree.itemActivated.connect(self._activated)
        win.volume_loaded.connect(self._volume_loaded)
        # the window rebuilds the browser on an identity change (after this callback): re-add
        self.state.subscribe("identity", lambda **_: QTimer.singleShot(0, self.decorate))
        self.state.subscribe("volume", self._restore)

    # ------------------------------------------------------------------ finding
    def _scanned(self, result: Any) -> None:
        self.by_series = {}
        self.layers.clear()
        from viewer.dicom.seg_reader import SEG_SOP_CLASSES

        if not any(
            str(getattr(o, "sop_class_uid", "")) in SEG_SOP_CLASSES for o in result.non_image
        ):
            self.found.emit({})
            return
        objs = list(result.non_image)
        job = self.win.runner.submit(
            lambda progress, cancel: map_segs(objs, progress=progress, cancel=cancel),
            name="find-segs",
            key="find-segs",
        )
        job.result.connect(self._mapped)
        job.error.connect(
            lambda exc, tb: self.win.errors.present(
                exc, title="Reading SEG objects failed", details=tb
            )
        )

    def _mapped(self, mapping: dict[str, list[str]]) -> None:
        self.by_series = mapping
        self.decorate()
        self._offer()
        self.found.emit(mapping)

    def segs_for(self, series_uid: str) -> list[str]:
        return list(self.by_series.get(series_uid, []))

    def decorate(self) -> None:
        """Add a "SEG: file" row under each series item that has SEGs."""
        result = self.win.browser.result
        if result is None:
            return
        for stack in result.stacks:
            item = self.win.browser.stack_item(stack.stack_id)
            if item is None:
                continue
            have = {item.child(i).data(0, ROLE_SEG) for i in range(item.childCount())}
            for path in self.segs_for(stack.series_uid):
                if (path, stack.stack_id) in have:
                    continue
                it = QTreeWidgetItem(
                    item, [f"SEG: {_name(path)}", "SEG", "", "double-click to show"]
                )
                it.setData(0, ROLE_SEG, (path, stack.stack_id))
                it.setForeground(0, QBrush(SEG_COLOR))
                it.setToolTip(0, "DICOM SEG on this series: double-click to show it as an overlay")
                item.setExpanded(True)

    def _offer(self) -> None:
        vol = self.state.volume
        if vol is None:
            return
        n = len(self.segs_for(vol.meta.series_instance_uid))
        if n:
            self.win.message(
                f"{n} segmentation object(s) for this series: double-click "
                '"SEG: …" under the series in Studies to show it',
                10000,
            )

    def seg_items(self) -> list[QTreeWidgetItem]:
        """The browser rows of SEG objects (tests and accessibility)."""
        out = []
        for stack in self.win.browser.result.stacks if self.win.browser.result else []:
            item = self.win.browser.stack_item(stack.stack_id)
            if item is not None:
                out += [
                    item.child(i)
                    for i in range(item.childCount())
                    if item.child(i).data(0, ROLE_SEG)
                ]
        return out

    # ------------------------------------------------------------------ loading
    def _activated(self, item: QTreeWidgetItem, _col: int) -> None:
        data = item.data(0, ROLE_SEG)
        if data:
            self.open(*data)

    def open(self, path: str, stack_id: str) -> Job | None:
        """Show the SEG at ``path`` on stack ``stack_id`` (loading that series first if needed)."""
        if self.state.volume is not None and self.state.series_key == stack_id:
            return self.load(path)
        stacks = [
            s
            for s in (self.win.browser.result.stacks if self.win.browser.result else [])
            if s.stack_id == stack_id
        ]
        if not stacks:
            return None
        self._pending = (stack_id, path)
        self.job = None
        self.win.loader.load_stack(stacks[0])  # a cached series is set at once (and loads the SEG)
        return self.job

    def _volume_loaded(self, volume: Any) -> None:
        if self._pending and self._pending[0] == self.state.series_key:
            _sid, path = self._pending
            self._pending = None
            self.load(path)
        else:
            self._offer()

    def load(self, path: str) -> Job | None:
        """Read the SEG onto the current series in a worker and show it as an overlay."""
        from viewer.dicom.seg_reader import read_seg

        vol, key = self.state.volume, self.state.series_key
        if vol is None:
            return None
        self.job = job = self.win.runner.submit(
            lambda progress, cancel: read_seg(path, vol), name="read-seg", key="read-seg"
        )
        self.win.message(f"Reading {_name(path)} …", 0)
        job.result.connect(lambda ov: self._show(ov, path, key, vol))
        job.error.connect(
            lambda exc, tb: self.win.errors.present(exc, title="Loading the SEG failed", details=tb)
        )
        return job

    def _show(self, overlay: Any, path: str, key: str, volume: Any) -> None:
        names = {s.value: s.name for s in overlay.segments}
        colors = {s.value: tuple(int(c) for c in s.color) for s in overlay.segments}
        layer = LabelLayer(
            f"{SEG_OVERLAY_PREFIX}{_name(path)}", overlay.labels, colors, names=names
        )
        layer.segments = list(overlay.segments)  # type: ignore[attr-defined]
        layer.source_path = path  # type: ignore[attr-defined]
        self.layers.setdefault(key, {})[layer.name] = layer
        msg = f"Showing {_name(path)}: {len(names)} segment(s)"
        if overlay.warnings:
            msg += f" — {len(overlay.warnings)} warning(s): {overlay.warnings[0]}"
            self.win.browser.add_warnings(
                key, [f"SEG {_name(path)}: {w}" for w in overlay.warnings]
            )
        self.win.message(msg, 10000)
        if key == self.state.series_key and self.state.volume is volume:
            self.state.set_layer(layer)
            self.loaded.emit(layer)

    def _restore(self, volume: Any = None, **_: Any) -> None:
        """Bring back this series' SEG overlays (set_volume cleared the layers)."""
        if volume is None:
            return
        for layer in self.layers.get(self.state.series_key, {}).values():
            self.state.set_layer(layer)


def install_seg_overlays(win: MainWindow) -> SegOverlays:
    return SegOverlays(win)
