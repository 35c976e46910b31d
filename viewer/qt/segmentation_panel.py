"""Segmentation dock: choose model / engine / provider / threads, run in a worker, show the result.

The model runs off the GUI thread through :class:`viewer.qt.workers.JobRunner` (key
``"segment"``); by default with 1 intra-op thread and no ORT spinning (PERF_NOTES: 2-thread
inference doubles the GUI's frame time on 2 cores), so scrolling and windowing stay smooth.
Results are kept per series (``ViewState.series_key``) and come back when the series does.
The overlay controls and statistics live in :mod:`viewer.qt.segmentation_results`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from viewer.qt.segmentation_results import ResultControls
from viewer.qt.workers import JobPanel
from viewer.state import LabelLayer

if TYPE_CHECKING:  # pragma: no cover
    from viewer.qt.main_window import MainWindow
    from viewer.qt.workers import Job

__all__ = ["SEG_LAYER", "SegEntry", "SegmentationPanel"]

log = logging.getLogger(__name__)
SEG_LAYER = "segmentation"


@dataclass
class SegEntry:
    """One series' result and its display settings."""

    result: Any  # inference.pipeline.SegmentationResult
    stats: dict[str, Any]
    layer: LabelLayer
    settings: dict[str, Any] = field(default_factory=dict)


