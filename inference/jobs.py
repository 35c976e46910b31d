"""The job protocol (DESIGN.md rule 3), shared by viewer and inference (which cannot import viewer). No Qt.

A job function takes keyword arguments ``progress`` and ``cancel``::

    def load(..., progress: Progress | None = None, cancel: CancelCheck | None = None) -> ...

``progress(done, total, message)`` is called per slice/batch; ``cancel()`` is polled between steps
and when it returns True the job raises :class:`viewer.errors.Cancelled`.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress", "CancelCheck", "check_cancel", "report", "CancelToken", "Cancelled"]


class Cancelled(Exception):  # noqa: N818 - cancel is not an error
    """Raised inside a job when its ``cancel`` callback returned True."""


Progress = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]


def check_cancel(cancel: CancelCheck | None) -> None:
    if cancel is not None and cancel():
        raise Cancelled()


def report(progress: Progress | None, done: int, total: int, message: str = "") -> None:
    if progress is not None:
        progress(done, total, message)


class CancelToken:
    """A thread-safe cancel flag that is also a ``CancelCheck`` callable."""

    def __init__(self) -> None:
        import threading

        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()
