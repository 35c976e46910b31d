"""Grad-CAM panel (issue 6): label, method, target layer and region; worker, progress, cancel.

torch and pytorch_grad_cam are imported only inside the worker functions, on first use
(:mod:`inference.gradcam` is torch-only); start-up stays light. The PyTorch twin of the model
package chosen in the segmentation panel is loaded once per package and purpose (one instance
for current-slice jobs, one for whole-series background jobs; each used under its own lock, the
library is not thread-safe per model instance).

Target region: the label's mask predicted by the PyTorch twin, the deployed ONNX mask from the
segmentation result of this series, or the rectangle drawn with the Rect tool on this slice
(the latest one; for a series, the same rectangle on every slice). The heatmap is a
:class:`viewer.state.HeatmapLayer` (``"gradcam"``) on the main views, and in the panel's own
linked view next to the outline of the ONNX mask of that label, so the reader sees whether the
evidence sits where the deployed mask is.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from viewer.qt.analysis_link import follower_state
from viewer.qt.slice_view import SliceView
from viewer.qt.workers import JobPanel
from viewer.state import HeatmapLayer, LabelLayer

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.main_window import MainWindow
    from viewer.qt.workers import Job

__all__ = ["GradCamPanel", "CAM_LAYER", "MASK_LAYER", "METHOD_NAMES", "REGIONS", "run_cam"]

log = logging.getLogger(__name__)

CAM_LAYER = "gradcam"
MASK_LAYER = "onnx-mask"
METHOD_NAMES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "hirescam": "HiResCAM"}
REGIONS = {
    "predicted": "mask predicted by the PyTorch twin",
    "onnx": "deployed ONNX mask (segmentation result)",
    "rect": "rectangle drawn with the Rect tool",
}
CMAPS = ("jet", "hot")

_models: dict[tuple[str, str], tuple[Any, str, threading.Lock]] = {}
_models_lock = threading.Lock()


def cam_model(package: Any, purpose: str) -> tuple[Any, str, threading.Lock]:
    """The package's PyTorch twin for ``purpose`` ("slice" | "series"), cached (worker side)."""
    key = (str(package.root), purpose)
    with _models_lock:
        if key not in _models:
            from inference.gradcam import load_cam_model  # torch: first use only

            model, layer = load_cam_model(package)
            _models[key] = (model, layer, threading.Lock())
        return _models[key]


def list_layers(package: Any, *, progress: Any = None, cancel: Any = None) -> tuple[list[str], str]:
    """Candidate target layers and the default one (worker side; loads torch)."""
    from inference.gradcam import candidate_layers

    model, default, lock = cam_model(package, "slice")
    with lock:
        return candidate_layers(model), default


def run_cam(
    volume: Any,
    package: Any,
    *,
    label: int,
    method: str,
    layer: str | None,
    z: int | None,
    region: np.ndarray | None,
    progress: Any = None,
    cancel: Any = None,
) -> np.ndarray:
    """Grad-CAM of slice ``z`` (``[y, x]``) or of every slice (``z=None``: ``[z, y, x]``).

    ``region``: boolean ``[z, y, x]`` on the volume grid (None: the twin's predicted mask).
    A whole-series job runs torch with 1 intra-op thread (process-wide while it runs) so that
    scrolling stays smooth; a single slice uses torch's default.
    For one slice only the slices the network input needs are handed over (no volume-sized
    temporary).
    """
    from inference.gradcam import compute_cam_series
    from inference.preprocess_input import ArrayVolume

    model, default, lock = cam_model(package, "series" if z is None else "slice")
    layer = layer or default
    if z is None:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # background work: leave a core to the GUI (PERF_NOTES)
        try:
            with lock:
                return compute_cam_series(
                    model, volume, package, target_label=label, region=region, method=method,
                    target_layer=layer, progress=progress, cancel=cancel,
                )  # fmt: skip
        finally:
            torch.set_num_threads(threads)
    nz = volume.voxels.shape[0]
    half = package.input.channels // 2
    lo, hi = max(0, z - half), min(nz, z + half + 1)
    sub = ArrayVolume(volume.voxels[lo:hi], volume.spacing, volume.direction)
    reg = None if region is None else region[lo:hi]
    with lock:
        out = compute_cam_series(
            model, sub, package, target_label=label, slices=[z - lo], region=reg,
            method=method, target_layer=layer, progress=progress, cancel=cancel,
        )  # fmt: skip
    return out[z - lo]


