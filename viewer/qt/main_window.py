"""The main window: views in the centre, docks around, open/scan/load through workers.

Extension point for other panels (Grad-CAM, comparison, mask editing, export): build a widget that
takes ``window.state`` (the shared :class:`viewer.state.ViewState`) and ``window.runner`` (the
:class:`JobRunner`), then call ``window.add_dock(name, widget)``. Overlays go through
``state.set_layer(LabelLayer | HeatmapLayer | ImageLayer)``; errors through
``window.errors.present(exc)``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QWidget,
)

from viewer.qt.actions import build_actions
from viewer.qt.browser import StudyBrowser
from viewer.qt.compare_panel import install_compare
from viewer.qt.edit_actions import install_edit
from viewer.qt.errors import ErrorPresenter
from viewer.qt.explain_panel import install_explain
from viewer.qt.export_dialog import install_export
from viewer.qt.loading import Loader
from viewer.qt.measurements_panel import MeasurementsPanel
from viewer.qt.seg_overlay import install_seg_overlays
from viewer.qt.segmentation_panel import SegmentationPanel
from viewer.qt.settings import make_settings
from viewer.qt.tag_browser import TagBrowser
from viewer.qt.view_grid import ViewGrid
from viewer.qt.workers import JobRunner
from viewer.state import ViewState

__all__ = ["MainWindow"]

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """The viewer window.

    Signals
    -------
    volume_loaded(object)   a Volume became current (after a load finished)
    scan_finished(object)   a ScanResult is shown in the browser
    """

    volume_loaded = Signal(object)
    scan_finished = Signal(object)

    def __init__(
        self, *, settings: Any = None, recording_errors: bool = False, parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.setWindowTitle("Clinical Viewer")
        self.setObjectName("main_window")
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else make_settings()
        self.state = ViewState()
        self.runner = JobRunner(self)
        self.errors = ErrorPresenter(self, recording=recording_errors)
        self.docks: dict[str, QDockWidget] = {}
        self.grid = ViewGrid(self.state, self)
        self.setCentralWidget(self.grid)
        self.browser = StudyBrowser(self)
        self.tags = TagBrowser(self)
        self.measurements = MeasurementsPanel(self.state, self)
        self.add_dock("Studies", self.browser, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.add_dock("Measurements", self.measurements, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.add_dock("DICOM tags", self.tags, Qt.DockWidgetArea.RightDockWidgetArea)
        self.docks["DICOM tags"].visibilityChanged.connect(lambda _v: self._on_cursor())
        self._build_status_bar()
        self.cine = QTimer(self)
        self.cine.timeout.connect(self._cine_step)
        self.cine_fps = float(self.settings.value("cine_fps", 10.0))
        self.loader = Loader(self)
        self.segmentation = SegmentationPanel(self)
        self.add_dock("Segmentation", self.segmentation, Qt.DockWidgetArea.RightDockWidgetArea)
        self.actions_by_name = build_actions(self)
        self.edit = install_edit(self)  # Edit menu + dock: reader edits (issue 8)
        self.explain = install_explain(self)  # Explain dock: preprocessing, Grad-CAM (issue 6)
        self.compare = install_compare(self)  # Compare-engines dock (issue 7)
        self.exporter = install_export(self)  # File → Export (issue 9)
        self.seg_overlays = install_seg_overlays(self)  # SEGs of the study folder (issue 9)
        for v in self.grid.views:
            v.hovered.connect(self._show_hover)
        self.state.subscribe("cursor", self._on_cursor)
        self.state.subscribe("identity", self._on_identity)
        self.browser.stack_activated.connect(self.loader.load_stack)
        self.state.set_hide_identity(self.settings.value("hide_identity", False, type=bool))
        self.state.set_layout(str(self.settings.value("layout", "1x1")))
        self._restore_geometry()

    # ------------------------------------------------------------------ extension API
    def add_dock(
        self,
        name: str,
        widget: QWidget,
        area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
        *,
        tabify: bool = True,
    ) -> QDockWidget:
        """Add ``widget`` in a dock titled ``name`` (tabbed with docks already in ``area``).

        The dock's visibility toggle is added to the View menu; its state is saved with the window.
        """
        dock = QDockWidget(name, self)
        dock.setObjectName(f"dock_{name.lower().replace(' ', '_')}")
        # A scroll area between dock and panel: tabbed docks share one width, and without it
        # the widest panel's minimum (the Edit dock's table: ~540 px) squeezed the image views.
        scroll = QScrollArea(dock)
        scroll.setObjectName(f"scroll_{name.lower().replace(' ', '_')}")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(widget)
        dock.setWidget(scroll)
        others = [d for d in self.docks.values() if self.dockWidgetArea(d) == area]
        self.addDockWidget(area, dock)
        if tabify and others:
            self.tabifyDockWidget(others[-1], dock)
            others[0].raise_()
        self.docks[name] = dock
        view_menu = getattr(self, "view_menu", None)
        if view_menu is not None:
            view_menu.addAction(dock.toggleViewAction())
        return dock

    # ------------------------------------------------------------------ status bar
    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.hover_label = QLabel("", self)
        self.hover_label.setObjectName("hover_label")
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("cancel_button")
        self.cancel_button.hide()
        sb.addPermanentWidget(self.hover_label)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)

    def show_progress(self, done: int, total: int, message: str = "") -> None:
        self.progress.show()
        self.cancel_button.show()
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, max(total, 1)))
        self.progress.setFormat(f"{message} %v/%m" if message else "%v/%m")

    def hide_progress(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()

    def message(self, text: str, ms: int = 5000) -> None:
        self.statusBar().showMessage(text, ms)

    def _show_hover(self, info: dict | None) -> None:
        if info is None:
            self.hover_label.setText("")
            return
        z, y, x = info["index"]
        v = info["value"]
        val = f"{float(v):.0f} {info['units']}" if getattr(v, "ndim", 0) == 0 else str(list(v))
        lps = info["lps"]
        self.hover_label.setText(
            f"x {x}  y {y}  z {z}   {val}   LPS ({lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f}) mm"
        )

    # ------------------------------------------------------------------ opening
    def open_path(self, path: str | Path, *, stack_key: str | None = None) -> None:
        """Scan ``path`` in a worker, show the studies, load ``stack_key`` (default: largest)."""
        self.loader.open_path(str(path), stack_key=stack_key)

    def set_volume(self, volume: Any, key: str = "") -> None:
        """Make a loaded Volume current (also usable directly by tests and other panels)."""
        self.state.set_volume(volume, key)
        self.grid.views[0].set_preview(None)
        self.setWindowTitle(f"Clinical Viewer — {self._title(volume)}")
        self._on_cursor()
        self.grid.active_view().setFocus()  # arrow keys / PageUp / PageDown scroll at once
        self.volume_loaded.emit(volume)

    def _title(self, volume: Any) -> str:
        if volume is None:
            return ""
        if self.state.hide_identity:
            return volume.meta.series_description or volume.meta.modality
        return f"{volume.meta.patient_name.replace('^', ' ')} — {volume.meta.series_description}"

    # ------------------------------------------------------------------ state reactions
    def _on_cursor(self, **_) -> None:
        """Keep the tag browser on the current axial slice's file (only while it is visible)."""
        vol = self.state.volume
        dock = self.docks.get("DICOM tags")
        if vol is None or (dock is not None and not dock.isVisible()):
            return
        files = vol.meta.source_files
        z = self.state.cursor[0]
        if 0 <= z < len(files):
            self.tags.show_file(files[z], hide_identity=self.state.hide_identity)

    def _on_identity(self, hide: bool = False, **_) -> None:
        self.settings.setValue("hide_identity", hide)
        self.tags.current_source = ""
        self._on_cursor()
        if self.state.volume is not None:
            self.setWindowTitle(f"Clinical Viewer — {self._title(self.state.volume)}")
        if self.browser.result is not None:
            self.browser.set_result(self.browser.result, hide_identity=hide)

    # ------------------------------------------------------------------ cine
    def toggle_cine(self) -> None:
        if self.cine.isActive():
            self.cine.stop()
            self.message("Cine stopped")
        elif self.state.volume is not None:
            self.cine.start(int(1000 / self.cine_fps))
            self.message(f"Cine {self.cine_fps:.0f} frames/s ([ slower, ] faster)")

    def set_cine_fps(self, fps: float) -> None:
        self.cine_fps = float(min(max(fps, 1.0), 60.0))
        self.settings.setValue("cine_fps", self.cine_fps)
        if self.cine.isActive():
            self.cine.setInterval(int(1000 / self.cine_fps))
        self.message(f"Cine speed {self.cine_fps:.0f} frames/s")

    def _cine_step(self) -> None:
        ax = self.state.active_axis
        n = self.state.slice_count(ax)
        self.state.set_slice(ax, (self.state.cursor[ax] + 1) % max(n, 1))

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, e: QDragEnterEvent) -> None:  # noqa: N802
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e: QDropEvent) -> None:  # noqa: N802
        for url in e.mimeData().urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
                e.acceptProposedAction()
                return

    # ------------------------------------------------------------------ settings / close
    def _restore_geometry(self) -> None:
        geo = self.settings.value("geometry")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        else:
            self.resize(1400, 900)
        self._state_restored = False

    def showEvent(self, e) -> None:  # noqa: N802
        """Restore the dock layout once the window exists (earlier duplicates tab bars)."""
        super().showEvent(e)
        if self._state_restored:
            return
        self._state_restored = True
        st = self.settings.value("window_state")
        if isinstance(st, QByteArray) and not st.isEmpty():
            self.restoreState(st)
        else:
            self.resizeDocks(
                [self.docks["Studies"], self.docks["DICOM tags"]],
                [260, 540],
                Qt.Orientation.Horizontal,
            )

    def closeEvent(self, e: QCloseEvent) -> None:  # noqa: N802
        if not self.edit.confirm_close_all():  # unsaved reader edits: keep / discard / cancel
            e.ignore()
            return
        self.cine.stop()
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.setValue("layout", self.state.layout)
        self.settings.sync()
        self.runner.shutdown(timeout=10.0)
        self.errors.uninstall_excepthook()
        for v in self.grid.views:
            v.detach()
        super().closeEvent(e)
