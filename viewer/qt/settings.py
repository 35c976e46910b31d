"""QSettings for the viewer: a temporary INI file when ``CLINICAL_VIEWER_HOME`` is set (tests)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

__all__ = ["make_settings", "recent_paths", "add_recent"]

MAX_RECENT = 10


def make_settings() -> QSettings:
    """The application's settings store.

    With ``CLINICAL_VIEWER_HOME`` set, settings live in ``$CLINICAL_VIEWER_HOME/settings.ini``
    (the test fixtures point it at a temporary folder), never in the user's real settings.
    """
    home = os.environ.get("CLINICAL_VIEWER_HOME")
    if home:
        Path(home).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(home) / "settings.ini"), QSettings.Format.IniFormat)
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, "clinical-viewer", "clinical-viewer"
    )


def recent_paths(settings: QSettings) -> list[str]:
    value = settings.value("recent", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or [])]


def add_recent(settings: QSettings, path: str) -> list[str]:
    items = [p for p in recent_paths(settings) if p != path]
    items.insert(0, path)
    items = items[:MAX_RECENT]
    settings.setValue("recent", items)
    return items