class GradCamPanel(JobPanel, QWidget):
    """Controls + a linked view (heatmap next to the ONNX mask outline)."""

    def __init__(self, win: MainWindow, parent: QWidget | None = None):
        super().__init__(parent)
        self.win = win
        self.state = win.state
        self.job: Job | None = None
        self.results: dict[tuple, HeatmapLayer] = {}  # (series, label, method, layer, z|None)
        self.shown: dict[str, HeatmapLayer] = {}  # per series: the heatmap last shown
        self.last: dict[str, Any] | None = None
        self.label_box = QComboBox(self)
        self.label_box.setObjectName("cam_label")
        self.label_box.currentIndexChanged.connect(lambda *_: self._on_layers(name=CAM_LAYER))
        self.method_box = QComboBox(self)
        self.method_box.setObjectName("cam_method")
        for k, v in METHOD_NAMES.items():
            self.method_box.addItem(v, k)
        self.layer_box = QComboBox(self)
        self.layer_box.setObjectName("cam_layer")
        self.layers_button = QPushButton("List layers", self)
        self.layers_button.setToolTip("Load the PyTorch twin and list every usable layer")
        self.layers_button.clicked.connect(self.load_layers)
        self.region_box = QComboBox(self)
        self.region_box.setObjectName("cam_region")
        for k, v in REGIONS.items():
            self.region_box.addItem(v, k)
        self.slice_button = QPushButton("Explain this slice", self)
        self.slice_button.setObjectName("cam_run")
        self.slice_button.clicked.connect(lambda: self.run(series=False))
        self.series_button = QPushButton("Whole series", self)
        self.series_button.setObjectName("cam_series")
        self.series_button.clicked.connect(lambda: self.run(series=True))
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(int(float(win.settings.value("gradcam/opacity", 50))))
        self.opacity.valueChanged.connect(self._style_changed)
        self.cmap_box = QComboBox(self)
        self.cmap_box.addItems(CMAPS)
        self.cmap_box.setCurrentText(str(win.settings.value("gradcam/cmap", "jet")))
        self.cmap_box.currentIndexChanged.connect(self._style_changed)
        self.linked_state, self.link = follower_state(self.state)
        self.view = SliceView(self.linked_state, 0, self)
        self.view.setObjectName("cam_linked_view")
        self.view.setMinimumSize(200, 200)
        layer_row = QHBoxLayout()
        layer_row.addWidget(self.layer_box, 1)
        layer_row.addWidget(self.layers_button)
        form = QFormLayout()
        form.addRow("Label", self.label_box)
        form.addRow("Method", self.method_box)
        form.addRow("Target layer", layer_row)
        form.addRow("Target region", self.region_box)
        form.addRow("Opacity", self.opacity)
        form.addRow("Colour map", self.cmap_box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.slice_button)
        buttons.addWidget(self.series_button)
        buttons.addWidget(self.cancel_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(QLabel("Heatmap beside the deployed ONNX mask (outline):", self))
        lay.addWidget(self.view, 1)
        self._package_key = None
        self.state.subscribe("volume", self._on_volume)
        self.state.subscribe("layers", self._on_layers)
        seg = getattr(win, "segmentation", None)
        if seg is not None:  # follow the model chosen in the segmentation panel
            seg.model_box.currentIndexChanged.connect(lambda *_: self.refresh_package())
        self.refresh_package()

    # ------------------------------------------------------------------ package
    def package(self) -> Any:
        seg = getattr(self.win, "segmentation", None)
        return seg.package() if seg is not None else None

    def refresh_package(self) -> None:
        """Labels and the default target layer of the segmentation panel's model (no torch)."""
        pkg = self.package()
        key = None if pkg is None else str(pkg.root)
        if key == self._package_key:
            return
        self._package_key = key
        self.label_box.clear()
        self.layer_box.clear()
        if pkg is None:
            self.status.setText("No model package: choose one in the Segmentation panel")
            return
        for lab in pkg.labels:
            if lab.value > 0:
                self.label_box.addItem(lab.name, lab.value)
        default = pkg.torch_spec.get("gradcam_target_layer")
        self.layer_box.addItem(f"default ({default or 'last block'})", None)
        if not pkg.has_torch:
            self.status.setText(f"'{pkg.name}' has no PyTorch twin: Grad-CAM is unavailable")
        self._update_buttons()

    def load_layers(self) -> Job | None:
        pkg = self.package()
        if pkg is None:
            return None
        job = self.win.runner.submit(
            lambda progress, cancel: list_layers(pkg), name="gradcam layers", key="gradcam-layers"
        )
        job.result.connect(self._fill_layers)
        job.error.connect(
            lambda exc, tb: self.win.errors.present(exc, title="Grad-CAM model", details=tb)
        )
        self.status.setText("Loading the PyTorch twin …")
        return job

    def _fill_layers(self, value: tuple[list[str], str]) -> None:
        names, default = value
        current = self.layer_box.currentData()
        self.layer_box.clear()
        self.layer_box.addItem(f"default ({default})", None)
        for n in names:
            self.layer_box.addItem(n, n)
        i = self.layer_box.findData(current)
        self.layer_box.setCurrentIndex(max(i, 0))
        self.status.setText(f"{len(names)} candidate layers; default {default}")

    # ------------------------------------------------------------------ region
    def _region(self, kind: str, label: int, z: int) -> np.ndarray | None:
        vol = self.state.volume
        if kind == "predicted":
            return None
        if kind == "onnx":
            lab = self._onnx_labels()
            if lab is None:
                raise ValueError(
                    "no segmentation result for this series: run the segmentation first, "
                    "or choose another target region"
                )
            return lab == label
        from viewer.measure import roi_mask
        from viewer.qt.view_geometry import PlaneGeometry

        rects = [m for m in self.state.measurements_on(0, z) if m.kind in ("rect", "ellipse")]
        if not rects:
            raise ValueError(
                f"no rectangle on slice {z + 1}: draw one with the Rect tool (B), or choose "
                "another target region"
            )
        m = rects[-1]
        g = PlaneGeometry(vol, 0)
        p0, p1 = ((g.array_rc(r), c) for r, c in m.points[:2])
        plane = roi_mask(vol.shape[1:], p0, p1, m.kind)
        return np.broadcast_to(plane, vol.shape)

    def _onnx_labels(self) -> np.ndarray | None:
        seg = getattr(self.win, "segmentation", None)
        entry = None if seg is None else seg.results.get(self.state.series_key)
        return None if entry is None else entry.layer.current_labels()

    # ------------------------------------------------------------------ run
    def run(self, series: bool = False) -> Job | None:
        """Compute Grad-CAM for the current slice (or the whole series) in a worker."""
        self.refresh_package()
        vol, pkg = self.state.volume, self.package()
        if vol is None or pkg is None or self.label_box.count() == 0:
            self.win.message("Open a series and choose a model in the Segmentation panel first")
            return None
        label, method = int(self.label_box.currentData()), str(self.method_box.currentData())
        layer, kind = self.layer_box.currentData(), str(self.region_box.currentData())
        z = None if series else int(self.state.cursor[0])
        try:
            region = self._region(kind, label, int(self.state.cursor[0]))
        except ValueError as exc:
            self.win.errors.present(exc, title="Grad-CAM target region")
            return None
        request = {
            "series": self.state.series_key, "label": label, "label_name":
            self.label_box.currentText(), "method": method, "layer": layer, "region": kind,
            "slice": z, "model": f"{pkg.name} {pkg.version}",
        }  # fmt: skip

        def fn(progress, cancel):
            return run_cam(vol, pkg, label=label, method=method, layer=layer, z=z,
                           region=region, progress=progress, cancel=cancel)  # fmt: skip

        key = "gradcam-series" if series else "gradcam"
        job = self._start(
            fn, name="Grad-CAM", key=key, title="Grad-CAM failed",
            result=lambda heat, r=request, v=vol: self._done(heat, r, v),
            cancelled=lambda: self.status.setText("Grad-CAM cancelled"),
        )  # fmt: skip
        where = "the whole series" if series else f"slice {z + 1}"
        first = "" if _models else " (first use: loading PyTorch and the model, a few seconds)"
        self.status.setText(
            f"{METHOD_NAMES[method]} of '{request['label_name']}' on {where} …{first}"
        )
        return job

    def _progress(self, done: int, total: int, message: str) -> None:
        self._show_progress(done, total)
        if message:
            self.status.setText(message)

    def _update_buttons(self) -> None:
        pkg = self.package()
        ok = pkg is not None and pkg.has_torch and self.state.volume is not None
        self.slice_button.setEnabled(ok)
        self.series_button.setEnabled(ok)
        self.cancel_button.setEnabled(self.job is not None)

    def _done(self, heat: np.ndarray, request: dict[str, Any], vol: Any) -> None:
        z = request["slice"]
        layer = HeatmapLayer(
            CAM_LAYER, np.asarray(heat, np.float32), cmap=self.cmap_box.currentText(),
            opacity=self.opacity.value() / 100.0, z=z,
        )  # fmt: skip
        key = tuple(request[k] for k in ("series", "label", "method", "layer", "region", "slice"))
        self.results[key] = layer
        self.shown[request["series"]] = layer
        self.last = dict(request, max=float(np.max(heat)) if heat.size else 0.0)
        self.progress.setValue(self.progress.maximum())
        where = "series" if z is None else f"slice {z + 1}"
        self.status.setText(
            f"{METHOD_NAMES[request['method']]} of '{request['label_name']}' on {where} "
            f"(layer {request['layer'] or 'default'}, region: {request['region']})"
        )
        if vol is self.state.volume and request["series"] == self.state.series_key:
            self.state.set_layer(layer)

    # ------------------------------------------------------------------ display
    def _style_changed(self, *_: Any) -> None:
        self.win.settings.setValue("gradcam/opacity", self.opacity.value())
        self.win.settings.setValue("gradcam/cmap", self.cmap_box.currentText())
        layer = self.state.layers.get(CAM_LAYER)
        if isinstance(layer, HeatmapLayer):
            layer.opacity = self.opacity.value() / 100.0
            layer.cmap = self.cmap_box.currentText()
            self.state.layer_changed(CAM_LAYER)

    def _on_volume(self, volume: Any = None, **_: Any) -> None:
        """Per-series results: bring back this series' heatmap (set_volume cleared the layers)."""
        self.refresh_package()
        self._update_buttons()
        layer = self.shown.get(self.state.series_key) if volume is not None else None
        if layer is not None:
            self.state.set_layer(layer)
        self._on_layers(name=CAM_LAYER)  # the link cleared the linked view after other panels

    def _on_layers(self, name: str = "", **_: Any) -> None:
        """Mirror the heatmap and the ONNX mask outline of the chosen label into the linked view."""
        if name not in (CAM_LAYER, "segmentation"):
            return
        cam = self.state.layers.get(CAM_LAYER)
        if cam is None:
            self.linked_state.remove_layer(CAM_LAYER)
        lab = self._onnx_labels()
        if lab is not None and self.label_box.count():
            value = int(self.label_box.currentData())
            seg = self.state.layers.get("segmentation")
            color = getattr(seg, "colors", {}).get(value, (255, 255, 255))
            mask = LabelLayer(MASK_LAYER, lab, {value: color}, outline=True)
            self.linked_state.set_layer(mask)
        if cam is not None:
            self.linked_state.set_layer(cam)

    def detach(self) -> None:
        self.state.unsubscribe("volume", self._on_volume)
        self.state.unsubscribe("layers", self._on_layers)
        self.link.detach()
        self.view.detach()
