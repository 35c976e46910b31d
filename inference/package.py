"""Model packages: a folder with ``model.json`` plus ONNX / PyTorch files, verified by SHA-256.

No Qt, never imports ``viewer``. ``model.json`` schema (version 1)::

    {
      "schema": 1,
      "name": "lung-ct-unet", "version": "1.0.0", "task": "segmentation",
      "description": "...",
      "modalities": ["CT"],
      "labels": [{"value": 0, "name": "background", "color": [0, 0, 0]},
                 {"value": 1, "name": "right lung", "color": [...]}, ...],
      "input": {
        "channels": 1,                 # slices fed as channels (1 = 2D, 3 = 2.5D: z-1, z, z+1)
        "layout": "NCHW",
        "window": {"center": -600, "width": 1500},   # HU window applied before normalisation
        "normalize": "0..1",           # "0..1" (window → [0, 1]) or "-1..1"
        "inplane": {"policy": "spacing", "spacing_mm": 1.4}   # or {"policy": "size", "size": [256, 256]}
        "divisible_by": 16,
        "orientation": "LPS-axial",    # canonical: columns → patient left, rows → posterior
        "pad_value_hu": -1024
      },
      "domain": {"modalities": ["CT"], "body_parts": ["CHEST", "LUNG", "THORAX", ""],
                 "hu_range": [-1100, 3100], "pixel_spacing_mm": [0.4, 1.2],
                 "fov_mm": [250, 550], "orientations": ["axial"]},
      "files": {"onnx": {"path": "model.onnx", "sha256": "..."},
                "onnx_int8": {"path": "model.int8.onnx", "sha256": "..."},
                "torch": {"path": "model.pt", "sha256": "..."}},
      "torch": {"architecture": "UNet2D", "args": {...}, "gradcam_target_layer": "decoder.3"},
      "output": {"kind": "logits", "activation": "softmax"},
      "postprocess": {"largest_component_labels": [1, 2], "fill_holes_labels": [1, 2],
                      "min_component_mm3": {"3": 10.0}},
      "training": {...provenance...}, "validation": {...}, "parity": {...}
    }
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "FileSpec",
    "InputSpec",
    "LabelSpec",
    "ModelPackage",
    "PackageError",
    "discover_packages",
    "find_package",
    "load_package",
    "sha256_file",
    "shipped_models_dir",
    "user_models_dir",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


class PackageError(ValueError):
    """A model package that cannot be used; the message names the file and what to do."""


def _caution(label: dict, where: str) -> str:
    """A label's optional ``caution`` (e.g. "not validated on real CT"): a string, or absent."""
    c = label.get("caution", "")
    if not isinstance(c, str):
        raise PackageError(f"{where}: label {label.get('name')!r}: 'caution' must be a string, got {type(c).__name__}")
    return c.strip()


@dataclass(frozen=True)
class LabelSpec:
    value: int
    name: str
    color: tuple[int, int, int]
    caution: str = ""  # shown wherever this label's output is (GUI, report, CLI); "" = none


@dataclass(frozen=True)
class FileSpec:
    kind: str  # "onnx" | "onnx_int8" | "torch"
    path: Path
    sha256: str


@dataclass(frozen=True)
class InputSpec:
    channels: int = 1
    layout: str = "NCHW"
    window_center: float = -600.0
    window_width: float = 1500.0
    normalize: str = "0..1"
    inplane_policy: str = "spacing"  # "spacing" | "size"
    spacing_mm: float | None = 1.4
    size: tuple[int, int] | None = None
    divisible_by: int = 16
    orientation: str = "LPS-axial"
    pad_value_hu: float = -1024.0


@dataclass
class ModelPackage:
    root: Path
    name: str
    version: str
    task: str
    modalities: list[str]
    labels: list[LabelSpec]
    input: InputSpec
    files: dict[str, FileSpec]
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def has_torch(self) -> bool:
        return "torch" in self.files

    @property
    def has_int8(self) -> bool:
        return "onnx_int8" in self.files

    @property
    def num_classes(self) -> int:
        return max(lab.value for lab in self.labels) + 1

    def file(self, kind: str) -> Path:
        try:
            return self.files[kind].path
        except KeyError:
            raise PackageError(
                f"model package '{self.name}' has no '{kind}' file (has: {sorted(self.files)})"
            ) from None

    def label_name(self, value: int) -> str:
        for lab in self.labels:
            if lab.value == value:
                return lab.name
        return f"label {value}"

    def verify(self, kinds: list[str] | None = None) -> None:
        """Check the SHA-256 of the named files (all by default); raise PackageError on mismatch."""
        for kind, spec in self.files.items():
            if kinds is not None and kind not in kinds:
                continue
            if not spec.path.is_file():
                raise PackageError(f"model package '{self.name}': file {spec.path} is missing; reinstall the package")
            digest = sha256_file(spec.path)
            if digest != spec.sha256:
                raise PackageError(
                    f"model package '{self.name}': {spec.path.name} has SHA-256 {digest[:16]}…, "
                    f"model.json declares {spec.sha256[:16]}…; the file was changed or corrupted — "
                    "refusing to load it. Reinstall the package."
                )

    @property
    def domain(self) -> dict[str, Any]:
        return dict(self.raw.get("domain", {}))

    @property
    def torch_spec(self) -> dict[str, Any]:
        return dict(self.raw.get("torch", {}))

    @property
    def postprocess(self) -> dict[str, Any]:
        return dict(self.raw.get("postprocess", {}))


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def shipped_models_dir() -> Path:
    """``resources/models`` next to the source tree (shipped with the app)."""
    return Path(__file__).resolve().parent.parent / "resources" / "models"


