"""Work around a reference-count bug of PySide6 6.12.0 on Python < 3.12.

Measured here (PySide6-Essentials 6.12.0, CPython 3.11.7): every call of a Qt method returning
``void`` (``QPainter.setPen``, ``QWidget.update``, ``QLabel.setText`` …) *decrements* the
reference count of ``None`` once without having incremented it (Python ≥ 3.12 makes ``None``
immortal, which hides the bug there). After a few tens of thousands of such calls — a few hundred
repaints of a slice view — CPython aborts with ``Fatal Python error: none_dealloc: deallocating
None``.

:func:`apply` detects the leak with a harmless call and, only if it is present, adds a large
constant to ``None``'s reference count once, so that the leaked decrements can never bring it to
zero (2**40 decrements ≈ years of continuous painting). Nothing else is changed; on a fixed
PySide6 or on Python ≥ 3.12 it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import sys

__all__ = ["apply", "leaks_bool_on_emit", "leaks_none"]

log = logging.getLogger(__name__)
_applied = False


def leaks_none(calls: int = 64) -> bool:
    """True when calling a void Qt method lowers ``sys.getrefcount(None)``."""
    from PySide6.QtGui import QColor

    c = QColor(0, 0, 0)
    before = sys.getrefcount(None)
    for _ in range(calls):
        c.setRed(1)
    return sys.getrefcount(None) <= before - calls // 2


def leaks_bool_on_emit(calls: int = 64) -> bool:
    """True when ``Signal.emit`` of a Python-declared signal lowers ``sys.getrefcount(True)``.

    Same bug family, measured here: every ``emit`` returns ``True`` without a new reference, so
    the app aborted with ``bool_dealloc`` after ~5000 emits (e.g. ~5000 mouse moves over a
    slice view, which emits ``hovered`` on every move)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        sig = Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(calls):
        probe.sig.emit()
    return sys.getrefcount(True) <= before - calls // 2


def apply() -> bool:
    """Apply the workaround if needed (idempotent). Returns True when it was applied."""
    global _applied
    if _applied or sys.version_info >= (3, 12) or not hasattr(sys, "getrefcount"):
        return _applied
    if leaks_none():
        ctypes.c_ssize_t.from_address(id(None)).value += 1 << 40
        _applied = True
        log.info("PySide6 void-return None refcount leak detected; compensated")
    if leaks_bool_on_emit():
        for obj in (True, False):
            ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
        _applied = True
        log.info("PySide6 Signal.emit bool refcount leak detected; compensated")
    return _applied
