"""Hostile model packages: each is refused with a clear ``PackageError`` (never another exception)
by ``load_package(verify=True)``, the engine factory, package discovery (CLI and GUI) and the
``segment`` / ``model validate`` commands (exit code 2, one-line message, no traceback)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from inference.package import PackageError, discover_packages, load_package, shipped_models_dir
from inference.pipeline import clear_engine_cache, make_engine
from tests.test_engines import band_package, write_package

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(120)


def _good(tmp_path: Path, name: str = "hostile") -> Path:
    return band_package(tmp_path / name, (0.0, 0.5, 1.0))


def _edit(root: Path, fn) -> Path:
    mj = root / "model.json"
    d = json.loads(mj.read_text())
    fn(d)
    mj.write_text(json.dumps(d))
    return root


def _refused(root: Path, match: str) -> PackageError:
    """load_package(verify=True) and then make_engine refuse ``root`` with a PackageError."""
    clear_engine_cache()
    try:
        pkg = load_package(root, verify=True)
    except PackageError as exc:
        assert str(root) in str(exc) or root.name in str(exc), str(exc)
        assert match.lower() in str(exc).lower(), str(exc)
        return exc
    with pytest.raises(PackageError) as ei:
        make_engine(pkg, "onnx", cache=False)
    assert match.lower() in str(ei.value).lower(), str(ei.value)
    return ei.value


def test_good_package_loads(tmp_path):
    pkg = load_package(_good(tmp_path), verify=True)
    eng = make_engine(pkg, "onnx", cache=False)
    out = eng(np.zeros((1, 1, 16, 16), np.float32))
    assert out.shape == (1, 3, 16, 16)


def test_wrong_hash(tmp_path):
    root = _good(tmp_path)
    with open(root / "model.onnx", "ab") as f:
        f.write(b"\0")  # one byte appended: still a loadable protobuf, different hash
    exc = _refused(root, "SHA-256")
    assert "refusing" in str(exc) or "reinstall" in str(exc).lower()


def test_hash_checked_again_by_the_engine_factory(tmp_path):
    """A file swapped after load_package(verify=True) is caught by make_engine (every call)."""
    root = _good(tmp_path)
    pkg = load_package(root, verify=True)
    with open(root / "model.onnx", "ab") as f:
        f.write(b"\0")
    clear_engine_cache()
    with pytest.raises(PackageError, match="SHA-256"):
        make_engine(pkg, "onnx", cache=False)


def test_missing_file(tmp_path):
    root = _good(tmp_path)
    (root / "model.onnx").unlink()
    _refused(root, "missing")


def test_missing_model_json(tmp_path):
    root = _good(tmp_path)
    (root / "model.json").unlink()
    _refused(root, "no model.json")


BAD_JSON: dict[str, Any] = {
    "not json": "{ this is not json",
    "binary": b"\xff\xfe\x00garbage",
    "top-level list": "[1, 2, 3]",
    "empty": "",
}


@pytest.mark.parametrize("what", sorted(BAD_JSON))
def test_model_json_not_parseable(tmp_path, what):
    root = _good(tmp_path)
    v = BAD_JSON[what]
    (root / "model.json").write_bytes(v if isinstance(v, bytes) else v.encode())
    _refused(root, "model.json")


def _set(path: str, value: Any):
    def fn(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        cur = d
        for p in parents:
            cur = cur[p]
        if value is _DEL:
            del cur[last]
        else:
            cur[last] = value

    return fn


_DEL = object()
MALFORMED = {
    "no name": ("name", _DEL, "name"),
    "no labels": ("labels", _DEL, "labels"),
    "no input": ("input", _DEL, "input"),
    "no files": ("files", _DEL, "files"),
    "no onnx path": ("files.onnx.path", _DEL, "path"),
    "no onnx sha256": ("files.onnx.sha256", _DEL, "sha256"),
    "labels not a list": ("labels", "background", "model.json"),
    "label value a word": (
        "labels",
        [{"value": "zero", "name": "bg", "color": [0, 0, 0]}],
        "model.json",
    ),
    "label without color": ("labels", [{"value": 0, "name": "bg"}], "model.json"),
    "labels not from 0": ("labels", [{"value": 1, "name": "x", "color": [1, 1, 1]}], "value 0"),
    "input a list": ("input", [1, 2], "model.json"),
    "channels a word": ("input.channels", "three", "model.json"),
    "channels zero": ("input.channels", 0, "out of range"),
    "window a list": ("input.window", [1, 2], "model.json"),
    "window width negative": ("input.window", {"center": 0, "width": -5}, "out of range"),
    "inplane a number": ("input.inplane", 7, "model.json"),
    "size a word": ("input.inplane", {"policy": "size", "size": "big"}, "model.json"),
    "files a list": ("files", ["model.onnx"], "model.json"),
    "file spec a number": ("files.onnx", 5, "model.json"),
    "path traversal": ("files.onnx.path", "../../../../etc/passwd", "inside the package"),
    "absolute path": ("files.onnx.path", "/etc/passwd", "inside the package"),
    "path a list": ("files.onnx.path", ["a", "b"], "missing"),
    "sha256 wrong": ("files.onnx.sha256", "0" * 64, "SHA-256"),
    "sha256 a number": ("files.onnx.sha256", 12345, "SHA-256"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_model_json(tmp_path, case):
    key, value, match = MALFORMED[case]
    root = _edit(_good(tmp_path), _set(key, value))
    _refused(root, match)


def test_symlink_out_of_the_package_is_only_as_good_as_its_hash(tmp_path):
    """A file path that is a symlink to a file elsewhere still has to match the declared hash."""
    root = _good(tmp_path)
    other = tmp_path / "elsewhere.onnx"
    other.write_bytes(b"not the model")
    (root / "model.onnx").unlink()
    (root / "model.onnx").symlink_to(other)
    _refused(root, "SHA-256")


def _onnx(path: Path, in_shape: list[Any], out_shape: list[Any]) -> Path:
    """A real ONNX graph (Identity-like through ReduceMean/Expand is not needed: a Conv)."""
    c = in_shape[1] if len(in_shape) == 4 else 1
    k = out_shape[1] if len(out_shape) == 4 else 1
    if len(in_shape) == 4:
        w = numpy_helper.from_array(np.ones((k, c, 1, 1), np.float32), "w")
        node = helper.make_node("Conv", ["x", "w"], ["y"])
    else:
        w = numpy_helper.from_array(np.ones((1,), np.float32), "w")
        node = helper.make_node("Mul", ["x", "w"], ["y"])
    g = helper.make_graph(
        [node],
        "spec",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [w],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


@pytest.mark.parametrize(
    "in_shape,out_shape,match",
    [
        (["N", 3, "H", "W"], ["N", 3, "H", "W"], "channels"),  # model.json says 1 channel
        (["N", "H", "W"], ["N", "H", "W"], "rank 4"),  # no channel axis at all
        (["N", 1, "H", "W"], ["N", 5, "H", "W"], "classes"),  # 3 labels declared
    ],
)
def test_onnx_inputs_do_not_match_the_declared_spec(tmp_path, in_shape, out_shape, match):
    root = tmp_path / "mismatch"
    root.mkdir()
    p = _onnx(root / "model.onnx", in_shape, out_shape)
    labels = [{"value": i, "name": f"l{i}", "color": [i, i, i]} for i in range(3)]
    write_package(root, {"onnx": p}, labels=labels)
    _refused(root, match)


@pytest.mark.parametrize(
    "content", [b"", b"\x08\x01garbage protobuf", b"PK\x03\x04 a zip", b"\x89PNG\r\n"]
)
def test_file_that_is_not_onnx(tmp_path, content):
    root = tmp_path / "notonnx"
    root.mkdir()
    (root / "model.onnx").write_bytes(content)
    write_package(root, {"onnx": root / "model.onnx"})
    _refused(root, "model.onnx")


def test_torch_file_that_is_not_a_checkpoint(tmp_path):
    """The torch engine of a package whose model.pt is garbage (hash correct): PackageError."""
    root = _good(tmp_path)
    (root / "model.pt").write_bytes(b"definitely not a torch checkpoint")
    d = json.loads((root / "model.json").read_text())
    write_package(
        root,
        {"onnx": root / "model.onnx", "torch": root / "model.pt"},
        labels=d["labels"],
        torch_spec={"architecture": "UNet2D", "args": {}},
    )
    pkg = load_package(root, verify=True)
    clear_engine_cache()
    with pytest.raises(PackageError):
        make_engine(pkg, "torch", cache=False)


def test_discovery_lists_problems_and_keeps_good_packages(tmp_path):
    user = Path(os.environ["CLINICAL_VIEWER_MODELS"])
    user.mkdir(parents=True, exist_ok=True)
    _good(user, "good-one")
    bad = _good(user, "bad-json")
    (bad / "model.json").write_text("{")
    trav = _edit(_good(user, "traversal"), _set("files.onnx.path", "../good-one/model.onnx"))
    pkgs, problems = discover_packages()
    names = {p.name for p in pkgs}
    assert "good-one" in names and "bad-json" not in names and "traversal" not in names
    assert any("bad-json" in p and "JSON" in p for p in problems), problems
    assert any(str(trav) in p and "inside the package" in p for p in problems), problems


def _cli(*args: str, env_models: Path, timeout: int = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, CLINICAL_VIEWER_MODELS=str(env_models), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "viewer.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    from viewer.dicom.synth import write_series

    d = tmp_path_factory.mktemp("ct")
    write_series(d, np.full((2, 32, 32), -800.0), spacing=(2.0, 1.0, 1.0))
    return d


def test_segment_cli_refuses_tampered_package(tmp_path, series):
    models = tmp_path / "models"
    root = _good(models, "tampered")
    with open(root / "model.onnx", "ab") as f:
        f.write(b"\0")
    r = _cli(
        "segment",
        str(series),
        "--model",
        "tampered",
        "--force",
        "--out",
        str(tmp_path / "out"),
        env_models=models,
    )
    assert r.returncode == 2, r.stderr
    assert "SHA-256" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.nii*"))


def test_segment_cli_names_a_malformed_package(tmp_path, series):
    models = tmp_path / "models"
    root = _good(models, "broken")
    (root / "model.json").write_text('{"name": "broken", "labels": 5}')
    r = _cli(
        "segment",
        str(series),
        "--model",
        "broken",
        "--force",
        "--out",
        str(tmp_path / "out"),
        env_models=models,
    )
    assert r.returncode == 2, r.stderr
    assert "broken" in r.stderr and "Traceback" not in r.stderr
    assert "malformed model.json" in r.stderr  # the reason, not only "not found"


def test_model_validate_cli_refuses_bad_package(tmp_path):
    root = _edit(_good(tmp_path), _set("files.onnx.path", "../../x.onnx"))
    r = _cli("model", "validate", "--package", str(root), env_models=tmp_path / "none")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "inside the package" in r.stderr and "Traceback" not in r.stderr


def test_gui_model_discovery_shows_the_problem(qtbot, tmp_path):
    from viewer.qt.main_window import MainWindow

    user = Path(os.environ["CLINICAL_VIEWER_MODELS"])
    user.mkdir(parents=True, exist_ok=True)
    bad = _good(user, "gui-bad")
    (bad / "model.json").write_text("[]")
    w = MainWindow(recording_errors=True)
    qtbot.addWidget(w)
    try:
        text = w.segmentation.problems.text()
        assert "gui-bad" in text and "top level" in text, text
        assert "gui-bad" not in [
            w.segmentation.model_box.itemData(i) for i in range(w.segmentation.model_box.count())
        ]
        assert not w.errors.records
    finally:
        w.close()


def test_shipped_package_verifies():
    root = shipped_models_dir() / "lung-ct-unet"
    if not root.is_dir():
        pytest.skip("shipped package absent")
    pkg = load_package(root, verify=True)
    assert pkg.files["onnx"].sha256 and len(pkg.files["onnx"].sha256) == 64
    shutil.disk_usage(root)  # nothing else: verification above read every file
