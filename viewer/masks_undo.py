"""Undo / redo history of label-map edits that stores only what changed, within a memory bound.

No Qt. Each step is the *XOR difference* between the label values before and after the edit,
restricted to the tight box of changed voxels, then compressed. XOR makes a step its own inverse:
undo and redo both apply ``region ^= diff``, so one payload serves both directions and the stored
bytes do not double when a step moves to the redo stack. Undo/redo are exact as long as steps are
applied in stack order (which the history guarantees).

Codecs (measured in ``bench/bench_edit.py``):

* ``"zlib"``: ``zlib.compress(diff.tobytes(), 1)``. Diffs are mostly zeros (the box around a
  brush circle, a cleared label), which deflate shrinks 20-1000x at level 1.
* ``"sparse"``: ``uint32`` flat indices of the changed voxels + their ``uint8`` diff values
  (5 bytes per changed voxel; fast for a few voxels, large for big edits).

Memory bound: the sum of ``Step.nbytes`` (payload + a fixed per-step overhead of
``STEP_OVERHEAD`` bytes) over the undo and redo stacks never exceeds ``max_bytes``, and there are
never more than ``max_steps`` steps. When a new step would exceed either, the *oldest* steps are
dropped and a notice is given; a single step larger than ``max_bytes`` is not kept at all (that
edit cannot be undone, and the notice says so).
"""

from __future__ import annotations

import logging
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from viewer.masks_geometry import Box

__all__ = ["CODECS", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_STEPS", "STEP_OVERHEAD", "Step", "UndoHistory",
           "decode_diff", "encode_diff"]

log = logging.getLogger(__name__)

CODECS = ("zlib", "sparse")
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # 64 MiB of undo + redo history
DEFAULT_MAX_STEPS = 2000
STEP_OVERHEAD = 256  # bytes accounted per step for the Python objects around the payload


def encode_diff(diff: np.ndarray, codec: str = "zlib") -> bytes:
    """Compress a uint8 XOR difference array (any shape, C order) with ``codec``."""
    flat = np.ascontiguousarray(diff, dtype=np.uint8).reshape(-1)
    if codec == "zlib":
        return zlib.compress(flat.tobytes(), 1)
    if codec == "sparse":
        idx = np.flatnonzero(flat).astype(np.uint32)
        return idx.tobytes() + flat[idx].tobytes()
    raise ValueError(f"undo codec must be one of {CODECS}, got {codec!r}")


def decode_diff(payload: bytes, shape: tuple[int, ...], codec: str = "zlib") -> np.ndarray:
    """Inverse of :func:`encode_diff`: the uint8 difference array of ``shape``."""
    n = int(np.prod(shape))
    if codec == "zlib":
        return np.frombuffer(zlib.decompress(payload), dtype=np.uint8).reshape(shape)
    if codec == "sparse":
        k = len(payload) // 5
        idx = np.frombuffer(payload, dtype=np.uint32, count=k)
        vals = np.frombuffer(payload, dtype=np.uint8, offset=4 * k, count=k)
        out = np.zeros(n, dtype=np.uint8)
        out[idx] = vals
        return out.reshape(shape)
    raise ValueError(f"undo codec must be one of {CODECS}, got {codec!r}")


@dataclass(frozen=True)
class Step:
    """One undoable edit: the XOR difference of the voxels in ``box``, compressed."""

    name: str
    box: Box
    payload: bytes
    codec: str
    changed: int  # number of voxels the edit changed

    @classmethod
    def from_diff(cls, name: str, box: Box, diff: np.ndarray, codec: str = "zlib") -> Step:
        return cls(name, box, encode_diff(diff, codec), codec, int(np.count_nonzero(diff)))

    @property
    def nbytes(self) -> int:
        """Bytes this step is accounted for in the memory bound."""
        return len(self.payload) + STEP_OVERHEAD

    def diff(self) -> np.ndarray:
        return decode_diff(self.payload, self.box.shape, self.codec)

    def apply(self, labels: np.ndarray) -> None:
        """Toggle this step on ``labels`` in place (undo when applied, redo when undone)."""
        np.bitwise_xor(labels[self.box.slices], self.diff(), out=labels[self.box.slices])


class UndoHistory:
    """Bounded undo/redo stacks of :class:`Step`.

    Parameters
    ----------
    max_bytes : bound on the bytes held by undo + redo steps (see module docstring).
    max_steps : bound on the number of steps held.
    on_notice : called with a human-readable message when steps are dropped.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_steps: int = DEFAULT_MAX_STEPS,
                 on_notice: Callable[[str], None] | None = None) -> None:
        if max_bytes <= STEP_OVERHEAD or max_steps < 1:
            raise ValueError(f"undo bound too small: max_bytes={max_bytes}, max_steps={max_steps}")
        self.max_bytes = int(max_bytes)
        self.max_steps = int(max_steps)
        self.on_notice = on_notice
        self._undo: deque[Step] = deque()
        self._redo: list[Step] = []
        self._bytes = 0
        self.dropped = 0  # steps dropped so far because of the bound

    # ------------------------------------------------------------------ state
    @property
    def nbytes(self) -> int:
        """Bytes currently held (undo + redo), always <= ``max_bytes``."""
        return self._bytes

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def __len__(self) -> int:
        return len(self._undo)

    def undo_names(self) -> list[str]:
        """Names of the undoable steps, most recent last (for an Edit menu)."""
        return [s.name for s in self._undo]

    def redo_names(self) -> list[str]:
        return [s.name for s in reversed(self._redo)]

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._bytes = 0

    # ------------------------------------------------------------------ operations
    def push(self, step: Step) -> None:
        """Record a new edit; clears the redo stack and enforces the bound."""
        self._bytes -= sum(s.nbytes for s in self._redo)
        self._redo.clear()
        if step.nbytes > self.max_bytes:
            self._notice(f"the edit '{step.name}' needs {step.nbytes / 2**20:.1f} MiB of undo history, "
                         f"more than the {self.max_bytes / 2**20:.0f} MiB limit: it cannot be undone")
            self.dropped += len(self._undo)
            self.clear()
            return
        self._undo.append(step)
        self._bytes += step.nbytes
        dropped = 0
        while self._bytes > self.max_bytes or len(self._undo) > self.max_steps:
            old = self._undo.popleft()
            self._bytes -= old.nbytes
            dropped += 1
        if dropped:
            self.dropped += dropped
            self._notice(f"undo history limit reached ({self.max_bytes / 2**20:.0f} MiB, "
                         f"{self.max_steps} steps): the {dropped} oldest step(s) can no longer be undone")

    def pop_undo(self) -> Step | None:
        """The most recent step, moved to the redo stack (caller applies it)."""
        if not self._undo:
            return None
        step = self._undo.pop()
        self._redo.append(step)
        return step

    def pop_redo(self) -> Step | None:
        """The most recently undone step, moved back to the undo stack (caller applies it)."""
        if not self._redo:
            return None
        step = self._redo.pop()
        self._undo.append(step)
        return step

    def _notice(self, msg: str) -> None:
        log.info("undo: %s", msg)
        if self.on_notice is not None:
            self.on_notice(msg)
