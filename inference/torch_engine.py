"""The PyTorch twin as an engine: ``engine(x: float32 [N, C, H, W]) -> logits [N, K, H, W]``.

No Qt, never imports ``viewer``; torch is imported inside functions (it costs ~1 s and 600 MB).
The architecture comes from ``model.json`` ``"torch": {"architecture", "args"}`` via
:func:`inference.networks.build_network`, the weights from ``files.torch`` (a ``state_dict``, or a
checkpoint dict holding one under ``"state_dict"`` / ``"model"``). Eval mode, ``no_grad``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from inference.jobs import Cancelled
from inference.package import ModelPackage, PackageError

__all__ = ["TorchEngine", "load_torch_model"]

log = logging.getLogger(__name__)


def load_torch_model(package: ModelPackage) -> Any:
    """Build the package's torch module with its weights, in eval mode (CPU)."""
    import torch

    from inference.networks import build_network

    spec = package.torch_spec
    arch = spec.get("architecture")
    if not arch:
        raise PackageError(
            f"model package '{package.name}' has no PyTorch twin (model.json 'torch.architecture')"
        )
    try:
        model = build_network(str(arch), dict(spec.get("args", {})))
    except (ValueError, TypeError) as exc:
        raise PackageError(f"model package '{package.name}': cannot build {arch} ({exc})") from exc
    path = package.file("torch")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle/runtime errors of several types
        raise PackageError(f"{path}: cannot be read as PyTorch weights ({exc})") from exc
    if isinstance(state, dict):
        for key in ("state_dict", "model", "model_state"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        raise PackageError(
            f"{path}: weights do not fit {arch}({spec.get('args', {})}): {str(exc)[:300]}"
        ) from exc
    model.eval()
    return model


class TorchEngine:
    """PyTorch eager inference with the same call signature as :class:`OnnxEngine`.

    ``threads`` sets ``torch.set_num_threads`` (process-wide in torch) when given.
    ``channels_last`` (default True) runs in NHWC memory format, ~1.5x faster on CPU for the same
    results (PERF_NOTES.md); the output is returned as contiguous NCHW.
    ``terminate()`` makes the next call raise ``Cancelled`` (a running torch forward cannot be
    interrupted; the pipeline's batches are small enough that the current one ends quickly).
    """

    kind = "torch"

    def __init__(
        self, package: ModelPackage, *, threads: int | None = None, channels_last: bool = True
    ) -> None:
        import torch

        self.package = package
        if threads:
            torch.set_num_threads(int(threads))
        self.threads = threads
        self.channels_last = channels_last
        self.model = load_torch_model(package)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._terminated = threading.Event()

    @property
    def provider(self) -> str:
        return "torch-cpu"

    @property
    def providers(self) -> list[str]:
        return [self.provider]

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.kind,
            "architecture": self.package.torch_spec.get("architecture"),
            "threads": self.threads,
            "channels_last": self.channels_last,
            "providers": self.providers,
        }

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import torch

        if self._terminated.is_set():
            raise Cancelled()
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4:
            raise ValueError(f"engine input must be [N, C, H, W], got shape {x.shape}")
        t = torch.from_numpy(x)
        if self.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            out = self.model(t)
        if self._terminated.is_set():
            raise Cancelled()
        return np.ascontiguousarray(out.detach().cpu().numpy(), dtype=np.float32)

    def terminate(self) -> None:
        self._terminated.set()

    def reset(self) -> None:
        self._terminated.clear()
