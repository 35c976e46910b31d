"""What the screenshot scripts share: an offscreen, isolated environment and an event-loop wait.

Import it first (``from _shots import wait``): it sets ``QT_QPA_PLATFORM=offscreen``, points
``CLINICAL_VIEWER_HOME`` at a fresh temporary folder unless it is set (so the window opens in the
default layout, not the user's saved one) and puts the repository on ``sys.path``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if "CLINICAL_VIEWER_HOME" not in os.environ:
    os.environ["CLINICAL_VIEWER_HOME"] = tempfile.mkdtemp(prefix="cv-shots-")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

__all__ = ["HERE", "wait"]


def wait(app, cond, timeout: float = 600.0, settle: int = 5) -> None:
    """Turn the event loop until ``cond()`` holds (TimeoutError after ``timeout`` s), then
    ``settle`` more turns so that queued repaints land before a grab."""
    t = time.monotonic()
    while not cond():
        app.processEvents()
        time.sleep(0.01)
        if time.monotonic() - t > timeout:
            raise TimeoutError("timed out")
    for _ in range(settle):
        app.processEvents()
        time.sleep(0.01)
