"""viewer.qt._pyside_check: the installed PySide6 passes, and a leaking build is refused clearly."""

from __future__ import annotations

import pytest

from viewer.qt import _pyside_check


def test_installed_pyside_is_not_the_leaking_build() -> None:
    assert not _pyside_check.leaks_none()
    assert not _pyside_check.leaks_bool_on_emit()
    _pyside_check.check()


def test_leaking_build_is_refused_with_the_fix(monkeypatch) -> None:
    monkeypatch.setattr(_pyside_check, "leaks_none", lambda: True)
    monkeypatch.setattr(_pyside_check.sys, "version_info", (3, 11, 7))
    with pytest.raises(_pyside_check.BrokenQtBinding, match=r"pip install 'PySide6-Essentials<6\.12'"):
        _pyside_check.check()
    from viewer.errors import is_user_error

    assert is_user_error(_pyside_check.BrokenQtBinding("x"))  # CLI: exit 2 with the message
