"""Tiny real models for the comparison / Grad-CAM tests: torch modules, ONNX exports, packages.

The "gated" model is a hand-set 1x1-conv network on a [0, 1] input ``x``::

    h0 = relu(x), h1 = relu(x - 0.6)
    logits = [0.3, h0, 4 * h1]   → label 0 where x < 0.3, 2 where x > 0.8, else 1

so the weight ``4`` (``2.weight[2, 1]``) matters only where ``x > 0.6``. Changing it in the ONNX
initializer breaks exactly the slices that contain bright voxels, and no others.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from inference.package import sha256_file

GATED_WEIGHT = "2.weight"  # initializer of the second conv: [3, 2, 1, 1]
LABELS = [
    {"value": 0, "name": "background", "color": [0, 0, 0]},
    {"value": 1, "name": "tissue", "color": [0, 200, 0]},
    {"value": 2, "name": "lesion", "color": [255, 0, 0]},
]


def gated_model():
    import torch

    m = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 1), torch.nn.ReLU(), torch.nn.Conv2d(2, 3, 1)
    ).eval()
    with torch.no_grad():
        m[0].weight[:] = torch.tensor([1.0, 1.0]).reshape(2, 1, 1, 1)
        m[0].bias[:] = torch.tensor([0.0, -0.6])
        m[2].weight[:] = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 4.0]]).reshape(3, 2, 1, 1)
        m[2].bias[:] = torch.tensor([0.3, 0.0, 0.0])
    return m


def export_onnx(model, path: Path, channels: int = 1, size: int = 32) -> Path:
    import torch

    x = torch.zeros(1, channels, size, size)
    axes = {0: "n", 2: "h", 3: "w"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (x,),
            str(path),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": axes, "logits": axes},
            dynamo=False,
        )
    return path


def perturb_onnx(src: Path, dst: Path, name: str, index: tuple[int, ...], value: float) -> Path:
    """Copy ``src`` with one element of initializer ``name`` set to ``value``."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    for init in model.graph.initializer:
        if init.name == name:
            arr = numpy_helper.to_array(init).copy()
            arr[index] = value
            init.CopyFrom(numpy_helper.from_array(arr, name))
            break
    else:
        raise KeyError(f"{src} has no initializer {name!r}")
    onnx.save(model, str(dst))
    return dst


def onnx_initializer_names(path: Path) -> list[str]:
    import onnx

    return [i.name for i in onnx.load(str(path)).graph.initializer]


def gated_input(
    nz: int = 10, size: int = 32, lesion_slices: tuple[int, ...] = (4, 5, 6), seed: int = 0
) -> np.ndarray:
    """float32 [z, 1, H, W] in [0, 1]: tissue disc (0.5), a bright blob (peak 1) in some slices."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    c = (size - 1) / 2
    disc = ((yy - c) ** 2 + (xx - c) ** 2 < (0.4 * size) ** 2).astype(np.float32)
    x = np.empty((nz, 1, size, size), np.float32)
    for z in range(nz):
        img = 0.1 + 0.4 * disc + rng.uniform(-0.02, 0.02, (size, size)).astype(np.float32)
        if z in lesion_slices:
            img += 0.5 * np.exp(-((yy - c - 3) ** 2 + (xx - c + 2) ** 2) / (2 * (size / 10) ** 2))
        x[z, 0] = np.clip(img, 0, 1)
    return x


def write_package(
    root: Path,
    name: str,
    files: dict[str, Path],
    *,
    labels=None,
    torch_spec=None,
    window=(0.0, 2.0),
    inplane=None,
    divisible_by: int = 1,
) -> Path:
    """A model package folder ``root`` (files copied in) with a model.json holding their SHA-256."""
    import shutil

    root.mkdir(parents=True, exist_ok=True)
    entry = {}
    for kind, src in files.items():
        dst = root / src.name
        if src.resolve() != dst.resolve():
            shutil.copyfile(src, dst)
        entry[kind] = {"path": dst.name, "sha256": sha256_file(dst)}
    mj = {
        "schema": 1,
        "name": name,
        "version": "0.0.1",
        "task": "segmentation",
        "modalities": ["CT"],
        "labels": labels or LABELS,
        "input": {
            "channels": 1,
            "layout": "NCHW",
            "window": {"center": window[0], "width": window[1]},
            "normalize": "0..1",
            "inplane": inplane or {"policy": "native"},
            "divisible_by": divisible_by,
            "orientation": "LPS-axial",
            "pad_value_hu": -1.0,
        },
        "files": entry,
    }
    if torch_spec:
        mj["torch"] = torch_spec
    (root / "model.json").write_text(json.dumps(mj, indent=1))
    return root


def tiny_unet(seed: int = 0, base: int = 4, depth: int = 2, num_classes: int = 3):
    import torch

    from inference.networks import UNet2D

    torch.manual_seed(seed)
    return UNet2D(in_channels=1, num_classes=num_classes, base=base, depth=depth).eval()


def shipped_package():
    import pytest

    from inference.package import shipped_models_dir

    if not (shipped_models_dir() / "lung-ct-unet" / "model.json").is_file():
        pytest.skip("shipped model resources/models/lung-ct-unet not present yet")
    from inference.package import find_package

    return find_package("lung-ct-unet")


def phantom_volume(seed: int = 3, nz: int = 6, lesions: int = 1):
    """A phantom chest CT Volume-like (z 0 cranial, columns → patient left, rows → posterior)."""
    from inference.phantom import generate_volume
    from inference.preprocess_input import ArrayVolume

    spacing = (5.0, 1.4, 1.4)
    hu, lab, info = generate_volume(
        np.random.default_rng(seed),
        shape=(nz, 256, 256),
        spacing=spacing,
        z_range=(0.35, 0.55),
        lesions=lesions,
    )
    return ArrayVolume(hu, spacing, np.diag([1.0, 1.0, -1.0])), lab, info
