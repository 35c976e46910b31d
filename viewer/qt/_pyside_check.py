"""Refuse a PySide6 build known to corrupt CPython reference counts (6.12.0 on Python < 3.12).

Measured here (PySide6-Essentials 6.12.0, CPython 3.11.7): every call of a Qt method returning
``void`` (``QPainter.setPen``, ``QWidget.update`` …) decrements the reference count of ``None``
without having incremented it, and every ``Signal.emit`` does the same to ``True``. After a few
hundred repaints, or ~5000 mouse moves over a view, CPython aborts with ``none_dealloc`` /
``bool_dealloc``: the app dies and unsaved work with it. 6.11.3 is clean; Python ≥ 3.12 makes
these objects immortal, which hides the bug.

The right place for the fix is the dependency: ``pyproject.toml`` requires
``PySide6-Essentials<6.12``. :func:`check` catches an environment that got the broken build
anyway (installed by hand, another resolver) and stops with a clear message at start-up, rather
than crashing later in the middle of a reading session.
"""

from __future__ import annotations

import sys

from viewer.errors import ViewerError

__all__ = ["check", "leaks_bool_on_emit", "leaks_none", "BrokenQtBinding"]


class BrokenQtBinding(ViewerError):
    """The installed PySide6 build corrupts reference counts; the message says what to install."""


def leaks_none(calls: int = 64) -> bool:
    """True when calling a void Qt method lowers ``sys.getrefcount(None)``."""
    from PySide6.QtGui import QColor

    c = QColor(0, 0, 0)
    before = sys.getrefcount(None)
    for _ in range(calls):
        c.setRed(1)
    return sys.getrefcount(None) <= before - calls // 2


def leaks_bool_on_emit(calls: int = 64) -> bool:
    """True when ``Signal.emit`` of a Python-declared signal lowers ``sys.getrefcount(True)``."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        sig = Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(calls):
        probe.sig.emit()
    return sys.getrefcount(True) <= before - calls // 2


def check() -> None:
    """Raise :class:`BrokenQtBinding` when the installed PySide6 shows the leak."""
    if sys.version_info >= (3, 12) or not hasattr(sys, "getrefcount"):
        return
    if leaks_none() or leaks_bool_on_emit():
        import PySide6

        raise BrokenQtBinding(
            f"PySide6 {PySide6.__version__} on Python {sys.version.split()[0]} corrupts "
            "reference counts and would crash the viewer after a few hundred repaints; install "
            "a working build with: pip install 'PySide6-Essentials<6.12'"
        )
