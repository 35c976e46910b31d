"""Run job functions off the GUI thread (DESIGN.md rule 3).

A job is any callable ``fn(*, progress, cancel)`` (bind other arguments with a lambda or
``functools.partial``). :class:`JobRunner` runs it on a Python thread and reports back through Qt
signals, which Qt delivers on the GUI thread (queued connection), so slots may touch widgets;
the job itself never does.

"Latest request wins": jobs submitted with the same ``key`` cancel the previous one, whose
result is then dropped (it reports ``cancelled`` instead).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from inference.jobs import Cancelled, CancelToken

__all__ = ["Job", "JobRunner"]

log = logging.getLogger(__name__)


class Job(QObject):
    """One submitted job. Signals arrive on the GUI thread.

    Signals
    -------
    progress(done, total, message)
    result(object)
    error(exc, traceback_text)
    cancelled()
    finished()   always last
    """

    progress = Signal(int, int, str)
    result = Signal(object)
    error = Signal(object, str)
    cancelled = Signal()
    finished = Signal()
    # internal: emitted from the worker thread, re-emitted from the GUI thread
    _done = Signal(str, object, str)

    def __init__(
        self, name: str, fn: Callable[..., Any], key: str | None, parent: QObject | None = None
    ):
        super().__init__(parent)
        self.name = name
        self.key = key
        self.token = CancelToken()
        self.started_at = time.monotonic()
        self.state = "pending"  # pending | running | done | error | cancelled
        self.value: Any = None
        self._fn = fn
        self._thread: threading.Thread | None = None
        self._last_progress = 0.0
        self.silenced = False  # set by JobRunner.shutdown: nothing is delivered to (closed) widgets
        self._done.connect(self._on_done)

    # ------------------------------------------------------------------ API
    def cancel(self) -> None:
        """Ask the job to stop (it raises ``Cancelled`` at its next check)."""
        self.token.cancel()

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Join the thread (True when it ended). Does not process Qt events."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ------------------------------------------------------------------ worker side
    def _progress(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        # at most ~50 updates per second reach the GUI, but always the last one
        if done >= total or now - self._last_progress >= 0.02:
            self._last_progress = now
            self.progress.emit(int(done), int(total), str(message))

    def _run(self) -> None:
        self.state = "running"
        try:
            value = self._fn(progress=self._progress, cancel=self.token)
        except Cancelled:
            self._done.emit("cancelled", None, "")
        except BaseException as exc:  # noqa: BLE001 - every failure goes to the error presenter
            tb = "".join(traceback.format_exception(exc))
            if self.token.cancelled:
                self._done.emit("cancelled", None, "")
            else:
                self._done.emit("error", exc, tb)
        else:
            self._done.emit("cancelled" if self.token.cancelled else "done", value, "")

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"job-{self.name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ GUI side
    def _on_done(self, state: str, value: object, tb: str) -> None:
        self.state = state
        if self.silenced:
            return
        if state == "done":
            self.value = value
            self.result.emit(value)
        elif state == "error":
            self.error.emit(value, tb)
        else:
            self.cancelled.emit()
        self.finished.emit()


class JobRunner(QObject):
    """Starts jobs on worker threads and keeps track of them until they finish.

    Signals
    -------
    busy(bool)  True while at least one job runs
    """

    busy = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._jobs: list[Job] = []
        self._closed = False

    def submit(self, fn: Callable[..., Any], *, name: str = "job", key: str | None = None) -> Job:
        """Start ``fn(progress=..., cancel=...)`` on a worker thread; return its :class:`Job`.

        Connect to the job's signals right after this call: results are delivered through the
        event loop, so nothing is missed.
        """
        if self._closed:
            log.debug("job %s submitted after shutdown; not started", name)
            job = Job(name, fn, key)
            job.silenced, job.state = True, "cancelled"
            return job
        if key is not None:
            for old in self._jobs:
                if old.key == key:
                    old.cancel()
        was_busy = self.active() > 0
        job = Job(
            name, fn, key
        )  # Python-owned: deleting the runner never leaves a queued call dangling
        self._jobs.append(job)
        job.finished.connect(lambda j=job: self._forget(j))
        job._start()
        if not was_busy:
            self.busy.emit(True)
        return job

    def _forget(self, job: Job) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
            job.wait(1.0)
            job.deleteLater()
        if not self._jobs:
            self.busy.emit(False)

    def active(self) -> int:
        return sum(1 for j in self._jobs if j.state in ("pending", "running"))

    def jobs(self) -> list[Job]:
        return list(self._jobs)

    def cancel_all(self, key: str | None = None) -> None:
        for j in self._jobs:
            if key is None or j.key == key:
                j.cancel()

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Cancel every job and join their threads (call on close). True if all ended.

        Afterwards no job signal is delivered any more (the widgets may be gone) and
        :meth:`submit` starts nothing."""
        self._closed = True
        for j in self._jobs:
            j.silenced = True
        self.cancel_all()
        deadline = time.monotonic() + timeout
        ok = True
        for j in list(self._jobs):
            left = max(0.0, deadline - time.monotonic())
            if not j.wait(left):
                log.warning("job %s did not stop within %.1f s", j.name, timeout)
                ok = False
        return ok

    def threads_alive(self) -> int:
        return sum(1 for j in self._jobs if j.is_running)


def wire(
    job: Job,
    *,
    errors: Any,
    title: str,
    progress: Callable[[int, int, str], Any] | None = None,
    result: Callable[[Any], Any] | None = None,
    cancelled: Callable[[], Any] | None = None,
    finished: Callable[[], Any] | None = None,
) -> Job:
    """Connect a job's signals in one call; its errors go to the one presenter (``errors``)
    under ``title`` with the traceback behind Details (DESIGN.md rule 5)."""
    if progress is not None:
        job.progress.connect(progress)
    if result is not None:
        job.result.connect(result)
    job.error.connect(lambda exc, tb: errors.present(exc, title=title, details=tb))
    if cancelled is not None:
        job.cancelled.connect(cancelled)
    if finished is not None:
        job.finished.connect(finished)
    return job


class JobPanel:
    """Mixin for a dock that runs one job at a time: it sets ``self.job`` (a :class:`Job` or
    None), has a ``self.progress`` bar, ``self.win`` (runner + error presenter), a
    ``_progress(done, total, message)`` slot and ``_update_buttons()``; this gives it
    ``_start()`` (submit + wire + busy bar), ``cancel()``, the bar update and the end-of-job reset."""

    job: Job | None
    progress: Any  # QProgressBar
    win: Any  # MainWindow: .runner, .errors

    def _progress(self, done: int, total: int, message: str) -> None:
        self._show_progress(done, total)

    def _update_buttons(self) -> None:
        pass

    def _start(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        key: str,
        title: str,
        result: Callable[[Any], None],
        cancelled: Callable[[], None],
        finished: Callable[[], None] | None = None,
    ) -> Job:
        """Submit ``fn`` to the window's runner as ``self.job``, wire its signals (errors go to the
        window's presenter under ``title``), show a busy bar and refresh the buttons."""
        self.job = job = self.win.runner.submit(fn, name=name, key=key)
        self.progress.setRange(0, 0)
        wire(
            job,
            errors=self.win.errors,
            title=title,
            progress=self._progress,
            result=result,
            cancelled=cancelled,
            finished=finished if finished is not None else (lambda: self._job_finished(job)),
        )
        self._update_buttons()
        return job

    def _job_finished(self, job: Job) -> None:
        """Forget ``job`` if it is still the current one: full bar when done, empty otherwise."""
        if self.job is job:
            self.job = None
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if job.state == "done" else 0)
        self._update_buttons()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
