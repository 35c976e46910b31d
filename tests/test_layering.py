"""DESIGN.md rules 1 and 2, enforced by scanning imports (AST), not by convention."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "PySide2", "shiboken6", "pytestqt")
HEAVY_TOP_LEVEL = ("torch", "torchvision", "pytorch_grad_cam")


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(module, line, at_top_level) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top = set(id(n) for n in tree.body)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name, node.lineno, id(node) in top) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, node.lineno, id(node) in top))
    return out


def _py_files(*dirs: str) -> list[Path]:
    files = []
    for d in dirs:
        files.extend(p for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(files)


@pytest.mark.parametrize("path", _py_files("viewer", "inference", "bench"), ids=lambda p: str(p.relative_to(ROOT)))
def test_qt_only_under_viewer_qt(path: Path) -> None:
    rel = path.relative_to(ROOT)
    if rel.parts[:2] == ("viewer", "qt") or rel.parts[0] == "bench":
        return
    bad = [(m, ln) for m, ln, _ in _imports(path) if m.split(".")[0] in QT_MODULES]
    assert not bad, f"{rel} imports Qt outside viewer/qt/: {bad}"


@pytest.mark.parametrize("path", _py_files("inference"), ids=lambda p: str(p.relative_to(ROOT)))
def test_inference_never_imports_viewer(path: Path) -> None:
    bad = [(m, ln) for m, ln, _ in _imports(path) if m.split(".")[0] == "viewer"]
    assert not bad, f"{path.relative_to(ROOT)} imports viewer: {bad}"


@pytest.mark.parametrize("path", _py_files("viewer", "inference"), ids=lambda p: str(p.relative_to(ROOT)))
def test_torch_is_imported_lazily(path: Path) -> None:
    """torch / grad-cam cost seconds to import: only inside functions (DESIGN.md rule 2)."""
    rel = path.relative_to(ROOT)
    if rel.name in {"networks.py", "train.py", "gradcam.py", "export.py", "quantize.py", "ddp.py"}:
        return  # torch-only modules, themselves imported lazily
    bad = [(m, ln) for m, ln, top in _imports(path) if top and m.split(".")[0] in HEAVY_TOP_LEVEL]
    assert not bad, f"{rel} imports torch at module level: {bad}"


def test_data_layer_imports_without_qt_or_torch() -> None:
    """Import the pure layer in a fresh interpreter and check neither Qt nor torch came along."""
    import subprocess
    import sys

    code = (
        "import sys, importlib, pkgutil\n"
        "import viewer, inference\n"
        "mods = ['viewer.volume', 'viewer.cli', 'inference.package', 'inference.jobs']\n"
        "for name in ['viewer.dicom', 'viewer.display', 'viewer.masks', 'viewer.preprocess', "
        "'inference.pipeline', 'inference.compare', 'inference.onnx_engine']:\n"
        "    try:\n        importlib.util.find_spec(name) and mods.append(name)\n"
        "    except ModuleNotFoundError:\n        pass\n"
        "for m in mods: importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'torch')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
