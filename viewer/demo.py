"""The demo study: a generated chest CT written once as a real DICOM series. No Qt.

``clinical-viewer demo`` opens it through the real scanner and loader, so the demo exercises the
same path as a user's data. The series lives in ``<user data dir>/demo/<version>/`` (platformdirs;
``CLINICAL_VIEWER_HOME`` overrides the base folder, as the tests do) and is reused afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from inference.jobs import CancelCheck, Progress, check_cancel, report

__all__ = [
    "DEMO_SHAPE",
    "DEMO_SPACING",
    "demo_dir",
    "ensure_demo_study",
    "make_demo_volume",
    "user_data_dir",
]

log = logging.getLogger(__name__)

DEMO_VERSION = "1"
DEMO_SHAPE = (64, 512, 512)  # (nz, ny, nx)
DEMO_SPACING = (5.0, 0.7, 0.7)  # (sz, sy, sx) mm
DEMO_SEED = 2024


def user_data_dir() -> Path:
    """``$CLINICAL_VIEWER_HOME`` when set, else the platform's per-user data folder."""
    home = os.environ.get("CLINICAL_VIEWER_HOME")
    if home:
        return Path(home)
    import platformdirs

    return Path(platformdirs.user_data_dir("clinical-viewer", appauthor=False))


def demo_dir(shape: tuple[int, int, int] = DEMO_SHAPE) -> Path:
    tag = "" if tuple(shape) == DEMO_SHAPE else "-" + "x".join(str(s) for s in shape)
    return user_data_dir() / "demo" / f"v{DEMO_VERSION}{tag}"


def _ellipse_phantom(
    shape: tuple[int, int, int], spacing: tuple[float, float, float]
) -> np.ndarray:
    """Fallback: a body ellipse with two air-filled 'lungs' and a spine-like bone disc (HU)."""
    nz, ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    cy, cx = ny / 2, nx / 2
    body = ((xx - cx) / (0.42 * nx)) ** 2 + ((yy - cy) / (0.30 * ny)) ** 2 <= 1
    lung_r = ((xx - cx + 0.17 * nx) / (0.12 * nx)) ** 2 + (
        (yy - cy + 0.02 * ny) / (0.20 * ny)
    ) ** 2 <= 1
    lung_l = ((xx - cx - 0.17 * nx) / (0.12 * nx)) ** 2 + (
        (yy - cy + 0.02 * ny) / (0.20 * ny)
    ) ** 2 <= 1
    bone = ((xx - cx) / (0.04 * nx)) ** 2 + ((yy - cy - 0.22 * ny) / (0.04 * ny)) ** 2 <= 1
    sl = np.full((ny, nx), -1000.0, np.float32)
    sl[body] = 40
    sl[lung_r | lung_l] = -850
    sl[bone] = 700
    return np.repeat(sl[None], nz, axis=0)


def make_demo_volume(
    shape: tuple[int, int, int] = DEMO_SHAPE,
    spacing: tuple[float, float, float] = DEMO_SPACING,
    *,
    seed: int = DEMO_SEED,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(HU [z, y, x] int16 with z increasing towards the head, labels or None)."""
    try:
        from inference.phantom import generate_volume
    except ImportError:  # pragma: no cover - phantom generator not installed
        return _ellipse_phantom(shape, spacing).astype(np.int16), None
    hu, labels, _info = generate_volume(
        np.random.default_rng(seed), shape=shape, spacing=spacing, lesions=2
    )
    # the generator's index 0 is the most cranial slice; DICOM positions here ascend to the head
    return np.rint(hu[::-1]).astype(np.int16), labels[::-1].copy()


def ensure_demo_study(
    *,
    shape: tuple[int, int, int] = DEMO_SHAPE,
    spacing: tuple[float, float, float] = DEMO_SPACING,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> Path:
    """Write the demo series (once) and return the folder holding its DICOM files.

    A ``demo.json`` marker (next to that folder, so scans do not list it as a skipped file) is
    written last, so an interrupted run is redone rather than reused.
    """
    from viewer.dicom.synth import write_series

    folder = demo_dir(shape)
    marker = folder / "demo.json"
    series = folder / "series1"
    if marker.is_file():
        return series
    report(progress, 0, 3, "Generating demo chest CT (first run only)")
    hu, _labels = make_demo_volume(shape, spacing)
    check_cancel(cancel)
    report(progress, 1, 3, "Writing demo DICOM series")
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    nz, ny, nx = shape
    origin = (-(nx - 1) / 2 * spacing[2], -(ny - 1) / 2 * spacing[1], -(nz - 1) / 2 * spacing[0])
    write_series(
        tmp / "series1",
        hu,
        spacing=spacing,
        origin=origin,
        patient_name="Demo^Patient",
        patient_id="DEMO0001",
        series_description="Demo chest CT (synthetic)",
        window=[(-600.0, 1500.0, "LUNG"), (40.0, 400.0, "MEDIASTINUM")],
        uid_seed=f"clinical-viewer-demo-{DEMO_VERSION}-{shape}",
    )
    check_cancel(cancel)
    (tmp / "demo.json").write_text(
        json.dumps(
            {
                "version": DEMO_VERSION,
                "shape": list(shape),
                "spacing": list(spacing),
                "synthetic": True,
            }
        )
    )
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(folder)
    report(progress, 3, 3, "Demo study ready")
    log.info("demo study written")
    return series
