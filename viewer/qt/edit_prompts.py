"""Questions the edit workflow asks the reader (restore edits? close with unsaved edits? new label).

Like :class:`viewer.qt.errors.ErrorPresenter`, a :class:`Prompter` either shows a modal dialog or,
in recording mode (tests, ``MainWindow(recording_errors=True)``), answers from
:attr:`Prompter.answers` (else the question's default) and appends a :class:`PromptRecord` to
:attr:`Prompter.records`, so headless tests check what was asked without blocking.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QColorDialog, QInputDialog, QMessageBox, QWidget

__all__ = ["PromptRecord", "Prompter"]

log = logging.getLogger(__name__)


@dataclass
class PromptRecord:
    """One question: its kind (``"restore"``, ``"close"``, ``"label_name"`` ...) and answer."""

    kind: str
    title: str
    text: str
    choices: list[str]
    answer: Any


class Prompter(QObject):
    """Asks (or, recording, answers and records). ``asked(record)`` is emitted for each question."""

    asked = Signal(object)

    def __init__(self, parent_widget: QWidget | None = None, *, recording: bool = False):
        super().__init__()
        self.parent_widget = parent_widget
        self.recording = recording
        #: recording mode: kind → answer, or a list of answers used in turn
        self.answers: dict[str, Any] = {}
        self.records: list[PromptRecord] = []

    def _recorded(self, kind: str, default: Any) -> Any:
        a = self.answers.get(kind, default)
        if isinstance(a, list):
            a = a.pop(0) if a else default
        return a

    def _record(self, kind: str, title: str, text: str, choices: Sequence[str], answer: Any) -> Any:
        rec = PromptRecord(kind, title, text, list(choices), answer)
        self.records.append(rec)
        log.info("asked %s: answered %r", kind, answer if kind not in ("label_name",) else "…")
        self.asked.emit(rec)
        return answer

    def choose(
        self,
        kind: str,
        title: str,
        text: str,
        choices: Sequence[str],
        *,
        default: str,
        escape: str | None = None,
    ) -> str:
        """One of ``choices`` (button texts). ``default`` is the default button (and the recorded
        answer when none is set); ``escape`` the answer to Esc / closing the box (default: last)."""
        if self.recording:
            answer = self._recorded(kind, default)
            if answer not in choices:
                raise ValueError(
                    f"recorded answer {answer!r} for {kind!r} is not one of {list(choices)}"
                )
            return self._record(kind, title, text, choices, answer)
        box = QMessageBox(self.parent_widget)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(title)
        box.setText(text)
        buttons = {}
        for c in choices:
            role = (
                QMessageBox.ButtonRole.RejectRole
                if c == (escape or choices[-1])
                else QMessageBox.ButtonRole.AcceptRole
            )
            buttons[box.addButton(c, role)] = c
            if c == default:
                box.setDefaultButton(list(buttons)[-1])
        box.exec()
        answer = buttons.get(box.clickedButton(), escape or choices[-1])
        return self._record(kind, title, text, choices, answer)

    def text(self, kind: str, title: str, label: str, default: str = "") -> str | None:
        """A line of text, or None when cancelled."""
        if self.recording:
            return self._record(kind, title, label, [], self._recorded(kind, default or None))
        value, ok = QInputDialog.getText(self.parent_widget, title, label, text=default)
        return self._record(kind, title, label, [], value if ok else None)

    def color(
        self, kind: str, title: str, initial: tuple[int, int, int]
    ) -> tuple[int, int, int] | None:
        """An RGB colour, or None when cancelled."""
        if self.recording:
            return self._record(kind, title, "", [], self._recorded(kind, initial))
        c = QColorDialog.getColor(QColor(*initial), self.parent_widget, title)
        rgb = (c.red(), c.green(), c.blue()) if c.isValid() else None
        return self._record(kind, title, "", [], rgb)
