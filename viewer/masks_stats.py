"""Provenance and AI-vs-final statistics of an editable segmentation (mixed in; no Qt).

Definitions, for label ``L`` (``ai`` the AI proposal, ``cur`` the edited map):

* kept (as the AI proposed): ``ai == L & cur == L``
* added by the reader: ``cur == L & ai != L``
* removed by the reader: ``ai == L & cur != L``
* AI volume = kept + removed; final volume = kept + added (voxels, or mL with the spacing).

A voxel relabelled from ``A`` to ``B`` counts as removed from ``A`` and added to ``B``. Only the
``touched`` box can differ from the AI map, so every count scans that box plus one cached
``bincount`` of the AI map.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from viewer.masks_geometry import Box, plane_view
from viewer.masks_labels import LabelInfo, Provenance

if TYPE_CHECKING:
    import threading

__all__ = ["LabelStats", "StatsMixin", "provenance_codes"]


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


class StatsMixin:
    """Statistics over ``_ai`` / ``_cur`` restricted to the ``_touched`` box."""

    _ai: np.ndarray
    _cur: np.ndarray
    _lock: threading.RLock
    _touched: Box | None
    _ai_counts: np.ndarray | None
    _labels: dict[int, LabelInfo]
    voxel_ml: float

    def ai_counts(self) -> np.ndarray:
        """Voxel count of each value 0..255 in the AI map (computed once)."""
        if self._ai_counts is None:
            self._ai_counts = np.bincount(self._ai.reshape(-1), minlength=256)
        return self._ai_counts

    def _touched_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ai counts in touched box, current counts there, kept counts there, provenance counts)."""
        zero = np.zeros(256, np.int64)
        t = self._touched
        if t is None:
            return zero, zero.copy(), zero.copy(), np.zeros(4, np.int64)
        a = self._ai[t.slices].reshape(-1)
        c = self._cur[t.slices].reshape(-1)
        eq = a == c
        ai_t = np.bincount(a, minlength=256)
        cur_t = np.bincount(c, minlength=256)
        kept_t = np.bincount(a[eq], minlength=256)
        prov = np.bincount(provenance_codes(a, c), minlength=4)
        return ai_t, cur_t, kept_t, prov

    def label_stats(self) -> list[LabelStats]:
        """One :class:`LabelStats` per label of the table, plus any unlisted value present."""
        with self._lock:
            total_ai = self.ai_counts()
            ai_t, cur_t, kept_t, _ = self._touched_counts()
            labels = dict(self._labels)
        final = total_ai - ai_t + cur_t
        present = set(np.flatnonzero(total_ai[1:] + final[1:]) + 1)
        out = []
        ml = self.voxel_ml
        for v in sorted(set(labels) | {int(x) for x in present}):
            info = labels.get(v, LabelInfo(v, f"label {v}", (255, 255, 255)))
            added = int(cur_t[v] - kept_t[v])
            removed = int(ai_t[v] - kept_t[v])
            out.append(LabelStats(v, info.name, str(info.source), str(info.decision), int(total_ai[v]),
                                  int(final[v]), int(total_ai[v]) - removed, added, removed,
                                  float(total_ai[v]) * ml, float(final[v]) * ml, added * ml, removed * ml))
        return out

    def provenance_counts(self) -> dict[str, int]:
        """Voxels per provenance class over the whole series (``as_ai`` includes background)."""
        with self._lock:
            _, _, _, prov = self._touched_counts()
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
