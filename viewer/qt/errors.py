"""The one place that shows errors to the user (DESIGN.md rule 5).

Every failure — from a worker, a slot, or an unhandled exception — goes through
:meth:`ErrorPresenter.present`: a short message (the typed error's text, which names the
file/tag/value and the fix) with the traceback behind "Show Details...". In recording mode (tests)
nothing is shown; the reports are appended to :attr:`ErrorPresenter.records`.
"""

from __future__ import annotations

import logging
import sys
import traceback
from dataclasses import dataclass
from types import TracebackType

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from inference.jobs import Cancelled
from viewer.errors import is_user_error

__all__ = ["ErrorPresenter", "ErrorRecord", "short_message"]

log = logging.getLogger(__name__)


@dataclass
class ErrorRecord:
    title: str
    message: str
    details: str
    exception: BaseException | None


def short_message(exc: BaseException) -> str:
    """What the user reads first: the typed error's own text, or the type for internal errors."""
    if is_user_error(exc):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "Out of memory. Close other series or applications and try again."
    return (
        f"Internal error ({type(exc).__name__}): {exc}. "
        "Details show the traceback for a bug report."
    )


class ErrorPresenter(QObject):
    """Shows (or records) errors. ``presented(record)`` is emitted for each one."""

    presented = Signal(object)

    def __init__(self, parent_widget: QWidget | None = None, *, recording: bool = False):
        super().__init__()
        self.parent_widget = parent_widget
        self.recording = recording
        self.records: list[ErrorRecord] = []
        self._old_hook = None

    def present(
        self,
        error: BaseException | str,
        *,
        title: str = "Error",
        details: str | None = None,
    ) -> ErrorRecord | None:
        """Show a short message with details. ``Cancelled`` is not an error and is ignored."""
        if isinstance(error, Cancelled):
            return None
        if isinstance(error, BaseException):
            message = short_message(error)
            if details is None:
                details = "".join(traceback.format_exception(error))
            exc: BaseException | None = error
        else:
            message, exc = str(error), None
        rec = ErrorRecord(title, message, details or "", exc)
        self.records.append(rec)
        # no patient data in logs: the message may contain a file path but not header values
        log.warning("%s: %s", title, type(exc).__name__ if exc else "message")
        self.presented.emit(rec)
        if not self.recording:
            box = QMessageBox(self.parent_widget)
            box.setIcon(QMessageBox.Icon.Warning)
            box.setWindowTitle(title)
            box.setText(message)
            if rec.details:
                box.setDetailedText(rec.details)
            box.exec()
        return rec

    # ------------------------------------------------------------------ unhandled exceptions
    def install_excepthook(self) -> None:
        """Route exceptions escaping Qt slots (GUI thread) to :meth:`present`."""
        self._old_hook = sys.excepthook

        def hook(tp: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
            details = "".join(traceback.format_exception(tp, value, tb))
            try:
                self.present(value, title="Unexpected error", details=details)
            except Exception:  # noqa: BLE001 - never let the hook itself fail
                sys.__excepthook__(tp, value, tb)

        sys.excepthook = hook

    def uninstall_excepthook(self) -> None:
        if self._old_hook is not None:
            sys.excepthook = self._old_hook
            self._old_hook = None
