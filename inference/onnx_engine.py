"""ONNX Runtime engine: ``engine(x: float32 [N, C, H, W]) -> float32 logits [N, K, H, W]``.

No Qt, never imports ``viewer``. One ``InferenceSession`` per engine, created once (in the caller's
thread — the GUI creates engines in its worker) and reused for every call. Session options are
explicit: execution provider(s), graph optimisation level, intra-op threads, spinning.

``session.intra_op.allow_spinning`` is ``"0"`` by default: ONNX Runtime's worker threads otherwise
spin ~25 ms of CPU after every ``run()``, slowing whatever runs next (the GUI thread) by 40–60 %
for a 0–5 % inference cost (``PERF_NOTES.md``).

:meth:`OnnxEngine.terminate` sets ``RunOptions.terminate`` on every run in progress, so a blocking
``session.run`` returns within one graph node; the interrupted call raises
:class:`inference.jobs.Cancelled`.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from inference.jobs import Cancelled
from inference.package import PackageError

__all__ = [
    "OnnxEngine",
    "EngineError",
    "available_providers",
    "resolve_providers",
    "PREFERRED_PROVIDERS",
]

log = logging.getLogger(__name__)

#: Accelerated providers in order of preference for ``providers="auto"``; CPU is always last.
PREFERRED_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "DmlExecutionProvider",
    "OpenVINOExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)
_SHORT = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
_OPT_LEVELS = ("disabled", "basic", "extended", "all")


class EngineError(PackageError):
    """An engine that cannot be created as asked (provider, options, model/spec mismatch)."""


def available_providers() -> list[str]:
    """``onnxruntime.get_available_providers()``, with ``CPUExecutionProvider`` always included."""
    import onnxruntime as ort

    provs = list(ort.get_available_providers())
    if "CPUExecutionProvider" not in provs:
        provs.append("CPUExecutionProvider")
    return provs


def resolve_providers(providers: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Normalise a provider request to a list of installed provider names, CPU last as fallback.

    ``None`` or ``"cpu"`` → CPU only; ``"auto"`` → the best accelerated provider installed, then
    CPU;
    a name (``"CUDAExecutionProvider"`` or short ``"cuda"``) or a list of names → those, then CPU.
    Raises :class:`EngineError` naming the installed providers when a requested one is missing.
    """
    avail = available_providers()
    if providers is None:
        return ["CPUExecutionProvider"]
    if isinstance(providers, str):
        if providers.lower() == "auto":
            return [p for p in PREFERRED_PROVIDERS if p in avail and p != "AzureExecutionProvider"]
        providers = [providers]
    out: list[str] = []
    for p in providers:
        name = _SHORT.get(p.lower(), p)
        if name not in avail:
            raise EngineError(
                f"execution provider {name!r} is not available in this onnxruntime build "
                f"(available: {', '.join(avail)}); choose one of those or 'auto'"
            )
        if name not in out:
            out.append(name)
    if "CPUExecutionProvider" not in out:
        out.append("CPUExecutionProvider")
    return out


