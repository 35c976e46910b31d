"""Grad-CAM for the segmentation network's PyTorch twin (pytorch-grad-cam), wrapped safely.

torch-only module (torch and pytorch_grad_cam at top level); import it lazily. No Qt, never
imports ``viewer``.

Target: for label ``l``, the sum of that label's logits inside a mask — by default the mask the
network itself predicts for ``l`` on this input (``argmax == l``), or a region the user drew
(``mask``, boolean ``[H, W]`` on the input grid). Methods: ``"gradcam"``, ``"gradcam++"``,
``"hirescam"``. The target layer is a module name (``model.json`` ``torch.gradcam_target_layer``,
e.g. ``"decoder.3"``); :func:`candidate_layers` lists the names a user may choose from.

Safety (the library's own helpers assume a classifier and BGR images):

* gradients are enabled even inside ``torch.no_grad`` / ``torch.inference_mode`` callers; the
  target layer's output is made a leaf that requires grad (:func:`_cut_graph`), so frozen
  weights still give activation gradients, no weight gradient is computed, and backpropagation
  stops at the target layer (about one forward pass of cost at the last decoder block);
* the library forces ``model.eval()``: every module's ``training`` flag, every in-place ReLU and
  every parameter's ``requires_grad`` and ``.grad`` are restored afterwards;
* hooks are released in a ``finally`` block (even on error or cancel);
* the heatmap is float32 in [0, 1] (all zeros when the target is empty), resampled to the slice
  grid by the caller's geometry; colouring (explicit RGB) is in :mod:`inference.heatmap`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import cv2
import numpy as np
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM
from torch import nn

from inference.heatmap import colorize_heatmap, overlay_heatmap
from inference.jobs import CancelCheck, Progress, check_cancel, report
from inference.package import ModelPackage, PackageError

__all__ = [
    "METHODS",
    "candidate_layers",
    "default_target_layer",
    "resolve_layer",
    "compute_cam",
    "compute_cam_series",
    "load_cam_model",
    "colorize_heatmap",
    "overlay_heatmap",
]

log = logging.getLogger(__name__)

METHODS: dict[str, type] = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "hirescam": HiResCAM}
_LAYER_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.Sequential)


def candidate_layers(model: nn.Module) -> list[str]:
    """Module names usable as a target layer (convolutions and blocks with 4-D feature maps)."""
    return [n for n, m in model.named_modules() if n and isinstance(m, _LAYER_TYPES)]


def default_target_layer(model: nn.Module, package: ModelPackage | None = None) -> str:
    """``model.json`` ``torch.gradcam_target_layer`` if given, else the last candidate block."""
    name = package.torch_spec.get("gradcam_target_layer") if package is not None else None
    if name:
        return str(name)
    blocks = [n for n, m in model.named_modules() if n and isinstance(m, nn.Sequential)]
    cands = blocks or candidate_layers(model)
    if not cands:
        raise ValueError("model has no convolutional layer to use for Grad-CAM")
    return cands[-1]


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules or not name:
        raise ValueError(
            f"target layer {name!r} not in the model; candidates: "
            f"{', '.join(candidate_layers(model))}"
        )
    return modules[name]


def load_cam_model(package: ModelPackage) -> tuple[nn.Module, str]:
    """The package's PyTorch twin and its Grad-CAM target layer (PackageError without a twin)."""
    if not package.has_torch:
        raise PackageError(
            f"model package '{package.name}' has no PyTorch twin: Grad-CAM is unavailable"
        )
    from inference.torch_engine import load_torch_model

    package.verify(["torch"])
    model = load_torch_model(package)
    return model, default_target_layer(model, package)


class _SegmentationTarget:
    """Sum of label ``label``'s logits inside ``mask`` (default: that label's predicted mask)."""

    def __init__(self, label: int, mask: torch.Tensor | None) -> None:
        self.label = label
        self.mask = mask
        self.pixels = 0

    def __call__(self, output: torch.Tensor) -> torch.Tensor:  # output [K, H, W] for one sample
        if not 0 <= self.label < output.shape[0]:
            raise ValueError(
                f"target label {self.label} is not an output of the model (labels "
                f"0..{output.shape[0] - 1})"
            )
        m = (
            self.mask
            if self.mask is not None
            else (output.argmax(0) == self.label).to(output.dtype).detach()
        )
        self.pixels = int((m > 0).sum())
        return (output[self.label] * m).sum()


