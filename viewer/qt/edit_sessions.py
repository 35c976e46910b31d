"""Per-series reader-edit sessions in the GUI: start / restore / show / undo / close.

:class:`EditController` owns one :class:`viewer.autosave.EditSession` per series
(``ViewState.series_key``), like the segmentation dock keeps one result per series. Editing starts
on the first edit (a brush stroke, Add label, Start editing …) from the result the segmentation
dock shows (layer :data:`SEG_LAYER`, as re-thresholded at that moment; an empty map when there is
none). The result layer is then hidden and :data:`EDIT_LAYER` shows ``seg.current``. When a series
with an autosave of exactly that series is opened (or editing starts), it offers to restore it.
Closing the app (or the series' edits) with unsaved edits asks first. Questions go through a
:class:`Prompter` (recording mode in tests).

Thread rule: edits made on the GUI thread redraw synchronously; edits from a worker (3-D island
tools) and autosave callbacks (autosave thread) arrive through queued signals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from viewer.autosave import (
    Autosaver,
    EditSession,
    SeriesIdentity,
    discard,
    find_restorable,
    restore,
)
from viewer.masks import EditableSegmentation
from viewer.masks_geometry import Box
from viewer.qt.edit_layers import (
    EDIT_LAYER,
    PROV_LAYER,
    ProvenanceLayer,
    edit_layer,
    sync_edit_layer,
)
from viewer.qt.edit_prompts import Prompter
from viewer.qt.segmentation_panel import SEG_LAYER
from viewer.state import LabelLayer

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.main_window import MainWindow

__all__ = ["CLOSE_CHOICES", "RESTORE_CHOICES", "EditController", "EditOptions"]

log = logging.getLogger(__name__)

RESTORE_CHOICES = ("Restore edits", "Discard them", "Not now")
CLOSE_CHOICES = ("Keep for later", "Discard edits", "Cancel")


@dataclass
class EditOptions:
    """What the edit dock sets and the mouse tools use."""

    label: int | None = None  # active label
    size_mm: float = 5.0  # brush / eraser diameter (mm)
    hu_range: tuple[float, float] | None = None  # threshold paint
    erase_active_only: bool = True  # the eraser removes only the active label
    protect_others: bool = False  # paint only over background and the active label


class EditController(QObject):
    """Reader-edit sessions of the window's series (see the module docstring).

    Signals
    -------
    session_changed()        the current series' session started / ended / was switched
    changed(object)          the current segmentation changed (a Box; None: labels / states)
    saved(str, int)          an autosave of series ``key`` at ``revision`` finished (GUI thread)
    save_failed(object)      an autosave failed (the exception)
    notice(str)              e.g. "the oldest undo steps were dropped"
    """

    session_changed = Signal()
    changed = Signal(object)
    saved = Signal(str, int)
    save_failed = Signal(object)
    notice = Signal(str)
    _seg_changed = Signal(str, object)  # (key, box) from any thread

    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.win, self.state = win, win.state
        self.prompter = Prompter(win, recording=win.errors.recording)
        self.options = EditOptions()
        self.sessions: dict[str, EditSession] = {}
        self.show_provenance = False
        self.reader = str(win.settings.value("reader_name", "") or "")
        self._layers: dict[str, LabelLayer] = {}
        self._prov: dict[str, ProvenanceLayer] = {}
        self._sources: dict[
            str, LabelLayer | None
        ] = {}  # the result layer each session started from
        self._asked: set[str] = set()
        self._idents: dict[str, SeriesIdentity] = {}
        self._sync_pending = False
        self._error_shown = False
        self._seg_changed.connect(self._apply_change)
        self.saved.connect(lambda *_: setattr(self, "_error_shown", False))
        self.save_failed.connect(self._save_failed)
        self.state.subscribe("volume", self._schedule_sync)
        self.state.subscribe("layers", self._on_layers)

    # ------------------------------------------------------------------ current session
    @property
    def key(self) -> str:
        return self.state.series_key

    @property
    def session(self) -> EditSession | None:
        return self.sessions.get(self.key) if self.state.volume is not None else None

    @property
    def seg(self) -> EditableSegmentation | None:
        s = self.session
        return None if s is None else s.seg

    def identity(self) -> SeriesIdentity:
        ident = self._idents.get(self.key)
        if ident is None:
            ident = self._idents[self.key] = SeriesIdentity.from_volume(self.state.volume)
        return ident

    def result_layer(self) -> LabelLayer | None:
        layer = self.state.layers.get(SEG_LAYER)
        return layer if isinstance(layer, LabelLayer) else None

    # ------------------------------------------------------------------ following the state
    def _on_layers(self, name: str = "", **_: Any) -> None:
        if name == SEG_LAYER:
            self._schedule_sync()

    def _schedule_sync(self, **_: Any) -> None:
        if not self._sync_pending:
            self._sync_pending = True
            QTimer.singleShot(0, self.sync)

    def sync(self) -> None:
        """Bring the state in line with the current series: offer a restore once, start editing on
        a new AI result, show the edit layers and hide the result layer."""
        self._sync_pending = False
        vol, key = self.state.volume, self.key
        if vol is None:
            self.session_changed.emit()
            return
        result = self.result_layer()
        session = self.sessions.get(key)
        if session is None and key not in self._asked:
            self._asked.add(key)
            if find_restorable(self.identity()) is not None:  # e.g. after a crash: offer it at once
                session = self.start_editing()
        if session is not None:
            self._show(key, session, result)
        self.session_changed.emit()

    def _show(self, key: str, session: EditSession, result: LabelLayer | None) -> None:
        layer = self._layers.get(key)
        if layer is None:
            layer = self._layers[key] = edit_layer(session.seg, result)
        if result is not None:
            if self._sources.get(key) is None:
                self._sources[key] = result
            elif self._sources[key] is not result:
                self.win.message(
                    "A new AI result arrived: the edits stay on the result they were made on. "
                    "Close or discard the edits to edit the new result.",
                    10000,
                )
                self._sources[key] = result
            result.visible = False
        sync_edit_layer(layer, session.seg, result)
        layer.visible = not self.show_provenance
        self.state.set_layer(layer)
        prov = self._prov.get(key)
        if prov is None or prov.seg is not session.seg:
            prov = self._prov[key] = ProvenanceLayer(PROV_LAYER, session.seg)
        prov.visible = self.show_provenance
        self.state.set_layer(prov)

    def set_show_provenance(self, on: bool) -> None:
        """Colour the overlay by provenance (AI / added / removed / relabelled), not by label."""
        self.show_provenance = bool(on)
        if self.session is not None:
            self._show(self.key, self.session, self.result_layer())

    # ------------------------------------------------------------------ start / restore
    def start_editing(self) -> EditSession | None:
        """Start editing the current series: restore its autosave if the reader says so, else
        begin from the shown AI result (or an empty map when there is none)."""
        vol, key = self.state.volume, self.key
        if vol is None:
            return None
        if key in self.sessions:
            return self.sessions[key]
        ident = self.identity()
        info = find_restorable(ident)
        restore_it = False
        if info is not None:
            who = f" by {info.reader}" if info.reader else ""
            ans = self.prompter.choose(
                "restore",
                "Restore edits?",
                f"This series has unsaved edits from {info.modified}{who} "
                f"(autosaved, revision {info.revision}).\n"
                "Restore them? Discarding deletes them for good.",
                RESTORE_CHOICES,
                default=RESTORE_CHOICES[0],
                escape=RESTORE_CHOICES[2],
            )
            if ans == RESTORE_CHOICES[2]:
                self.win.message(
                    "Edits not restored; they stay autosaved. Start editing to be asked again.",
                    8000,
                )
                return None
            restore_it = ans == RESTORE_CHOICES[0]
            if not restore_it:
                discard(ident)
        result = self.result_layer()
        try:
            if restore_it and result is None:
                seg = restore(ident, image=getattr(vol, "voxels", None))
                session = EditSession(seg, Autosaver(seg, ident), restored=True)
            else:
                ai = (
                    result.current_labels() if result is not None else np.zeros(vol.shape, np.uint8)
                )
                labels = (
                    []
                    if result is None
                    else [
                        {"value": v, "name": result.names.get(v, f"label {v}"), "color": list(c)}
                        for v, c in sorted(result.colors.items())
                        if v != 0
                    ]
                )
                session = EditSession.start(
                    vol, ai, labels, restore_edits=restore_it, reader=self.reader
                )
        except Exception as exc:  # noqa: BLE001 - a damaged autosave must not take the viewer down
            self.win.errors.present(exc, title="Could not start editing")
            return None
        self._attach(key, session)
        if session.restored:
            extra = " (made on a different AI result)" if session.ai_changed else ""
            self.win.message(f"Restored the autosaved edits{extra}", 8000)
        if self.options.label not in session.seg.labels:
            self.options.label = next(iter(session.seg.labels), None)
        self._show(key, session, result)
        self.session_changed.emit()
        return session

    def ensure_seg(self) -> EditableSegmentation | None:
        """The current series' segmentation, starting editing if needed (None: nothing to edit)."""
        if self.seg is None:
            self.start_editing()
        return self.seg

    def _attach(self, key: str, session: EditSession) -> None:
        self.sessions[key] = session
        seg = session.seg
        if self.reader and not seg.reader:
            seg.set_reader(self.reader)
        seg.on_change.append(lambda box, k=key: self._seg_changed.emit(k, box))
        seg.on_notice.append(self.notice.emit)
        session.autosaver.on_saved.append(lambda rev, _path, k=key: self.saved.emit(k, int(rev)))
        session.autosaver.on_error.append(self.save_failed.emit)
        session.autosaver.start()

    # ------------------------------------------------------------------ changes
    def _apply_change(self, key: str, box: Box | None) -> None:
        if key != self.key or key not in self.sessions:
            return
        seg = self.sessions[key].seg
        layer = self._layers.get(key)
        if box is None:  # label table / decisions / review state
            if layer is not None:
                sync_edit_layer(layer, seg, self.result_layer())
            self.state.layer_changed(EDIT_LAYER)
        elif any(box.intersects_plane(a, self.state.cursor[a]) for a in range(3)):
            if layer is not None and layer.labels is not seg.current:
                layer.labels = seg.current
            # only the views whose plane cuts the box redraw (painting on the axial view does
            # not re-render the coronal / sagittal views unless the stroke crosses them)
            self.state.layer_changed(PROV_LAYER if self.show_provenance else EDIT_LAYER, box)
        self.changed.emit(box)

    def _save_failed(self, exc: Exception) -> None:
        if not self._error_shown:  # retried every few seconds: tell once until a save works
            self._error_shown = True
            self.win.errors.present(exc, title="Autosave failed")

    def undo(self) -> Box | None:
        seg = self.seg
        if seg is None or not seg.can_undo:
            self.win.message("Nothing to undo")
            return None
        return seg.undo()

    def redo(self) -> Box | None:
        seg = self.seg
        if seg is None or not seg.can_redo:
            self.win.message("Nothing to redo")
            return None
        return seg.redo()

    def committed(self) -> None:
        """The edits of the current series were exported / saved (exports call this)."""
        if self.session is not None:
            self.session.committed()

    # ------------------------------------------------------------------ close
    def _ask_close(self, n: int) -> str:
        what = "this series has" if n == 1 else f"{n} series have"
        return self.prompter.choose(
            "close",
            "Unsaved edits",
            f"{what.capitalize()} edits that were not exported.\n"
            "Keep them for later (they are autosaved and "
            "offered again when the series is reopened) or discard them?",
            CLOSE_CHOICES,
            default=CLOSE_CHOICES[0],
            escape=CLOSE_CHOICES[2],
        )

    def close_series_edits(self) -> bool:
        """Stop editing the current series (asks when there are unsaved edits). False: cancelled."""
        key, s = self.key, self.session
        if s is None:
            return True
        ans = self._ask_close(1) if s.must_ask_before_close else CLOSE_CHOICES[0]
        if ans == CLOSE_CHOICES[2]:
            return False
        self._end(key, discard_edits=ans == CLOSE_CHOICES[1])
        self._asked.add(key)
        result = self.result_layer()
        if result is not None:
            result.visible = True
            self.state.layer_changed(SEG_LAYER)
        self.session_changed.emit()
        return True

    def confirm_close_all(self) -> bool:
        """Before the app closes: ask when any series has unsaved edits. False: cancelled."""
        dirty = [k for k, s in self.sessions.items() if s.must_ask_before_close]
        ans = self._ask_close(len(dirty)) if dirty else CLOSE_CHOICES[0]
        if ans == CLOSE_CHOICES[2]:
            return False
        for key in list(self.sessions):
            self._end(key, discard_edits=ans == CLOSE_CHOICES[1] and key in dirty)
        return True

    def _end(self, key: str, *, discard_edits: bool) -> None:
        s = self.sessions.pop(key)
        try:
            s.discard() if discard_edits else s.close()
        except Exception as exc:  # noqa: BLE001 - report, keep closing
            self.win.errors.present(exc, title="Autosave failed while closing the edits")
        self._layers.pop(key, None)
        self._prov.pop(key, None)
        self._sources.pop(key, None)
        if key == self.key:
            self.state.remove_layer(PROV_LAYER)
            self.state.remove_layer(EDIT_LAYER)
