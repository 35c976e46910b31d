"""Shared fixtures. Qt runs headless; settings and user data go to a temporary folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Before any Qt import: headless, and never the user's real settings/data.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Point QSettings / user data / user models at a per-test temporary folder."""
    base = tmp_path_factory.mktemp("userdirs")
    monkeypatch.setenv("CLINICAL_VIEWER_HOME", str(base / "home"))
    monkeypatch.setenv("CLINICAL_VIEWER_MODELS", str(base / "models"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(base / "data"))
    yield


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real DICOM); the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present (real DICOM for development only)")
    return SHARED_DATA


@pytest.fixture
def screenshot_dir(tmp_path) -> Path:
    """Where tests save window grabs: ``docs/screenshots`` only when ``CV_SAVE_SCREENSHOTS=1``.

    A normal test run must not rewrite tracked files; refresh the docs' pictures with
    ``CV_SAVE_SCREENSHOTS=1 python -m pytest -q -k screenshot`` (and look at them)."""
    if os.environ.get("CV_SAVE_SCREENSHOTS") == "1":
        d = ROOT / "docs" / "screenshots"
    else:
        d = tmp_path / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d
