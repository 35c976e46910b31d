"""Snapshots of an editable segmentation for autosave: chunked differences from the AI map.

No Qt. The label map is divided into chunks of ``CHUNK`` = (16, 64, 64) voxels ``[z, y, x]``
(edge chunks are smaller). Every change records, per chunk it touches, the revision at which the
chunk last changed (``_chunk_rev``, a small int64 grid). A snapshot carries, for the chunks
changed after a given revision, ``current XOR ai`` of that chunk (zero where the reader kept the
AI's value). An autosaver keeps the compressed differences of all chunks and asks only for those
changed since its last save, so the time the edits are blocked (the snapshot holds the lock)
and the work per save grow with what changed since the last save, not with the volume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from viewer.masks_geometry import Box
from viewer.masks_labels import EditError, LabelInfo, ReviewState, label_info_from

if TYPE_CHECKING:
    import threading

__all__ = ["CHUNK", "PersistMixin", "Snapshot", "chunk_box", "chunk_grid"]

CHUNK = (16, 64, 64)
Coord = tuple[int, int, int]


def chunk_grid(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Number of chunks along z, y, x for a ``[z, y, x]`` shape."""
    return tuple(-(-int(n) // c) for n, c in zip(shape[:3], CHUNK, strict=True))  # type: ignore[return-value]


def chunk_box(coord: Coord, shape: tuple[int, ...]) -> Box:
    """The voxel box of chunk ``coord`` (clipped at the volume's edge)."""
    (cz, cy, cx), (bz, by, bx) = coord, CHUNK
    return Box(cz * bz, min((cz + 1) * bz, shape[0]), cy * by, min((cy + 1) * by, shape[1]),
               cx * bx, min((cx + 1) * bx, shape[2]))


def _chunk_slices(box: Box) -> tuple[slice, slice, slice]:
    """Slices of the chunk grid covering ``box``."""
    return tuple(slice(lo // c, -(-hi // c)) for (lo, hi), c in  # type: ignore[return-value]
                 zip((box.range(0), box.range(1), box.range(2)), CHUNK, strict=True))


@dataclass
class Snapshot:
    """A consistent copy of the edit state (see ``viewer.autosave``).

    ``chunks`` maps chunk coordinates to ``current XOR ai`` (uint8, the chunk's shape) for every
    chunk changed after ``since_revision`` (0: every chunk ever changed). Chunks not listed are
    unchanged since then; outside ``touched`` the current map equals the AI map.
    """

    revision: int
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    touched: Box | None
    chunks: dict[Coord, np.ndarray]
    since_revision: int
    labels: list[LabelInfo]
    review_state: ReviewState
    reader: str
    created: str
    modified: str
    committed_revision: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class PersistMixin:
    """Chunk bookkeeping, :meth:`snapshot` and :meth:`from_snapshot`."""

    _ai: np.ndarray
    _cur: np.ndarray
    _lock: threading.RLock
    _touched: Box | None
    _revision: int
    _committed_revision: int
    _labels: dict[int, LabelInfo]
    spacing: tuple[float, float, float]
    review_state: ReviewState
    reader: str
    created: str
    modified: str

    if TYPE_CHECKING:
        def recount(self) -> None: ...
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

    def _init_chunks(self) -> None:
        self._chunk_rev = np.zeros(chunk_grid(self._cur.shape), np.int64)

    def _mark_chunks(self, box: Box) -> None:
        """Record that ``box`` changed at the current revision (lock held)."""
        self._chunk_rev[_chunk_slices(box)] = self._revision

    def snapshot(self, since_revision: int = 0) -> Snapshot:
        """The state, with the chunk differences changed after ``since_revision``.

        Holds the lock only while copying those chunks (and the label table).
        """
        with self._lock:
            chunks = {}
            for c in np.argwhere(self._chunk_rev > since_revision):
                coord = (int(c[0]), int(c[1]), int(c[2]))
                sl = chunk_box(coord, self._cur.shape).slices
                chunks[coord] = np.bitwise_xor(self._cur[sl], self._ai[sl])
            return Snapshot(self._revision, self._cur.shape, self.spacing, self._touched, chunks,
                            int(since_revision), [label_info_from(i) for _, i in sorted(self._labels.items())],
                            self.review_state, self.reader, self.created, self.modified,
                            self._committed_revision)

    @classmethod
    def from_snapshot(cls, ai_labels: np.ndarray, snap: Snapshot, *, image: np.ndarray | None = None,
                      **kwargs: Any) -> Any:
        """Rebuild an edit state (without undo history) from the AI map and a full snapshot
        (``since_revision`` 0)."""
        if snap.since_revision != 0:
            raise EditError("a partial snapshot (since_revision > 0) cannot rebuild a segmentation")
        seg = cls(ai_labels, snap.spacing, snap.labels, image=image, reader=snap.reader, **kwargs)
        shape = seg._cur.shape
        if shape != tuple(snap.shape):
            raise EditError(f"saved edits are for a {tuple(snap.shape)} label map, this one is {shape}")
        grid = chunk_grid(shape)
        for coord, diff in snap.chunks.items():
            if not all(0 <= c < g for c, g in zip(coord, grid, strict=True)):
                raise EditError(f"saved edit chunk {coord} is outside the {grid} chunk grid")
            sl = chunk_box(coord, shape).slices
            if diff.shape != seg._cur[sl].shape:
                raise EditError(f"saved edit chunk {coord} has shape {diff.shape}, expected {seg._cur[sl].shape}")
            seg._cur[sl] = np.bitwise_xor(seg._ai[sl], diff)
            seg._chunk_rev[coord] = max(int(snap.revision), 1)
        seg._touched = snap.touched
        seg.recount()
        seg.review_state = ReviewState(snap.review_state)
        seg.created, seg.modified = snap.created, snap.modified
        seg._revision = int(snap.revision)
        seg._committed_revision = int(snap.committed_revision)
        return seg

