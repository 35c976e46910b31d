"""Provenance and AI-vs-final statistics of an editable segmentation (mixed in; no Qt).

Definitions, for label ``L`` (``ai`` the AI proposal, ``cur`` the edited map):

* kept (as the AI proposed): ``ai == L & cur == L``
* added by the reader: ``cur == L & ai != L``
* removed by the reader: ``ai == L & cur != L``
* AI volume = kept + removed; final volume = kept + added (voxels, or mL with the spacing).

A voxel relabelled from ``A`` to ``B`` counts as removed from ``A`` and added to ``B``.

The counts are maintained incrementally: one histogram of the AI map at start (cv2.calcHist in
exact chunks, ~50 ms for 300x512x512), then every edit, undo and redo updates them from the
voxels it changed only, so statistics cost O(256) whatever the volume or the number of edits.
``recount()`` recomputes them from the arrays (over the touched box) as a check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from viewer.masks_geometry import Box, plane_view
from viewer.masks_labels import LabelInfo, Provenance

if TYPE_CHECKING:
    import threading

__all__ = ["LabelStats", "StatsMixin", "hist_u8", "provenance_codes"]


@dataclass(frozen=True)
class LabelStats:
    """AI vs final figures for one label (voxel counts, volumes in mL)."""

    value: int
    name: str
    source: str
    decision: str
    ai_voxels: int
    final_voxels: int
    kept_voxels: int
    added_voxels: int
    removed_voxels: int
    ai_ml: float
    final_ml: float
    added_ml: float
    removed_ml: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def provenance_codes(ai: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Per-voxel :class:`Provenance` codes (uint8) of two equally shaped label arrays."""
    code = np.where(ai == 0, np.uint8(Provenance.ADDED),
                    np.where(cur == 0, np.uint8(Provenance.REMOVED), np.uint8(Provenance.RELABELLED)))
    return np.where(ai == cur, np.uint8(Provenance.AS_AI), code).astype(np.uint8)


def hist_u8(arr: np.ndarray) -> np.ndarray:
    """Exact count of each value 0..255 of a uint8 array (int64 [256])."""
    flat = np.ascontiguousarray(arr, dtype=np.uint8).reshape(-1)
    if flat.size < (1 << 16):
        return np.bincount(flat, minlength=256).astype(np.int64)
    out = np.zeros(256, np.int64)
    step = 1 << 22  # float32 histogram bins stay exact below 2**24 counts
    for i in range(0, flat.size, step):
        chunk = flat[i:i + step].reshape(1, -1)
        out += cv2.calcHist([chunk], [0], None, [256], [0, 256]).reshape(-1).astype(np.int64)
    return out


def _kept_hist(ai: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Per value L, the voxels with ``ai == cur == L``."""
    eq = ai == cur
    h = hist_u8(np.where(eq, ai, np.uint8(0)))
    h[0] -= eq.size - int(np.count_nonzero(eq))  # not the zeros put in for unequal voxels
    return h


class StatsMixin:
    """AI-vs-final counters, kept up to date from the changed voxels of each edit."""

    _ai: np.ndarray
    _cur: np.ndarray
    _lock: threading.RLock
    _touched: Box | None
    _labels: dict[int, LabelInfo]
    voxel_ml: float

    def _init_counts(self) -> None:
        """Counters for ``current == ai`` (call once the arrays are set, then ``recount`` if not)."""
        self._ai_counts = hist_u8(self._ai)
        self._cur_counts = self._ai_counts.copy()
        self._kept_counts = self._ai_counts.copy()
        self._prov_counts = np.zeros(4, np.int64)

    def _count_change(self, box: Box, old: np.ndarray, new: np.ndarray) -> None:
        """Update the counters for ``current[box]`` going from ``old`` to ``new`` (changed voxels only)."""
        ch = old != new
        a, o, n = self._ai[box.slices][ch], old[ch], new[ch]
        self._cur_counts += hist_u8(n) - hist_u8(o)
        self._kept_counts += hist_u8(a[a == n]) - hist_u8(a[a == o])
        self._prov_counts += hist_u8(provenance_codes(a, n))[:4] - hist_u8(provenance_codes(a, o))[:4]

    def recount(self) -> None:
        """Recompute every counter from the arrays (only the touched box can differ from the AI)."""
        with self._lock:
            self._init_counts()
            t = self._touched
            if t is None:
                return
            a = self._ai[t.slices]
            c = self._cur[t.slices]
            ai_t = hist_u8(a)
            self._cur_counts += hist_u8(c) - ai_t
            self._kept_counts += _kept_hist(a, c) - ai_t
            self._prov_counts = hist_u8(provenance_codes(a, c))[:4]
            self._prov_counts[0] = 0

    def ai_counts(self) -> np.ndarray:
        """Voxel count of each value 0..255 in the AI map."""
        return self._ai_counts.copy()

    def current_counts(self) -> np.ndarray:
        """Voxel count of each value 0..255 in the edited map."""
        return self._cur_counts.copy()

    def label_stats(self) -> list[LabelStats]:
        """One :class:`LabelStats` per label of the table, plus any unlisted value present."""
        with self._lock:
            ai, final, kept = self._ai_counts.copy(), self._cur_counts.copy(), self._kept_counts.copy()
            labels = dict(self._labels)
        present = set(np.flatnonzero(ai[1:] + final[1:]) + 1)
        out = []
        ml = self.voxel_ml
        for v in sorted(set(labels) | {int(x) for x in present}):
            info = labels.get(v, LabelInfo(v, f"label {v}", (255, 255, 255)))
            added = int(final[v] - kept[v])
            removed = int(ai[v] - kept[v])
            out.append(LabelStats(v, info.name, str(info.source), str(info.decision), int(ai[v]),
                                  int(final[v]), int(kept[v]), added, removed,
                                  float(ai[v]) * ml, float(final[v]) * ml, added * ml, removed * ml))
        return out

    def provenance_counts(self) -> dict[str, int]:
        """Voxels per provenance class over the whole series (``as_ai`` includes background)."""
        with self._lock:
            prov = self._prov_counts.copy()
            n = int(self._cur.size)
        counts = {name: int(prov[i]) for i, name in enumerate(Provenance.NAMES)}
        counts["as_ai"] = n - counts["added"] - counts["removed"] - counts["relabelled"]
        return counts

    def provenance_plane(self, axis: int, index: int) -> np.ndarray:
        """Per-pixel :class:`Provenance` codes of one slice (uint8 [rows, cols]), for overlays."""
        with self._lock:
            return provenance_codes(plane_view(self._ai, axis, index), plane_view(self._cur, axis, index))

    def provenance_map(self, box: Box | None = None) -> np.ndarray:
        """Per-voxel :class:`Provenance` codes in ``box`` (default: the whole series)."""
        box = box or Box.full(self._cur.shape)
        with self._lock:
            return provenance_codes(self._ai[box.slices], self._cur[box.slices])
