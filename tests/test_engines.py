"""ONNX Runtime / PyTorch engines, and the tiny real models other pipeline tests build in tmp_path.

Inference-level tests (STYLE.md): every model here is a real ONNX file run by a real
onnxruntime session; the torch twin is a real ``inference.networks.UNet2D``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from inference.jobs import Cancelled
from inference.onnx_engine import EngineError, OnnxEngine, available_providers, resolve_providers
from inference.package import PackageError, load_package
from inference.pipeline import clear_engine_cache, make_engine

LABELS = [
    {"value": 0, "name": "background", "color": [0, 0, 0]},
    {"value": 1, "name": "right lung", "color": [220, 80, 60]},
    {"value": 2, "name": "left lung", "color": [60, 120, 220]},
    {"value": 3, "name": "lesion", "color": [250, 210, 40]},
]
DOMAIN = {
    "modalities": ["CT"],
    "body_parts": ["CHEST", "LUNG", "THORAX", ""],
    "hu_range": [-1100, 3100],
    "pixel_spacing_mm": [0.4, 1.2],
    "fov_mm": [250, 550],
    "orientations": ["axial"],
}
# a domain every synthetic test series fits (GUI tests that are not about the domain check)
WIDE_DOMAIN = {**DOMAIN, "pixel_spacing_mm": [0.1, 5.0], "fov_mm": [10, 1000]}


# ---------------------------------------------------------------------------------- model builders
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_package(
    root: Path,
    files: dict[str, Path],
    *,
    input_spec: dict[str, Any] | None = None,
    labels: list[dict[str, Any]] | None = None,
    postprocess: dict[str, Any] | None = None,
    torch_spec: dict[str, Any] | None = None,
    domain: dict[str, Any] | None = None,
) -> Path:
    """Write ``root/model.json`` declaring ``files`` (kind → path inside root) with real
    SHA-256s."""
    spec = {
        "channels": 1,
        "layout": "NCHW",
        "window": {"center": -600, "width": 1500},
        "normalize": "0..1",
        "inplane": {"policy": "spacing", "spacing_mm": 1.0},
        "divisible_by": 16,
        "orientation": "LPS-axial",
        "pad_value_hu": -1024,
    }
    spec.update(input_spec or {})
    mj = {
        "schema": 1,
        "name": root.name,
        "version": "0.0.1",
        "task": "segmentation",
        "modalities": ["CT"],
        "labels": labels or LABELS,
        "input": spec,
        "domain": domain or DOMAIN,
        "files": {k: {"path": p.name, "sha256": _sha(p)} for k, p in files.items()},
        "output": {"kind": "logits", "activation": "softmax"},
        "postprocess": postprocess if postprocess is not None else {},
    }
    if torch_spec:
        mj["torch"] = torch_spec
    (root / "model.json").write_text(json.dumps(mj, indent=1), encoding="utf-8")
    return root


def build_band_onnx(path: Path, centers: list[float], channels: int = 1) -> Path:
    """A real ONNX predictor with known output: logit_k = -(x_c - centers[k])², x_c the centre
    channel.

    So the argmax is the label whose centre is nearest to the normalised input value: exact
    expectations for resampling/orientation/stitching tests. Dynamic N, H, W.
    """
    k = len(centers)
    c = channels // 2
    nodes = [
        helper.make_node("Slice", ["x", "c0", "c1", "ax"], ["xc"]),
        helper.make_node("Sub", ["xc", "m"], ["d"]),
        helper.make_node("Mul", ["d", "d"], ["d2"]),
        helper.make_node("Neg", ["d2"], ["logits"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([c], np.int64), "c0"),
        numpy_helper.from_array(np.array([c + 1], np.int64), "c1"),
        numpy_helper.from_array(np.array([1], np.int64), "ax"),
        numpy_helper.from_array(np.array(centers, np.float32).reshape(1, k, 1, 1), "m"),
    ]
    graph = helper.make_graph(
        nodes,
        "band",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k, "H", "W"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def build_slow_onnx(path: Path, layers: int = 300, ch: int = 16) -> Path:
    """A real ONNX model with many Conv nodes (seconds per 512² run), to interrupt with
    terminate."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w_in"], ["h0"], pads=[1, 1, 1, 1])]
    inits = [
        numpy_helper.from_array(
            (rng.standard_normal((ch, 1, 3, 3)) * 0.1).astype(np.float32), "w_in"
        )
    ]
    for i in range(layers):
        inits.append(
            numpy_helper.from_array(
                (rng.standard_normal((ch, ch, 3, 3)) * 0.02).astype(np.float32), f"w{i}"
            )
        )
        nodes.append(helper.make_node("Conv", [f"h{i}", f"w{i}"], [f"h{i + 1}"], pads=[1, 1, 1, 1]))
    inits.append(
        numpy_helper.from_array(
            (rng.standard_normal((4, ch, 1, 1)) * 0.1).astype(np.float32), "w_out"
        )
    )
    nodes.append(helper.make_node("Conv", [f"h{layers}", "w_out"], ["logits"]))
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4, "H", "W"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def band_package(root: Path, centers: tuple[float, ...] = (0.0, 0.5, 1.0), **kw: Any) -> Path:
    """A package around :func:`build_band_onnx` (labels = one per centre)."""
    root.mkdir(parents=True, exist_ok=True)
    channels = int(kw.get("input_spec", {}).get("channels", 1))
    onnx_path = build_band_onnx(root / "model.onnx", list(centers), channels)
    labels = kw.pop("labels", None) or [
        {
            "value": i,
            "name": ["background", "right lung", "left lung", "lesion"][i] if i < 4 else f"l{i}",
            "color": [i * 40, 0, 0],
        }
        for i in range(len(centers))
    ]
    return write_package(root, {"onnx": onnx_path}, labels=labels, **kw)


