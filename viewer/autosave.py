"""Autosave of reader edits: a debounced saver plus the storage API. No Qt.

:class:`Autosaver` watches an :class:`~viewer.masks.EditableSegmentation` (through its
``on_change`` callbacks) and writes its state with :func:`save_snapshot` once the edits have paused
for ``delay_s`` (default 0.5 s), and at the latest ``max_delay_s`` (default 2 s) after the first
unsaved change, so a continuous drag is still saved every 2 s. Two ways to drive it:

* ``autosaver.start()`` runs the check in a daemon thread (recommended, also for the GUI: a save
  takes 20-300 ms, which must not block the GUI thread); ``stop()`` flushes pending changes.
  ``on_saved`` / ``on_error`` callbacks then run in that thread (Qt: re-emit as queued signals);
* ``autosaver.maybe_save(now)`` does one check in the caller's thread (a timer; tests).

The storage format, locations, identity check and atomic writes are described in
:mod:`viewer.autosave_store` (re-exported here). "Close asks first": a study or the app may
close silently only when ``seg.has_unsaved_edits`` is False (the edits were exported / saved,
see ``EditableSegmentation.mark_committed``); otherwise ask, and on "discard" call
:meth:`Autosaver.discard`. After a crash, :func:`find_restorable` on reopening tells whether to
offer restoring, :func:`restore` rebuilds the segmentation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from viewer.autosave_store import (
    FORMAT,
    AutosaveError,
    AutosaveInfo,
    AutosaveMismatchError,
    SeriesIdentity,
    ai_digest,
    atomic_write_bytes,
    autosave_dir,
    discard,
    encode_chunks,
    find_restorable,
    list_autosaves,
    remove_stale_temps,
    restore,
    save_snapshot,
)
from viewer.masks import EditableSegmentation
from viewer.masks_geometry import Box

__all__ = [
    "FORMAT",
    "AutosaveError",
    "AutosaveInfo",
    "AutosaveMismatchError",
    "Autosaver",
    "EditSession",
    "SeriesIdentity",
    "ai_digest",
    "atomic_write_bytes",
    "autosave_dir",
    "discard",
    "find_restorable",
    "list_autosaves",
    "restore",
    "save_snapshot",
]

log = logging.getLogger(__name__)


class Autosaver:
    """Debounced autosave of one editable segmentation.

    Parameters
    ----------
    seg : the segmentation to watch (a callback is added to ``seg.on_change``).
    identity : the exact series the edits belong to.
    directory : autosave folder (default :func:`autosave_dir`).
    delay_s : save once edits have paused this long (s).
    max_delay_s : save at the latest this long after the first unsaved change (s).
    stroke_grace_s : while a brush stroke is open (mouse held), wait for its end up to this long
        after the first unsaved change (s), so saves fall on undo-step boundaries.
    clock : monotonic clock in seconds; ``maybe_save(now)`` must use the same clock.
    """

    def __init__(self, seg: EditableSegmentation, identity: SeriesIdentity, *, directory: Path | None = None,
                 delay_s: float = 0.5, max_delay_s: float = 2.0, stroke_grace_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seg = seg
        self.identity = identity
        self.directory = Path(directory) if directory is not None else autosave_dir()
        self.delay_s = float(delay_s)
        self.max_delay_s = max(float(max_delay_s), self.delay_s)
        self.stroke_grace_s = float(stroke_grace_s)
        self._clock = clock
        self._cond = threading.Condition()
        self._save_lock = threading.Lock()
        self._digest: str | None = None
        self._payloads: dict[tuple[int, int, int], bytes] = {}  # compressed diff of every changed chunk
        self._payload_rev = -1  # revision the payloads are complete for (-1: not built yet)
        self.saved_revision = seg.revision  # nothing new to save yet
        self.last_saved_path: Path | None = None
        self.last_error: Exception | None = None
        self.on_saved: list[Callable[[int, Path], None]] = []
        self.on_error: list[Callable[[Exception], None]] = []
        self._first_pending: float | None = None
        self._last_change = 0.0
        self._retry_at = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        seg.on_change.append(self._on_change)

    # ------------------------------------------------------------------ state
    def _on_change(self, box: Box | None) -> None:
        now = self._clock()
        with self._cond:
            self._last_change = now
            if self._first_pending is None:
                self._first_pending = now

    @property
    def pending(self) -> bool:
        """True when the segmentation changed since the last autosave."""
        return self.seg.revision != self.saved_revision

    def due(self, now: float | None = None) -> bool:
        """True when :meth:`maybe_save` would save now."""
        if not self.pending:
            return False
        now = self._clock() if now is None else now
        with self._cond:
            first = self._first_pending if self._first_pending is not None else now
            last = self._last_change
        if now < self._retry_at:
            return False
        return now - last >= self.delay_s or now - first >= self.max_delay_s

    # ------------------------------------------------------------------ saving
    def maybe_save(self, now: float | None = None) -> bool:
        """Save if due (call from a GUI timer). Never raises: errors go to ``on_error``."""
        if not self.due(now):
            return False
        try:
            return self.save_now(force=False) is not None
        except AutosaveError as exc:
            self.last_error = exc
            self._retry_at = self._clock() + max(self.max_delay_s, 1.0)
            log.error("autosave failed: %s", exc)
            for cb in list(self.on_error):
                cb(exc)
            return False

    def save_now(self, *, force: bool = True) -> Path | None:
        """Write the current state now (if anything changed). Raises :class:`AutosaveError`.

        With ``force`` False a save is deferred (returns None) while a brush stroke is open, for
        at most ``stroke_grace_s`` after the first unsaved change, so saves fall on undo-step
        boundaries.
        """
        with self._save_lock:
            if not self.pending:
                return None
            with self.seg.lock:
                if not force and self.seg.in_stroke:
                    first = self._first_pending
                    if first is None or self._clock() - first < self.stroke_grace_s:
                        return None
                # only the chunks changed since the payloads were last brought up to date
                snap = self.seg.snapshot(since_revision=max(self._payload_rev, 0))
            for coord, payload in encode_chunks(snap.chunks).items():
                if payload:
                    self._payloads[coord] = payload
                else:
                    self._payloads.pop(coord, None)
            self._payload_rev = snap.revision
            if self._digest is None:  # first save of this session
                self._digest = ai_digest(self.seg.ai)
                if self.directory.is_dir():
                    remove_stale_temps(self.directory, self.identity)
            t0 = time.perf_counter()
            path = save_snapshot(snap, self.seg.ai, self.identity, directory=self.directory,
                                 digest=self._digest, payloads=self._payloads)
            log.debug("autosaved revision %d in %.0f ms", snap.revision, 1000 * (time.perf_counter() - t0))
            with self._cond:
                self.saved_revision = snap.revision
                self.last_saved_path = path
                self.last_error = None
                if self.seg.revision == snap.revision:
                    self._first_pending = None
                self._cond.notify_all()
        for cb in list(self.on_saved):
            cb(snap.revision, path)
        return path

    def wait_saved(self, revision: int | None = None, timeout: float = 10.0) -> bool:
        """Block until ``revision`` (default: the current one) is autosaved; False on timeout."""
        target = self.seg.revision if revision is None else int(revision)
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.saved_revision < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    # ------------------------------------------------------------------ background thread
    def start(self, poll_s: float = 0.1) -> None:
        """Run :meth:`maybe_save` every ``poll_s`` seconds in a daemon thread (headless use)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(poll_s):
                try:
                    self.maybe_save()
                except Exception as exc:  # keep autosaving whatever happens; report it
                    log.exception("autosave thread: unexpected error")
                    self.last_error = exc
                    self._retry_at = self._clock() + max(self.max_delay_s, 1.0)
                    for cb in list(self.on_error):
                        cb(exc)

        self._thread = threading.Thread(target=loop, name="autosave", daemon=True)
        self._thread.start()

    def stop(self, *, flush: bool = True) -> None:
        """Stop the thread (if started); with ``flush`` save pending changes first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if flush and self.pending:
            self.save_now()

    def close(self, *, flush: bool = True) -> None:
        """Stop and detach from the segmentation."""
        self.stop(flush=flush)
        if self._on_change in self.seg.on_change:
            self.seg.on_change.remove(self._on_change)

    def discard(self) -> bool:
        """Stop without saving and delete this series' autosave (the reader discarded the edits)."""
        self.stop(flush=False)
        with self._save_lock:
            self.saved_revision = self.seg.revision
            return discard(self.identity, directory=self.directory)

    def find_restorable(self) -> AutosaveInfo | None:
        return find_restorable(self.identity, directory=self.directory)