def run_segmentation(
    volume: Any,
    package: Any,
    *,
    engine: str,
    provider: str | None,
    threads: int | None,
    force: bool,
    progress: Any = None,
    cancel: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """The headless work behind the Run button: segment, then statistics (worker thread)."""
    from inference.pipeline import segment_volume
    from viewer.segstats import segment_statistics

    res = segment_volume(
        volume,
        package,
        engine=engine,
        provider=provider,
        threads=threads,
        progress=progress,
        cancel=cancel,
        force_domain=force,
    )
    stats = segment_statistics(
        res.labels, volume.voxels, volume.spacing, label_names=res.label_names
    )
    return res, stats


class SegmentationPanel(JobPanel, QWidget):
    """Run a model on the current series and control its overlay."""

    def __init__(self, win: MainWindow, parent: QWidget | None = None):
        super().__init__(parent)
        self.win = win
        self.state = win.state
        self.packages: list[Any] = []
        self.results: dict[str, SegEntry] = {}
        self.job: Job | None = None
        self._t0 = 0.0
        self.model_box = QComboBox(self)
        self.model_box.setObjectName("seg_model")
        self.model_box.currentIndexChanged.connect(self._model_changed)
        self.engine_box = QComboBox(self)
        self.engine_box.setObjectName("seg_engine")
        self.provider_box = QComboBox(self)
        self.provider_box.setObjectName("seg_provider")
        self.threads = QSpinBox(self)
        self.threads.setRange(0, 64)
        self.threads.setSpecialValueText("auto")
        self.threads.setValue(int(win.settings.value("seg_threads", 1)))
        self.threads.setToolTip(
            "Intra-op threads. 1 keeps the viewer smooth while the model runs;\n"
            "auto uses every core (faster, but scrolling may stutter)."
        )
        self.force = QCheckBox("Run even outside the model's domain", self)
        self.problems = QLabel("", self)
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #c80;")
        self.run_button = QPushButton("Run", self)
        self.run_button.setObjectName("seg_run")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("seg_cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.eta = QLabel("", self)
        self.controls = ResultControls(self.state, self)
        form = QFormLayout()
        form.addRow("Model", self.model_box)
        form.addRow("Engine", self.engine_box)
        form.addRow("Provider", self.provider_box)
        form.addRow("Threads", self.threads)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(form)
        lay.addWidget(self.force)
        lay.addWidget(self.problems)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.eta)
        lay.addWidget(self.controls, 1)
        self.state.subscribe("volume", self._on_volume)
        self.refresh_models()

    # ------------------------------------------------------------------ models
    def refresh_models(self) -> None:
        """Discover model packages (shipped + user folder) and the installed ORT providers."""
        from inference.package import discover_packages

        self.packages, problems = discover_packages()
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for p in self.packages:
            self.model_box.addItem(f"{p.name} {p.version}", p.name)
        self.model_box.blockSignals(False)
        msgs = list(problems)
        if not self.packages:
            msgs.append(
                "No model package found. Install one into the user models folder "
                "(see docs/model-package.md) or run `clinical-viewer model list`."
            )
        self.problems.setText("\n".join(msgs))
        self.problems.setVisible(bool(msgs))
        self._providers_loaded = False
        QTimer.singleShot(500, self.load_providers)  # onnxruntime is imported after start-up
        self._model_changed()

    def load_providers(self) -> None:
        """Fill the provider list from ``onnxruntime.get_available_providers()`` (once)."""
        if self._providers_loaded:
            return
        self._providers_loaded = True
        try:
            from inference.onnx_engine import available_providers

            provs = available_providers()
        except Exception as exc:  # noqa: BLE001 - onnxruntime missing/broken: say so, keep the viewer
            provs = []
            self.problems.setText(
                (self.problems.text() + f"\nONNX Runtime unavailable: {exc}").strip()
            )
            self.problems.show()
        self.provider_box.clear()
        # Azure is a remote-inference provider: never offered in an offline viewer
        for pv in (p for p in provs if p != "AzureExecutionProvider"):
            self.provider_box.addItem(pv.replace("ExecutionProvider", ""), pv)
        cpu = self.provider_box.findData("CPUExecutionProvider")
        if cpu >= 0:
            self.provider_box.setCurrentIndex(cpu)

    def package(self) -> Any:
        i = self.model_box.currentIndex()
        return self.packages[i] if 0 <= i < len(self.packages) else None

    def select_model(self, name: str) -> bool:
        i = self.model_box.findData(name)
        if i >= 0:
            self.model_box.setCurrentIndex(i)
        return i >= 0

    def _model_changed(self, *_: Any) -> None:
        pkg = self.package()
        self.engine_box.clear()
        if pkg is not None:
            for eng, kind in (("onnx", "onnx"), ("onnx-int8", "onnx_int8"), ("torch", "torch")):
                if kind in pkg.files:
                    self.engine_box.addItem(eng, eng)
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.job is not None
        self.run_button.setEnabled(
            not running and self.package() is not None and self.state.volume is not None
        )
        self.cancel_button.setEnabled(running)

    # ------------------------------------------------------------------ run
    def run(self) -> Job | None:
        """Segment the current volume with the chosen settings (in a worker)."""
        self.load_providers()
        vol, pkg = self.state.volume, self.package()
        if vol is None or pkg is None:
            self.win.message("Open a series and install a model package first")
            return None
        engine = self.engine_box.currentData() or "onnx"
        provider = self.provider_box.currentData()
        threads = self.threads.value() or None
        force = self.force.isChecked()
        self.win.settings.setValue("seg_threads", self.threads.value())
        key = self.state.series_key

        def fn(progress, cancel):
            return run_segmentation(
                vol,
                pkg,
                engine=engine,
                provider=provider,
                threads=threads,
                force=force,
                progress=progress,
                cancel=cancel,
            )

        self._t0 = time.monotonic()
        job = self._start(
            fn, name="segment", key="segment", title="Segmentation failed",
            result=lambda res, key=key, vol=vol, eng=engine: self._done(res, key, vol, eng),
            cancelled=lambda: self.eta.setText("Cancelled"), finished=self._finished,
        )  # fmt: skip
        self.eta.setText(f"Running {pkg.name} ({engine}) …")
        return job

    def _progress(self, done: int, total: int, message: str) -> None:
        self._show_progress(done, total)
        el = time.monotonic() - self._t0
        if done > 0 and total > done:
            self.eta.setText(
                f"{message or 'Segmenting'}: {done}/{total}, "
                f"about {el / done * (total - done):.0f} s left"
            )
        else:
            self.eta.setText(f"{message or 'Segmenting'}: {done}/{total}")

    def _finished(self) -> None:
        self.job = None
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if "left" not in self.eta.text() else 0)
        self._update_buttons()

    def _done(
        self, value: tuple[Any, dict[str, Any]], key: str, volume: Any, engine: str = ""
    ) -> None:
        res, stats = value
        names = {int(k): str(v) for k, v in res.label_names.items()}
        colors = {int(k): tuple(int(c) for c in v) for k, v in res.label_colors.items()} or {
            v: (255, 64 * v % 256, 128) for v in names
        }
        layer = LabelLayer(
            SEG_LAYER, res.labels, colors, names=names, probabilities=res.probabilities
        )
        entry = SegEntry(res, stats, layer)
        self.results[key] = entry
        t = res.timings.get("total", time.monotonic() - self._t0)
        warn = f" — {len(res.domain_warnings)} domain warning(s)" if res.domain_warnings else ""
        self.eta.setText(f"Done in {t:.1f} s ({engine or res.engine.get('engine', '')}){warn}")
        self.win.message(f"Segmentation finished in {t:.1f} s{warn}", 8000)
        if key == self.state.series_key and self.state.volume is volume:
            self._show(entry)

    def _show(self, entry: SegEntry | None) -> None:
        if entry is None:
            self.state.remove_layer(SEG_LAYER)
        else:
            self.state.set_layer(entry.layer)
        self.controls.set_entry(entry)

    def _on_volume(self, volume: Any = None, **_: Any) -> None:
        """Per-series results: bring back this series' overlay (set_volume cleared the layers)."""
        self._show(self.results.get(self.state.series_key) if volume is not None else None)
        self._update_buttons()

    def run_if_model_available(self, prefer: str = "lung") -> Job | None:
        """For the demo: pick a model whose name contains ``prefer`` (else the first), run it."""
        if not self.packages:
            self.win.message("Demo: no model package installed, showing the images only", 8000)
            return None
        for i, p in enumerate(self.packages):
            if prefer in p.name.lower():
                self.model_box.setCurrentIndex(i)
                break
        return self.run()
