"""The "Explain" dock (issue 6): see what the model saw and why.

Three tabs: **Preprocessing** (:mod:`viewer.qt.analysis_preprocess`: CLAHE, equalisation, Canny,
Sobel, denoise with live, debounced, latest-request-wins previews side by side in a linked view or
as an overlay), **Grad-CAM** (:mod:`viewer.qt.analysis_gradcam`: heatmap of a label's evidence
beside the deployed ONNX mask; torch is imported in the worker on first use only) and **Model
input** (:mod:`viewer.qt.analysis_replay`: exactly the array the network received).

``install_explain(win)`` builds the panel and adds it as a dock; ``win.explain`` is the panel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from viewer.qt.analysis_gradcam import GradCamPanel
from viewer.qt.analysis_preprocess import PreprocessPanel
from viewer.qt.analysis_replay import ModelInputPanel

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.main_window import MainWindow

__all__ = ["ExplainPanel", "install_explain"]


class ExplainPanel(QWidget):
    """Tabs: ``preprocess`` (:class:`PreprocessPanel`), ``gradcam`` (:class:`GradCamPanel`),
    ``model_input`` (:class:`ModelInputPanel`)."""

    def __init__(self, win: MainWindow, parent: QWidget | None = None):
        super().__init__(parent)
        self.win = win
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("explain_tabs")
        self.preprocess = PreprocessPanel(win, self)
        self.gradcam = GradCamPanel(win, self)
        self.model_input = ModelInputPanel(win, self)
        self.tabs.addTab(self.preprocess, "Preprocessing")
        self.tabs.addTab(self.gradcam, "Grad-CAM")
        self.tabs.addTab(self.model_input, "Model input")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.tabs)

    def show_tab(self, name: str) -> None:
        """Raise the dock and switch to tab ``preprocess`` | ``gradcam`` | ``model_input``."""
        dock = self.win.docks.get("Explain")
        if dock is not None:
            dock.show()
            dock.raise_()
        self.tabs.setCurrentWidget(getattr(self, name))

    def report(self) -> dict[str, Any]:
        """Settings of every view, for an exported report."""
        return {
            "preprocessing": self.preprocess.current_views(),
            "gradcam": self.gradcam.last,
            "model_input": self.model_input.report(),
        }

    def detach(self) -> None:
        for p in (self.preprocess, self.gradcam, self.model_input):
            p.detach()


def install_explain(win: MainWindow) -> ExplainPanel:
    """Create the Explain panel and add it as a right-hand dock (tabbed with the others)."""
    panel = ExplainPanel(win)
    win.add_dock("Explain", panel, Qt.DockWidgetArea.RightDockWidgetArea)
    win.explain = panel
    return panel
