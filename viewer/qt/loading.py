"""Scan → studies → load a stack, in workers, with progress, Cancel and an early first image."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from viewer.display import auto_window, window_to_uint8
from viewer.errors import DicomError
from viewer.qt.settings import add_recent
from viewer.qt.workers import Job

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.main_window import MainWindow

__all__ = ["Loader", "stack_thumbnails"]

log = logging.getLogger(__name__)
THUMB = 48
CACHE_SIZE = 3


def stack_thumbnails(stacks: list[Any], *, progress=None, cancel=None) -> dict[str, np.ndarray]:
    """Middle frame of each stack, windowed and shrunk to ``THUMB`` px (uint8 gray or RGB)."""
    import cv2

    from inference.jobs import check_cancel, report
    from viewer.dicom.decode import iter_stored_frames

    out: dict[str, np.ndarray] = {}
    for i, stack in enumerate(stacks):
        check_cancel(cancel)
        fr = stack.frames[len(stack.frames) // 2]
        try:
            arr = next(iter(iter_stored_frames(fr.file, [fr.frame])))
        except Exception as exc:  # noqa: BLE001 - a missing thumbnail is not an error
            log.debug("no thumbnail for a stack: %s", type(exc).__name__)
            continue
        if arr.ndim == 2:
            vals = arr.astype(np.float32) * np.float32(fr.slope) + np.float32(fr.intercept)
            if fr.windows:
                c, w = fr.windows[0][:2]
            else:
                c, w = auto_window(vals)
            img = window_to_uint8(vals, c, w, invert=fr.file.photometric == "MONOCHROME1")
        else:
            img = np.ascontiguousarray(arr[..., :3]).astype(np.uint8)
        h, w_ = img.shape[:2]
        s = THUMB / max(h, w_)
        out[stack.stack_id] = cv2.resize(
            img, (max(1, round(w_ * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA
        )
        report(progress, i + 1, len(stacks), "thumbnails")
    return out


class Loader(QObject):
    """Owns the scan/load jobs of one main window ("latest request wins")."""

    _first = Signal(object, int, object)  # (job token, index, plane) from the worker thread

    def __init__(self, win: MainWindow):
        super().__init__(win)
        self.win = win
        self.scan_result: Any = None
        self.current_job: Job | None = None
        self.cache: OrderedDict[str, Any] = OrderedDict()
        self._first.connect(self._on_first_slice)
        win.cancel_button.clicked.connect(self.cancel)

    def cancel(self) -> None:
        self.win.runner.cancel_all("scan")
        self.win.runner.cancel_all("load")

    # ------------------------------------------------------------------ scan
    def open_path(self, path: str, *, stack_key: str | None = None) -> Job:
        from viewer.dicom.scan import scan

        self.win.runner.cancel_all("load")
        self.win.message(f"Scanning {path} …", 0)
        job = self.win.runner.submit(
            lambda progress, cancel: scan(path, progress=progress, cancel=cancel),
            name="scan",
            key="scan",
        )
        self._wire(job, "Scanning")
        job.result.connect(lambda res: self._scanned(res, path, stack_key))
        return job

    def _scanned(self, result: Any, path: str, stack_key: str | None) -> None:
        self.scan_result = result
        self.cache.clear()
        recent = add_recent(self.win.settings, path)
        self.win.actions_by_name["_recent_refresh"](recent)
        self.win.browser.set_result(result, hide_identity=self.win.state.hide_identity)
        self.win.scan_finished.emit(result)
        stacks = result.stacks
        if not stacks:
            reasons = "\n".join(f"{s.path}: {s.reason}" for s in result.skipped[:200])
            self.win.errors.present(
                DicomError(
                    f"No loadable DICOM images in {path} ({len(result.skipped)} file(s) skipped; "
                    "the Studies panel lists each file with its reason)."
                ),
                title="Nothing to open",
                details=reasons or "No files found.",
            )
            return
        chosen = result.find(stack_key) if stack_key else []
        stack = chosen[0] if chosen else max(stacks, key=lambda s: s.image_count)
        self.win.message(
            f"Found {len(stacks)} series/stack(s), {len(result.skipped)} file(s) skipped", 8000
        )
        thumbs = self.win.runner.submit(
            lambda progress, cancel: stack_thumbnails(stacks, cancel=cancel),
            name="thumbnails",
            key="thumbnails",
        )
        thumbs.result.connect(self._thumbnails)
        self.load_stack(stack)

    def _thumbnails(self, images: dict[str, np.ndarray]) -> None:
        for sid, img in images.items():
            self.win.browser.set_thumbnail(sid, img)

    # ------------------------------------------------------------------ load
    def load_stack(self, stack: Any) -> Job | None:
        """Load ``stack`` in a worker (cached volumes come back at once)."""
        self.win.browser.select_stack(stack.stack_id)
        if stack.stack_id in self.cache:
            self.cache.move_to_end(stack.stack_id)
            self.win.set_volume(self.cache[stack.stack_id], stack.stack_id)
            return None
        from viewer.dicom.load import load_stack

        holder: dict[str, Any] = {}

        def first(index: int, plane: np.ndarray) -> None:
            self._first.emit(holder.get("token"), int(index), plane)

        def fn(progress, cancel):
            return load_stack(stack, progress=progress, cancel=cancel, first_slice_callback=first)

        job = self.win.runner.submit(fn, name="load", key="load")
        holder["token"] = job.token
        self.current_job = job
        self.win.message(f"Loading {stack.image_count} image(s) …", 0)
        self._wire(job, "Loading")
        job.result.connect(lambda vol, sid=stack.stack_id: self._loaded(vol, sid))
        return job

    def _on_first_slice(self, token: Any, index: int, plane: np.ndarray) -> None:
        """Show the first decoded slice (the middle one) while the rest of the series loads."""
        job = self.current_job
        if job is None or token is not job.token or job.state not in ("pending", "running"):
            return  # a stale callback from a load that was replaced or cancelled
        if self.win.state.volume is not None:
            self.win.state.set_volume(None)
        if plane.ndim == 2:
            self.win.state.set_window(*auto_window(plane))
        if self.win.state.layout == "1x1":
            self.win.state.set_layout(active_axis=0)
        self.win.grid.views[0].set_preview(plane, "")

    def _loaded(self, volume: Any, stack_id: str) -> None:
        self.cache[stack_id] = volume
        while len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)
        self.win.set_volume(volume, stack_id)
        nz, ny, nx = volume.shape
        self.win.message(
            f"Loaded {nx}x{ny}x{nz}"
            + (f" — {len(volume.warnings)} warning(s)" if volume.warnings else ""),
            8000,
        )
        self.win.browser.add_warnings(stack_id, list(volume.warnings))

    # ------------------------------------------------------------------ common wiring
    def _wire(self, job: Job, what: str) -> None:
        job.progress.connect(lambda d, t, m: self._progress(d, t, m or what))
        job.error.connect(
            lambda exc, tb: self.win.errors.present(exc, title=f"{what} failed", details=tb)
        )
        job.cancelled.connect(lambda: self.win.message(f"{what} cancelled", 5000))
        job.finished.connect(self._maybe_hide_progress)

    def _progress(self, done: int, total: int, message: str) -> None:
        self.win.show_progress(done, total, message)
        view = self.win.grid.views[0]
        if view.geom is None and view._preview is not None:
            view.preview_text = f"Loading {done}/{total} …"
            view.update()

    def _maybe_hide_progress(self) -> None:
        if not any(
            j.key in ("scan", "load") and j.state in ("pending", "running")
            for j in self.win.runner.jobs()
        ):
            self.win.hide_progress()