class EditSession:
    """One series' edits as the GUI uses them: the segmentation, its autosaver, the close logic.

    Typical flow (no Qt here; the dialogs belong to ``viewer/qt``)::

        ident = SeriesIdentity.from_volume(volume)
        info = find_restorable(ident)                    # not None -> ask "restore edits from ...?"
        session = EditSession.start(volume, ai_labels, labels, restore_edits=answer)
        session.autosaver.start()                        # autosave in a daemon thread
        ...
        if session.must_ask_before_close: ask "export / discard / cancel"
        session.committed()   # after an export: nothing unsaved, autosave kept up to date
        session.close()       # or session.discard() when the reader throws the edits away
    """

    def __init__(self, seg: EditableSegmentation, autosaver: Autosaver, restored: bool,
                 ai_changed: bool = False) -> None:
        self.seg = seg
        self.autosaver = autosaver
        self.restored = restored
        #: restored edits were made on a different AI result than the one passed to start()
        #: (e.g. another model); provenance stays relative to the AI result they were made on
        self.ai_changed = ai_changed

    @classmethod
    def start(cls, volume: object, ai_labels: object, labels: object = (), *, restore_edits: bool = False,
              reader: str = "", directory: Path | None = None, **autosaver_kwargs: float) -> EditSession:
        """A session on ``volume`` (a :class:`viewer.volume.Volume`) with the AI ``ai_labels``.

        With ``restore_edits`` and an autosave for exactly this series, the saved edits come back
        (the label table, states and reader are the saved ones); otherwise the AI result is the
        starting point and an older autosave of this series is replaced at the first save.
        """
        ident = SeriesIdentity.from_volume(volume)
        image = getattr(volume, "voxels", None)
        seg = None
        if restore_edits and find_restorable(ident, directory=directory) is not None:
            seg = restore(ident, directory=directory, image=image)
            if reader and not seg.reader:
                seg.set_reader(reader)
        restored = seg is not None
        ai_changed = restored and not np.array_equal(seg.ai, ai_labels)  # type: ignore[union-attr]
        if ai_changed:
            log.warning("restored edits were made on a different AI result than the current one")
        if seg is None:
            seg = EditableSegmentation(ai_labels, volume.spacing, labels, image=image,  # type: ignore[arg-type,attr-defined]
                                       reader=reader)
        return cls(seg, Autosaver(seg, ident, directory=directory, **autosaver_kwargs), restored, ai_changed)

    @property
    def must_ask_before_close(self) -> bool:
        """True when closing would drop edits the reader has not exported / saved."""
        return self.seg.has_unsaved_edits

    def committed(self) -> None:
        """The reader exported / saved the edits: nothing is unsaved any more."""
        self.seg.mark_committed()
        self.autosaver.save_now()

    def close(self) -> None:
        """Stop autosaving, flushing pending changes (the autosave stays for a later restore)."""
        self.autosaver.close(flush=True)

    def discard(self) -> None:
        """The reader discarded the edits: stop and delete this series' autosave."""
        self.autosaver.discard()
        self.autosaver.close(flush=False)