def tiny_unet_package(root: Path, *, base: int = 4, depth: int = 2, int8: bool = True) -> Path:
    """A real (untrained, seeded) UNet2D: torch weights, ONNX export (dynamic N/H/W), optional
    INT8."""
    import torch

    from inference.networks import UNet2D

    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    args = {
        "in_channels": 1,
        "num_classes": 4,
        "base": base,
        "depth": depth,
        "norm": "batch",
        "up": "transpose",
    }
    net = UNet2D(**args).eval()
    torch.save(net.state_dict(), root / "model.pt")
    onnx_path = root / "model.onnx"
    torch.onnx.export(
        net,
        torch.zeros(1, 1, 32, 32),
        str(onnx_path),
        input_names=["image"],
        output_names=["logits"],
        opset_version=17,
        dynamo=False,
        dynamic_axes={"image": {0: "N", 2: "H", 3: "W"}, "logits": {0: "N", 2: "H", 3: "W"}},
    )
    files = {"onnx": onnx_path, "torch": root / "model.pt"}
    if int8:
        from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

        class _Reader(CalibrationDataReader):
            def __init__(self) -> None:
                r = np.random.default_rng(1)
                self.items = iter(
                    [{"image": r.random((1, 1, 32, 32), dtype=np.float32)} for _ in range(4)]
                )

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self.items, None)

        quantize_static(
            str(onnx_path),
            str(root / "model.int8.onnx"),
            _Reader(),
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        files["onnx_int8"] = root / "model.int8.onnx"
    return write_package(
        root,
        files,
        input_spec={"divisible_by": 2**depth},
        torch_spec={
            "architecture": "UNet2D",
            "args": args,
            "gradcam_target_layer": f"decoder.{depth - 1}",
        },
    )


@pytest.fixture(scope="module")
def tiny_unet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("inference.networks")
    return tiny_unet_package(tmp_path_factory.mktemp("pkg") / "tiny-unet")


# ---------------------------------------------------------------------------------- tests
class TestProviders:
    def test_cpu_always_listed(self) -> None:
        provs = available_providers()
        assert "CPUExecutionProvider" in provs
        import onnxruntime as ort

        assert set(ort.get_available_providers()) <= set(provs)

    def test_resolve(self) -> None:
        assert resolve_providers(None) == ["CPUExecutionProvider"]
        assert resolve_providers("cpu") == ["CPUExecutionProvider"]
        assert resolve_providers("auto")[-1] == "CPUExecutionProvider"

    def test_missing_provider_is_a_clear_error(self) -> None:
        if "CUDAExecutionProvider" in available_providers():
            pytest.skip("CUDA is installed here")
        with pytest.raises(
            EngineError, match="CUDAExecutionProvider.*not available.*available: .*CPUExecution"
        ):
            resolve_providers("cuda")


class TestOnnxEngine:
    def test_band_model_output_and_options(self, tmp_path: Path) -> None:
        path = build_band_onnx(tmp_path / "m.onnx", [0.0, 0.5, 1.0])
        eng = OnnxEngine(path, graph_optimization="basic", intra_op_threads=1)
        x = np.linspace(0, 1, 2 * 1 * 16 * 24, dtype=np.float32).reshape(2, 1, 16, 24)
        y = eng(x)
        assert y.shape == (2, 3, 16, 24) and y.dtype == np.float32
        np.testing.assert_allclose(y[:, 1], -((x[:, 0] - 0.5) ** 2), rtol=1e-6, atol=1e-7)
        d = eng.describe()
        assert d["providers"] == ["CPUExecutionProvider"] and d["graph_optimization"] == "basic"
        assert d["intra_op_threads"] == 1 and d["allow_spinning"] is False

    def test_spec_mismatch_raises(self, tmp_path: Path) -> None:
        path = build_band_onnx(tmp_path / "m.onnx", [0.0, 1.0], channels=3)
        with pytest.raises(
            EngineError, match="takes 3 channels but model.json input.channels is 1"
        ):
            OnnxEngine(path, expected_channels=1)
        with pytest.raises(EngineError, match="has 2 classes but model.json declares 4"):
            OnnxEngine(path, expected_classes=4)

    def test_bad_option_and_file(self, tmp_path: Path) -> None:
        path = build_band_onnx(tmp_path / "m.onnx", [0.0, 1.0])
        with pytest.raises(EngineError, match="graph_optimization must be one of"):
            OnnxEngine(path, graph_optimization="max")
        junk = tmp_path / "junk.onnx"
        junk.write_bytes(b"not a model")
        with pytest.raises(EngineError, match="junk.onnx: ONNX Runtime cannot load"):
            OnnxEngine(junk)

    def test_terminate_interrupts_a_blocking_run(self, tmp_path: Path) -> None:
        eng = OnnxEngine(build_slow_onnx(tmp_path / "slow.onnx"), intra_op_threads=1)
        x = np.zeros((1, 1, 384, 384), np.float32)
        t0 = time.perf_counter()
        eng(np.zeros((1, 1, 32, 32), np.float32))  # warm-up
        ended: dict[str, Any] = {}

        def work() -> None:
            try:
                eng(x)
                ended["how"] = "finished"
            except Cancelled:
                ended["how"] = "cancelled"
            ended["t"] = time.perf_counter()

        th = threading.Thread(target=work)
        t0 = time.perf_counter()
        th.start()
        time.sleep(0.3)
        t_cancel = time.perf_counter()
        eng.terminate()
        th.join(10)
        assert ended["how"] == "cancelled", (
            "the run finished before terminate took effect (model too fast?)"
        )
        assert ended["t"] - t_cancel < 1.0
        with pytest.raises(Cancelled):
            eng(x)  # refused until reset
        eng.reset()
        assert eng(np.zeros((1, 1, 16, 16), np.float32)).shape == (1, 4, 16, 16)
        assert t0 > 0


class TestMakeEngine:
    def test_all_engines_agree(self, tiny_unet: Path) -> None:
        pkg = load_package(tiny_unet)
        x = np.random.default_rng(3).random((2, 1, 48, 64), dtype=np.float32)
        fp32 = make_engine(pkg, "onnx", threads=1, cache=False)(x)
        tor = make_engine(pkg, "torch", cache=False)(x)
        int8 = make_engine(pkg, "onnx-int8", threads=1, cache=False)(x)
        assert fp32.shape == tor.shape == int8.shape == (2, 4, 48, 64)
        assert np.abs(fp32 - tor).max() < 1e-4
        # INT8 is an approximation of the same network, not noise: highly correlated logits
        assert np.corrcoef(fp32.ravel(), int8.ravel())[0, 1] > 0.9

    def test_cached_once(self, tiny_unet: Path) -> None:
        clear_engine_cache()
        pkg = load_package(tiny_unet)
        a = make_engine(pkg, "onnx", threads=1)
        assert make_engine(pkg, "onnx", threads=1) is a
        assert make_engine(pkg, "onnx", threads=2) is not a
        clear_engine_cache()

    def test_hash_checked_before_loading(self, tmp_path: Path) -> None:
        root = band_package(tmp_path / "p")
        pkg = load_package(root)
        with open(root / "model.onnx", "ab") as f:
            f.write(b"\0")
        with pytest.raises(PackageError, match="model.onnx has SHA-256 .* refusing to load"):
            make_engine(pkg, "onnx", cache=False)

    def test_missing_kind(self, tmp_path: Path) -> None:
        pkg = load_package(band_package(tmp_path / "p"))
        with pytest.raises(PackageError, match="has no onnx-int8 file"):
            make_engine(pkg, "onnx-int8")
        with pytest.raises(PackageError, match="engine must be one of"):
            make_engine(pkg, "tensorflow")


def test_segment_volume_with_each_engine(tiny_unet: Path) -> None:
    """The same (untrained) UNet through the whole pipeline with ONNX FP32, PyTorch and INT8."""
    from types import SimpleNamespace

    from inference.pipeline import segment_volume
    from inference.preprocess_input import ArrayVolume

    pkg = load_package(tiny_unet)
    rng = np.random.default_rng(5)
    vox = rng.integers(-1000, 300, (3, 300, 300)).astype(np.int16)
    vol = ArrayVolume(
        vox, (3.0, 0.9, 0.9), np.eye(3), SimpleNamespace(modality="CT", body_part="CHEST")
    )
    res = {k: segment_volume(vol, pkg, engine=k, threads=1) for k in ("onnx", "torch", "onnx-int8")}
    assert res["onnx"].engine["providers"] == ["CPUExecutionProvider"]
    assert (
        res["torch"].engine["engine"] == "torch" and res["onnx-int8"].model["file"] == "onnx_int8"
    )
    assert res["onnx"].model["sha256"] == pkg.files["onnx"].sha256
    agree = (res["onnx"].labels_raw == res["torch"].labels_raw).mean()
    assert agree > 0.999
    diff = np.abs(res["onnx"].probabilities.astype(int) - res["torch"].probabilities.astype(int))
    assert diff.max() <= 1  # same probabilities up to uint8 rounding


def test_cached_engine_usable_after_a_cancelled_job(tmp_path: Path) -> None:
    pkg = load_package(band_package(tmp_path / "p"))
    clear_engine_cache()
    eng = make_engine(pkg, "onnx", threads=1)
    eng.terminate()
    with pytest.raises(Cancelled):
        eng(np.zeros((1, 1, 16, 16), np.float32))
    again = make_engine(pkg, "onnx", threads=1)
    assert again is eng and again(np.zeros((1, 1, 16, 16), np.float32)).shape == (1, 3, 16, 16)
    clear_engine_cache()