def _cut_graph(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
    """Forward hook: make the target layer's output a leaf that requires grad.

    The score's gradient with respect to this activation is unchanged, but backpropagation stops
    here instead of running through every earlier layer (and no weight gradient is computed), so
    a CAM at the last decoder block costs about one forward pass.
    """
    return output.detach().requires_grad_(True)


@contextmanager
def _cam_session(model: nn.Module, layer: nn.Module, method: str) -> Iterator[Any]:
    training = {m: m.training for m in model.modules()}
    inplace = {
        m: m.inplace for m in model.modules() if isinstance(m, nn.ReLU | nn.LeakyReLU | nn.ReLU6)
    }
    params = list(model.parameters())
    grads = [p.grad for p in params]
    needs_grad = [p.requires_grad for p in params]
    for m in inplace:
        m.inplace = (
            False  # an in-place op after the hooked layer would corrupt its saved activation
        )
    cam = None
    cut = None
    try:
        for p in params:
            p.requires_grad_(False)
        cut = layer.register_forward_hook(
            _cut_graph
        )  # first: the library's hooks then see the leaf
        cam = METHODS[method](model=model, target_layers=[layer])
        yield cam
    finally:
        if cam is not None:
            cam.activations_and_grads.release()
        if cut is not None:
            cut.remove()
        for m, flag in training.items():
            m.training = flag
        for m, flag in inplace.items():
            m.inplace = flag
        for p, g, r in zip(params, grads, needs_grad, strict=True):
            p.requires_grad_(r)
            p.grad = g


def compute_cam(
    model: nn.Module,
    input_nchw: np.ndarray | torch.Tensor,
    *,
    target_label: int,
    mask: np.ndarray | None = None,
    method: str = "gradcam",
    target_layer: str | None = None,
    out_shape: tuple[int, int] | None = None,
    to_slice: Callable[[np.ndarray], np.ndarray] | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> np.ndarray:
    """Grad-CAM heatmap of one network input.

    Parameters
    ----------
    model : the PyTorch twin (any mode; its state is restored). Not thread-safe per model
        instance: the GUI keeps one model per worker (:func:`load_cam_model` builds a fresh one).
    input_nchw : float32 ``[1, C, H, W]`` (or ``[C, H, W]``): exactly the network input.
    target_label : label value whose evidence is shown.
    mask : optional boolean ``[H, W]`` region on the input grid; default: the mask the PyTorch twin
        predicts. To explain the deployed ONNX mask, pass that mask here (``region`` in
        :func:`compute_cam_series`).
    method : ``"gradcam"``, ``"gradcam++"`` or ``"hirescam"``.
    target_layer : module name (see :func:`candidate_layers`); default :func:`default_target_layer`.
    out_shape : ``(h, w)`` to resize the map to (bilinear), or ``to_slice``: a callable mapping
        the ``[H, W]`` map on the input grid to the slice grid (crop padding, resize back).

    Returns
    -------
    float32 ``[H, W]`` (or the slice grid) in [0, 1]; all zeros when the target region is empty.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    x = torch.as_tensor(
        np.asarray(input_nchw, dtype=np.float32)
        if not isinstance(input_nchw, torch.Tensor)
        else input_nchw.detach().float()
    )
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"compute_cam takes one input [1, C, H, W], got {tuple(x.shape)}")
    h, w = int(x.shape[2]), int(x.shape[3])
    mask_t = None
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (h, w):
            raise ValueError(f"target region shape {mask.shape} != input grid {(h, w)}")
        mask_t = torch.from_numpy((mask > 0).astype(np.float32))
    layer_name = target_layer or default_target_layer(model)
    layer = resolve_layer(model, layer_name)
    check_cancel(cancel)
    report(progress, 0, 1, f"Grad-CAM ({method}, {layer_name})")
    target = _SegmentationTarget(int(target_label), mask_t)
    with torch.inference_mode(False), torch.enable_grad():
        x = x.clone()
        with _cam_session(model, layer, method) as cam:
            heat = cam(input_tensor=x, targets=[target])[0]
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32))
    if target.pixels == 0:
        log.info("Grad-CAM: label %d has an empty target region; heatmap is zero", target_label)
        heat = np.zeros((h, w), np.float32)
    if to_slice is not None:
        heat = np.asarray(to_slice(heat), dtype=np.float32)
    elif out_shape is not None and tuple(out_shape) != heat.shape:
        heat = cv2.resize(
            heat, (int(out_shape[1]), int(out_shape[0])), interpolation=cv2.INTER_LINEAR
        )
    np.clip(heat, 0.0, 1.0, out=heat)
    report(progress, 1, 1, "Grad-CAM done")
    return heat


def compute_cam_series(
    model: nn.Module,
    volume_like: Any,
    package: ModelPackage,
    *,
    target_label: int,
    slices: list[int] | None = None,
    region: np.ndarray | None = None,
    method: str = "gradcam",
    target_layer: str | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> np.ndarray:
    """Grad-CAM per slice of a volume, on the volume's own grid.

    The network input of each slice is built exactly as the pipeline builds it
    (:mod:`inference.preprocess_input`); each map is cropped of padding, resized back to the slice
    (bilinear) and written through the canonical orientation view, so ``out[z, y, x]`` lines up
    with ``volume_like.voxels[z, y, x]``.

    Parameters
    ----------
    slices : slice indices ``z`` of the volume to compute (default all). For a coronal or sagittal
        stack, whose network slices are resliced axially, they index the canonical axial slices.
    region : optional boolean ``[z, y, x]`` on the volume grid: the user's target region
        (default: each slice's predicted mask of ``target_label``).

    Returns
    -------
    float32 ``[z, y, x]`` in [0, 1]; slices not computed are 0. Raises ``Cancelled``.
    """
    from inference.preprocess_input import orientation_of, prepare_slices, slice_geometry

    spec = package.input
    vox = np.asarray(volume_like.voxels)
    orient = orientation_of(volume_like.direction)
    canon = orient.view(vox)
    cs = orient.spacing(tuple(volume_like.spacing))
    geom = slice_geometry(canon.shape[1:], cs[1:], spec)
    ny, nx = canon.shape[1:]
    out = np.zeros(vox.shape, dtype=np.float32)
    out_c = orient.view(out)
    region_c = orient.view(np.asarray(region, dtype=np.uint8)) if region is not None else None
    if region is not None and np.shape(region) != vox.shape:
        raise ValueError(f"region shape {np.shape(region)} != volume shape {vox.shape}")
    nzc = canon.shape[0]
    zs = list(range(nzc)) if slices is None else [int(z) for z in slices]
    if any(not 0 <= z < nzc for z in zs):
        raise IndexError(f"slices {zs} out of range 0..{nzc - 1}")
    if slices is not None and orient.perm[0] == 0 and orient.flip[0]:
        zs = [nzc - 1 - z for z in zs]  # original index → canonical (head→feet) index
    layer_name = target_layer or default_target_layer(model, package)

    def to_slice(heat: np.ndarray) -> np.ndarray:
        return cv2.resize(
            np.ascontiguousarray(geom.crop(heat)), (nx, ny), interpolation=cv2.INTER_LINEAR
        )

    for i, z in enumerate(zs):
        check_cancel(cancel)
        x = prepare_slices(canon, [z], geom, spec)
        mask = None
        if region_c is not None:
            r = cv2.resize(
                np.ascontiguousarray(region_c[z]),
                (geom.resized[1], geom.resized[0]),
                interpolation=cv2.INTER_NEAREST,
            )
            top, bottom, left, right = geom.pad
            mask = cv2.copyMakeBorder(r, top, bottom, left, right, cv2.BORDER_CONSTANT, value=0)
        out_c[z] = compute_cam(
            model,
            x,
            target_label=target_label,
            mask=mask,
            method=method,
            target_layer=layer_name,
            to_slice=to_slice,
        )
        report(progress, i + 1, len(zs), f"Grad-CAM slice {i + 1}/{len(zs)}")
    return out
