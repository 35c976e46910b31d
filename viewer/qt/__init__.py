"""All Qt code of the viewer: application, main window, views, panels, workers, dialogs."""

from viewer.qt import _pyside_check

_pyside_check.check()  # refuse PySide6 6.12.0 on Python 3.11 (see the module)