class OnnxEngine:
    """A reusable ONNX Runtime session as an engine callable.

    Parameters
    ----------
    path : the ``.onnx`` file.
    providers : see :func:`resolve_providers` (default CPU only).
    graph_optimization : ``"all"`` (default), ``"extended"``, ``"basic"`` or ``"disabled"``.
    intra_op_threads : threads per operator; ``None`` lets ONNX Runtime choose (all cores).
    allow_spinning : keep ORT's worker threads spinning between runs (default False).
    expected_channels, expected_classes : when given, the model's input channel count and output
        class count must match (checked against the graph; mismatch → :class:`EngineError`).
    """

    kind = "onnx"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        providers: str | list[str] | None = None,
        graph_optimization: str = "all",
        intra_op_threads: int | None = None,
        allow_spinning: bool = False,
        expected_channels: int | None = None,
        expected_classes: int | None = None,
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise EngineError(f"ONNX model {self.path} does not exist")
        if graph_optimization not in _OPT_LEVELS:
            raise EngineError(
                f"graph_optimization must be one of {_OPT_LEVELS}, got {graph_optimization!r}"
            )
        if intra_op_threads is not None and intra_op_threads < 0:
            raise EngineError(
                f"intra_op_threads must be >= 0 (0 = ORT default), got {intra_op_threads}"
            )
        self.providers_requested = resolve_providers(providers)
        so = ort.SessionOptions()
        so.graph_optimization_level = {
            "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[graph_optimization]
        if intra_op_threads:
            so.intra_op_num_threads = int(intra_op_threads)
        so.inter_op_num_threads = 1
        so.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if allow_spinning else "0"
        )
        so.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=so, providers=self.providers_requested
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise EngineError(
                f"{self.path.name}: ONNX Runtime cannot load the model ({exc})"
            ) from exc
        self.graph_optimization = graph_optimization
        self.intra_op_threads = intra_op_threads
        self.allow_spinning = allow_spinning
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise EngineError(
                f"{self.path.name}: expected one input [N, C, H, W] and a logits output, got "
                "inputs "
                f"{[i.name for i in inputs]} and outputs {[o.name for o in outputs]}"
            )
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        self.input_shape = list(inputs[0].shape)
        self.output_shape = list(outputs[0].shape)
        self._check_shapes(expected_channels, expected_classes)
        self._lock = threading.Lock()
        self._active: set[Any] = set()
        self._terminated = False

    # ------------------------------------------------------------------ info
    @property
    def providers(self) -> list[str]:
        """Providers the session actually uses, in priority order."""
        return list(self.session.get_providers())

    @property
    def provider(self) -> str:
        return self.providers[0]

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.kind,
            "file": self.path.name,
            "providers": self.providers,
            "graph_optimization": self.graph_optimization,
            "intra_op_threads": self.intra_op_threads,
            "allow_spinning": self.allow_spinning,
            "input": [self.input_name, self.input_shape],
            "output": [self.output_name, self.output_shape],
        }

    def _check_shapes(self, channels: int | None, classes: int | None) -> None:
        ishape, oshape = self.input_shape, self.output_shape
        if len(ishape) != 4:
            raise EngineError(
                f"{self.path.name}: input '{self.input_name}' has shape {ishape}; the "
                "package's spec "
                "needs NCHW (rank 4)"
            )
        if channels is not None and isinstance(ishape[1], int) and ishape[1] != channels:
            raise EngineError(
                f"{self.path.name}: input '{self.input_name}' takes {ishape[1]} channels but "
                "model.json "
                f"input.channels is {channels}; fix model.json or re-export the model"
            )
        if len(oshape) != 4:
            raise EngineError(
                f"{self.path.name}: output '{self.output_name}' has shape {oshape}, expected "
                "[N, K, H, W]"
            )
        if classes is not None and isinstance(oshape[1], int) and oshape[1] != classes:
            raise EngineError(
                f"{self.path.name}: output '{self.output_name}' has {oshape[1]} classes but "
                "model.json "
                f"declares {classes} labels; fix the labels or re-export the model"
            )

    # ------------------------------------------------------------------ running
    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run the network on ``x`` float32 ``[N, C, H, W]``; returns float32 logits ``[N, K,
        H, W]``."""
        import onnxruntime as ort

        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4:
            raise ValueError(f"engine input must be [N, C, H, W], got shape {x.shape}")
        ro = ort.RunOptions()
        with self._lock:
            if self._terminated:
                raise Cancelled()
            self._active.add(ro)
        try:
            out = self.session.run([self.output_name], {self.input_name: x}, run_options=ro)[0]
        except Exception as exc:
            if ro.terminate:
                raise Cancelled() from None
            if "Exiting due to terminate flag" in str(exc):  # pragma: no cover - defensive
                raise Cancelled() from None
            raise
        finally:
            with self._lock:
                self._active.discard(ro)
        if ro.terminate:
            raise Cancelled()
        return np.asarray(out, dtype=np.float32)

    def terminate(self) -> None:
        """Interrupt every running call (they raise ``Cancelled``) and refuse new ones until
        :meth:`reset`."""
        with self._lock:
            self._terminated = True
            for ro in self._active:
                ro.terminate = True
        log.debug("onnx engine: terminate requested")

    def reset(self) -> None:
        """Accept calls again after :meth:`terminate` (the session itself is kept)."""
        with self._lock:
            self._terminated = False
