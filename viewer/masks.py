"""Editable segmentations: the reader's corrections on top of the AI's label map. No Qt.

:class:`EditableSegmentation` holds

* ``ai``: the AI's proposal, a read-only ``uint8 [z, y, x]`` label map (0 = background);
* ``current``: the label map after the reader's edits (read it freely; change it only through
  the edit methods, which record undo steps, provenance and change notifications);
* the label table (:class:`LabelInfo`: value, name, colour, source ``ai`` / ``reader``, accept /
  reject decision), the review state and the reader's name.

Provenance is derived, never stored: for label ``L`` the reader *added* ``current == L & ai != L``
and *removed* ``ai == L & current != L``; all other voxels are as the AI proposed. Only the box of
voxels ever edited (``touched``) can differ; the counts are updated from each edit's changed
voxels, so statistics never scan the volume.

Every edit method returns the :class:`Box` of voxels it changed (None if nothing changed), touches
only that region, records one undo step (a brush drag between :meth:`begin_stroke` and
:meth:`end_stroke` is one step) and calls each ``on_change(box)`` callback (``box`` None for label
table / state changes). The edit operations live in :mod:`viewer.masks_ops`, statistics in
:mod:`viewer.masks_stats`, the undo history in :mod:`viewer.masks_undo`, snapshots for autosave
in :mod:`viewer.masks_persist`, a mouse-event helper in :mod:`viewer.masks_tools`; the user
documentation is ``docs/editing.md``. All methods are thread-safe (one re-entrant lock), so an
autosave thread can take :meth:`snapshot` while the GUI edits.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from viewer.masks_geometry import Box, tight_box
from viewer.masks_labels import (
    Decision,
    EditError,
    LabelInfo,
    LabelSource,
    Provenance,
    ReviewState,
    label_info_from,
)
from viewer.masks_ops import EditOpsMixin
from viewer.masks_persist import PersistMixin, Snapshot
from viewer.masks_stats import LabelStats, StatsMixin
from viewer.masks_undo import DEFAULT_MAX_BYTES, DEFAULT_MAX_STEPS, Step, UndoHistory

__all__ = [
    "Box",
    "Decision",
    "EditError",
    "EditableSegmentation",
    "LabelInfo",
    "LabelSource",
    "LabelStats",
    "Provenance",
    "ReviewState",
    "Snapshot",
]

log = logging.getLogger(__name__)

ChangeCallback = Callable[[Box | None], None]


def _utcnow() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class EditableSegmentation(EditOpsMixin, StatsMixin, PersistMixin):
    """The AI label map plus the reader's edits, with undo, provenance and notifications.

    Parameters
    ----------
    ai_labels : uint8 [z, y, x] label map proposed by the model (copied, stored read-only). Use
        ``np.zeros(shape, np.uint8)`` for a reader-only segmentation.
    spacing : (sz, sy, sx) voxel spacing in mm.
    labels : label table: :class:`LabelInfo`, ``inference.package.LabelSpec`` or dicts with
        ``value``, ``name``, ``color``; value 0 (background) is skipped.
    image : optional [z, y, x] image (HU for CT) of the same shape, for threshold painting.
    reader : the reader's name (stored with the edits).
    undo_max_bytes, undo_max_steps : the undo memory bound (see :mod:`viewer.masks_undo`).
    undo_codec : ``"zlib"`` (default) or ``"sparse"``.
    """

    def __init__(self, ai_labels: np.ndarray, spacing: Sequence[float], labels: Iterable[Any] = (), *,
                 image: np.ndarray | None = None, reader: str = "",
                 undo_max_bytes: int = DEFAULT_MAX_BYTES, undo_max_steps: int = DEFAULT_MAX_STEPS,
                 undo_codec: str = "zlib") -> None:
        ai = np.asarray(ai_labels)
        if ai.ndim != 3 or ai.dtype != np.uint8:
            raise EditError(f"label map must be uint8 [z, y, x], got {ai.dtype} {ai.shape}")
        if image is not None and tuple(image.shape[:3]) != ai.shape:
            raise EditError(f"image shape {image.shape} does not match label map {ai.shape}")
        self.spacing: tuple[float, float, float] = tuple(float(s) for s in spacing)  # type: ignore[assignment]
        if len(self.spacing) != 3 or not all(s > 0 for s in self.spacing):
            raise EditError(f"spacing must be three values (sz, sy, sx) > 0 mm, got {spacing!r}")
        self._ai = np.array(ai, dtype=np.uint8, order="C", copy=True)
        self._ai.setflags(write=False)
        self._cur = self._ai.copy()
        self.image = image
        self._lock = threading.RLock()
        self._labels: dict[int, LabelInfo] = {}
        for obj in labels:
            value = obj["value"] if isinstance(obj, dict) else obj.value
            if int(value) != 0:  # background is not a label
                info = label_info_from(obj)
                self._labels[info.value] = info
        self.review_state = ReviewState.NOT_REVIEWED
        self.reader = str(reader)
        self.created = _utcnow()
        self.modified = self.created
        self.undo_codec = undo_codec
        self.on_change: list[ChangeCallback] = []
        self.on_notice: list[Callable[[str], None]] = []
        self.history = UndoHistory(undo_max_bytes, undo_max_steps, on_notice=self._notice)
        self._revision = 0
        self._committed_revision = 0
        self._touched: Box | None = None
        self._stroke_depth = 0
        self._stroke_name = ""
        self._stroke_parts: list[tuple[Box, np.ndarray]] = []
        self._init_counts()
        self._init_chunks()

    # ------------------------------------------------------------------ arrays and state
    @property
    def ai(self) -> np.ndarray:
        """The AI's proposal, read-only uint8 [z, y, x]."""
        return self._ai

    @property
    def current(self) -> np.ndarray:
        """The edited label map, uint8 [z, y, x]. Do not write to it directly."""
        return self._cur

    @property
    def shape(self) -> tuple[int, int, int]:
        return self._cur.shape  # type: ignore[return-value]

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in mL."""
        sz, sy, sx = self.spacing
        return sz * sy * sx / 1000.0

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @property
    def revision(self) -> int:
        """Incremented by every change (voxels, undo/redo, labels, states)."""
        return self._revision

    @property
    def touched(self) -> Box | None:
        """Box around every voxel ever edited; outside it ``current == ai``."""
        return self._touched

    @property
    def in_stroke(self) -> bool:
        """True between :meth:`begin_stroke` and the matching :meth:`end_stroke`."""
        return self._stroke_depth > 0

    @property
    def has_unsaved_edits(self) -> bool:
        """True when something changed since :meth:`mark_committed` (the close-asks-first test)."""
        return self._revision != self._committed_revision

    def mark_committed(self) -> None:
        """Record that the reader saved / exported the edits as they are now.

        This is itself a change (a new revision, ``on_change(None)``), so the autosave records it.
        """
        with self._lock:
            self._bump()
            self._committed_revision = self._revision
        self._notify(None)

    @property
    def labels(self) -> dict[int, LabelInfo]:
        """The label table by value (a copy: change it through the methods below)."""
        with self._lock:
            return {v: label_info_from(i) for v, i in sorted(self._labels.items())}

    def label(self, value: int) -> LabelInfo:
        """The table entry for ``value``; raises :class:`EditError` if it is not there."""
        info = self._labels.get(int(value))
        if info is None:
            raise EditError(f"label {value} is not in the label table "
                            f"(known: {sorted(self._labels)}); add it first with add_label()")
        return info

    # ------------------------------------------------------------------ label table and review state
    def add_label(self, name: str, color: Sequence[int], value: int | None = None) -> LabelInfo:
        """Add a reader-defined label (a finding the model does not know); returns its entry.

        ``value`` defaults to the lowest free value 1..255.
        """
        with self._lock:
            if value is None:
                free = [v for v in range(1, 256) if v not in self._labels]
                if not free:
                    raise EditError("all 255 label values are in use; remove or relabel a label first")
                value = free[0]
            if not 1 <= int(value) <= 255 or int(value) in self._labels:
                raise EditError(f"label value {value} is out of 1..255 or already used by "
                                f"{self._labels.get(int(value), LabelInfo(0, '', (0, 0, 0))).name!r}")
            info = label_info_from({"value": int(value), "name": str(name), "color": list(color)},
                                   LabelSource.READER)
            self._labels[info.value] = info
            self._bump()
        self._notify(None)
        return label_info_from(info)

    def update_label(self, value: int, *, name: str | None = None, color: Sequence[int] | None = None) -> None:
        """Rename and/or recolour a label."""
        with self._lock:
            old = self.label(value)
            new = label_info_from({**old.to_json(), **({"name": name} if name is not None else {}),
                                   **({"color": list(color)} if color is not None else {})})
            self._labels[old.value] = new
            self._bump()
        self._notify(None)

    def set_decision(self, value: int, decision: Decision | str) -> None:
        """Accept / reject (or reset to pending) one label."""
        with self._lock:
            self.label(value).decision = Decision(decision)
            self._bump()
        self._notify(None)

    def set_review_state(self, state: ReviewState | str) -> None:
        with self._lock:
            self.review_state = ReviewState(state)
            self._bump()
        self._notify(None)

    def set_reader(self, name: str) -> None:
        with self._lock:
            self.reader = str(name)
            self._bump()
        self._notify(None)

    # ------------------------------------------------------------------ the one place voxels change
    def _apply_region(self, box: Box, new: np.ndarray, name: str) -> Box | None:
        """Set ``current[box] = new``, record undo and provenance, notify. Returns the tight box."""
        with self._lock:
            view = self._cur[box.slices]
            diff = np.bitwise_xor(view, new)
            tb = tight_box(diff != 0, box)
            if tb is None:
                return None
            diff = diff[tb.offset_in(box)]
            target = self._cur[tb.slices]
            self._count_change(tb, target, np.bitwise_xor(target, diff))
            np.bitwise_xor(target, diff, out=target)
            self._touched = tb.union(self._touched)
            if self._stroke_depth:
                self._stroke_parts.append((tb, diff))
            else:
                self.history.push(Step.from_diff(name, tb, diff, self.undo_codec))
            self._bump()
            self._mark_chunks(tb)
        self._notify(tb)
        return tb

    def _bump(self) -> None:
        """New revision; called with the lock held, together with the change itself, so a
        snapshot never pairs new data with an old revision."""
        self._revision += 1
        self.modified = _utcnow()

    def _notify(self, box: Box | None) -> None:
        """Run the change callbacks (outside the lock, in the thread that made the change)."""
        for cb in list(self.on_change):
            cb(box)

    def _notice(self, msg: str) -> None:
        for cb in list(self.on_notice):
            cb(msg)

    # ------------------------------------------------------------------ strokes (grouping)
    def begin_stroke(self, name: str = "brush") -> None:
        """Start grouping edits into one undo step (mouse press). Nestable."""
        with self._lock:
            if self._stroke_depth == 0:
                self._stroke_name = name
                self._stroke_parts = []
            self._stroke_depth += 1

    def end_stroke(self) -> Box | None:
        """Close the group (mouse release): its edits become one undo step. Returns its box."""
        with self._lock:
            if self._stroke_depth == 0:
                return None
            self._stroke_depth -= 1
            if self._stroke_depth:
                return None
            parts, self._stroke_parts = self._stroke_parts, []
            if not parts:
                return None
            union = parts[0][0]
            for b, _ in parts[1:]:
                union = b.union(union)
            total = np.zeros(union.shape, np.uint8)
            for b, d in parts:  # XOR differences compose: s0^s1 ^ s1^s2 = s0^s2
                sub = total[b.offset_in(union)]
                np.bitwise_xor(sub, d, out=sub)
            tb = tight_box(total != 0, union)
            if tb is None:
                return None  # the stroke undid itself (painted then erased)
            self.history.push(Step.from_diff(self._stroke_name, tb, total[tb.offset_in(union)],
                                             self.undo_codec))
            return tb

    @contextlib.contextmanager
    def stroke(self, name: str = "edit") -> Iterator[None]:
        """``with seg.stroke(): ...`` groups the edits inside into one undo step."""
        self.begin_stroke(name)
        try:
            yield
        finally:
            self.end_stroke()

    # ------------------------------------------------------------------ undo / redo
    @property
    def can_undo(self) -> bool:
        return self.history.can_undo or bool(self._stroke_parts)

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    def undo(self) -> Box | None:
        """Undo the last step (an open stroke is closed first). Returns the box that changed."""
        return self._toggle(self.history.pop_undo)

    def redo(self) -> Box | None:
        """Redo the last undone step. Returns the box that changed."""
        return self._toggle(self.history.pop_redo)

    def _toggle(self, pop: Callable[[], Step | None]) -> Box | None:
        with self._lock:
            while self._stroke_depth:
                self.end_stroke()
            step = pop()
            if step is None:
                return None
            target = self._cur[step.box.slices]
            new = np.bitwise_xor(target, step.diff())
            self._count_change(step.box, target, new)
            target[...] = new
            self._bump()
            self._mark_chunks(step.box)
        self._notify(step.box)
        return step.box
