"""Application entry points: ``clinical-viewer [PATH]`` and ``clinical-viewer demo``.

Start-up stays light (target ≤ 1.5 s to a usable window, ``bench/bench_startup.py``): nothing here
imports torch or pytorch-grad-cam; the model engine is imported when a segmentation first runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

__all__ = ["create_app", "run_demo", "run_gui"]

log = logging.getLogger(__name__)


def create_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once): names, high-DPI policy, Fusion style."""
    app = QApplication.instance()
    if app is not None:
        return app  # type: ignore[return-value]
    QCoreApplication.setOrganizationName("clinical-viewer")
    QCoreApplication.setApplicationName("clinical-viewer")
    # Qt 6 scales by the screen's device pixel ratio; keep fractional factors (125 %, 150 %) exact
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setStyle("Fusion")
    return app


def _window(**kwargs: Any):
    from viewer.qt.main_window import MainWindow

    win = MainWindow(**kwargs)
    win.errors.install_excepthook()
    return win


def run_gui(args: argparse.Namespace) -> int:
    """Open the viewer, on ``args.path`` when given. Returns the exit code."""
    app = create_app()
    win = _window()
    win.show()
    path = getattr(args, "path", None)
    if path:
        QTimer.singleShot(0, lambda: win.open_path(path))
    _startup_probe(app, win)
    return int(app.exec())


def _startup_probe(app: QApplication, win: Any) -> None:
    """``CLINICAL_VIEWER_EXIT_WHEN_READY=1`` (bench/bench_startup.py): once the shown window has
    painted and the event loop turns, print ``READY <heavy modules loaded>`` on stderr and quit."""
    import os

    if os.environ.get("CLINICAL_VIEWER_EXIT_WHEN_READY") != "1":
        return

    def ready() -> None:
        heavy = sorted(
            m
            for m in ("torch", "torchvision", "pytorch_grad_cam", "onnxruntime")
            if m in sys.modules
        )
        print(
            f"READY {','.join(heavy) or '-'} visible={win.isVisible()}", file=sys.stderr, flush=True
        )
        app.quit()

    QTimer.singleShot(0, ready)


def run_demo(args: argparse.Namespace) -> int:
    """Open the viewer on the generated demo chest CT (written once, then read by the real loader)
    and segment it when a model package is installed (unless ``--no-segment``)."""
    app = create_app()
    win = _window()
    win.show()
    start_demo(win, segment=not getattr(args, "no_segment", False))
    return int(app.exec())


def start_demo(
    win: Any,
    *,
    segment: bool = True,
    shape: tuple[int, int, int] | None = None,
    model: str = "lung",
) -> Any:
    """Generate (if needed) and open the demo study in ``win`` with the lung window; segment it
    once loaded when a model package is installed (the first whose name contains ``model``).
    Returns the generating job."""
    from viewer.demo import DEMO_SHAPE, ensure_demo_study

    shp = tuple(shape or DEMO_SHAPE)
    job = win.runner.submit(
        lambda progress, cancel: ensure_demo_study(shape=shp, progress=progress, cancel=cancel),
        name="demo",
        key="demo",
    )
    job.progress.connect(lambda d, t, m: win.show_progress(d, t, m or "Writing demo study"))
    job.error.connect(
        lambda exc, tb: win.errors.present(exc, title="Demo study failed", details=tb)
    )
    job.finished.connect(win.hide_progress)

    def opened(path: Any) -> None:
        def once(_vol: Any) -> None:
            win.volume_loaded.disconnect(once)
            win.actions_by_name["window_lung"].trigger()
            if segment:
                win.segmentation.run_if_model_available(prefer=model)

        win.volume_loaded.connect(once)
        win.open_path(str(path))

    job.result.connect(opened)
    return job