def user_models_dir() -> Path:
    """The per-user models folder (``$CLINICAL_VIEWER_MODELS`` overrides it)."""
    env = os.environ.get("CLINICAL_VIEWER_MODELS")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("clinical-viewer", appauthor=False)) / "models"


def _req(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise PackageError(f"{where}: required key '{key}' is missing")
    return d[key]


def load_package(root: str | os.PathLike[str], *, verify: bool = False) -> ModelPackage:
    """Parse ``root/model.json``. With ``verify=True`` also check every file's SHA-256."""
    root = Path(root)
    mj = root / "model.json"
    if not mj.is_file():
        raise PackageError(f"{root}: no model.json; a model package is a folder with model.json")
    try:
        raw = json.loads(mj.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(f"{mj}: cannot be read as JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise PackageError(f"{mj}: top level must be an object, got {type(raw).__name__}")
    where = str(mj)
    try:
        labels = [
            LabelSpec(int(lab["value"]), str(lab["name"]), tuple(int(c) for c in lab["color"]),  # type: ignore[arg-type]
                      _caution(lab, where))
            for lab in _req(raw, "labels", where)
        ]
        inp = dict(_req(raw, "input", where))
        window = inp.get("window", {})
        inplane = inp.get("inplane", {"policy": "spacing", "spacing_mm": 1.4})
        spec = InputSpec(
            channels=int(inp.get("channels", 1)),
            layout=str(inp.get("layout", "NCHW")),
            window_center=float(window.get("center", -600.0)),
            window_width=float(window.get("width", 1500.0)),
            normalize=str(inp.get("normalize", "0..1")),
            inplane_policy=str(inplane.get("policy", "spacing")),
            spacing_mm=float(inplane["spacing_mm"]) if inplane.get("spacing_mm") is not None else None,
            size=tuple(int(s) for s in inplane["size"]) if inplane.get("size") else None,  # type: ignore[arg-type]
            divisible_by=int(inp.get("divisible_by", 16)),
            orientation=str(inp.get("orientation", "LPS-axial")),
            pad_value_hu=float(inp.get("pad_value_hu", -1024.0)),
        )
        files: dict[str, FileSpec] = {}
        for kind, f in dict(_req(raw, "files", where)).items():
            rel = Path(str(_req(f, "path", f"{where} files.{kind}")))
            if rel.is_absolute() or ".." in rel.parts:
                raise PackageError(f"{where}: files.{kind}.path must be inside the package, got {rel}")
            files[kind] = FileSpec(kind, root / rel, str(_req(f, "sha256", f"{where} files.{kind}")).lower())
        pkg = ModelPackage(
            root=root,
            name=str(_req(raw, "name", where)),
            version=str(raw.get("version", "0")),
            task=str(raw.get("task", "segmentation")),
            modalities=[str(m) for m in raw.get("modalities", ["CT"])],
            labels=labels,
            input=spec,
            files=files,
            raw=raw,
        )
    except PackageError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PackageError(f"{where}: malformed model.json ({type(exc).__name__}: {exc})") from exc
    if spec.channels < 1 or spec.window_width <= 0 or spec.divisible_by < 1:
        raise PackageError(f"{where}: input spec out of range (channels, window width, divisible_by)")
    if not labels or labels[0].value != 0:
        raise PackageError(f"{where}: labels must start with value 0 (background)")
    if "onnx" not in files:
        raise PackageError(f"{where}: files.onnx is required")
    if verify:
        pkg.verify()
    return pkg


def discover_packages(extra_dirs: list[Path] | None = None) -> tuple[list[ModelPackage], list[str]]:
    """All packages in the shipped and user folders. Returns (packages, problems)."""
    dirs = [shipped_models_dir(), user_models_dir(), *(extra_dirs or [])]
    found: list[ModelPackage] = []
    problems: list[str] = []
    seen: set[str] = set()
    for d in dirs:
        if not d.is_dir():
            continue
        for sub in sorted(p for p in d.iterdir() if p.is_dir()):
            if not (sub / "model.json").is_file():
                continue
            try:
                pkg = load_package(sub)
            except PackageError as exc:
                problems.append(str(exc))
                continue
            if pkg.name in seen:
                problems.append(f"{sub}: duplicate model name '{pkg.name}' ignored")
                continue
            seen.add(pkg.name)
            found.append(pkg)
    return found, problems


def find_package(name: str | None = None, *, extra_dirs: list[Path] | None = None) -> ModelPackage:
    """The package called ``name`` (or the first shipped one when ``name`` is None)."""
    pkgs, problems = discover_packages(extra_dirs)
    if name is None:
        if not pkgs:
            raise PackageError("no model package installed" + (f" ({'; '.join(problems)})" if problems else ""))
        return pkgs[0]
    for p in pkgs:
        if p.name == name:
            return p
    names = ", ".join(p.name for p in pkgs) or "none"
    bad = [p for p in problems if name in p]  # e.g. a malformed package of that name
    raise PackageError(
        f"no model package named '{name}' (installed: {names})"
        + (f"; unusable: {'; '.join(bad)}" if bad else "")
    )
