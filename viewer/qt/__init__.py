"""All Qt code of the viewer: application, main window, views, panels, workers, dialogs."""

from viewer.qt import _pyside_fix

_pyside_fix.apply()  # PySide6 6.12.0 on Python 3.11 leaks None references (see the module)
