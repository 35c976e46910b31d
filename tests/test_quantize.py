"""Static INT8 QDQ quantisation of a tiny exported model: valid graph, runs in ORT, verified vs FP32."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from inference.export import export_onnx, parity_inputs  # noqa: E402
from inference.networks import UNet2D  # noqa: E402
from inference.quantize import INT8Error, ort_session, quantize_int8, verify_int8  # noqa: E402


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("q")
    torch.manual_seed(1)
    m = UNet2D(1, 4, base=4, depth=4).eval()
    with torch.no_grad():  # a confident head, so argmax masks are stable under quantisation noise
        m.head.bias.copy_(torch.tensor([4.0, 0.0, 0.0, -4.0]))
    fp32 = export_onnx(m, d / "m.onnx")
    cal = parity_inputs(64, 64, 8, 1, seed=0)
    int8 = quantize_int8(fp32, d / "m.int8.onnx", cal)
    return fp32, int8


def test_int8_graph_is_qdq_and_smaller(pair) -> None:
    fp32, int8 = pair
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert int8.stat().st_size < 0.6 * fp32.stat().st_size


def test_int8_runs_in_ort_on_other_sizes(pair, tmp_path, monkeypatch) -> None:
    _, int8 = pair
    x = parity_inputs(48, 80, 2, 1, seed=3)
    y = ort_session(int8).run(["logits"], {"image": x})[0]
    assert y.shape == (2, 4, 48, 80) and np.isfinite(y).all()


def test_verify_int8_reports_dice(pair) -> None:
    fp32, int8 = pair
    res = verify_int8(fp32, int8, parity_inputs(64, 64, 4, 1, seed=9))
    assert res["pixel_agreement"] > 0.99 and res["dice"]["1"] is None  # label 1 never wins here
    assert res["slices"] == 4


def test_verify_int8_raises_on_disagreement(pair, tmp_path) -> None:
    fp32, int8 = pair
    g = onnx.load(str(fp32))
    for init in g.graph.initializer:
        if list(init.dims) == [4]:
            init.CopyFrom(onnx.numpy_helper.from_array(np.array([0, 9, 0, 0], np.float32), init.name))
    other = tmp_path / "other.onnx"
    onnx.save(g, str(other))
    with pytest.raises(INT8Error, match="below"):
        verify_int8(fp32, quantize_int8(other, tmp_path / "o8.onnx", parity_inputs(64, 64, 4, 1, 0)),
                    parity_inputs(64, 64, 2, 1, seed=2), labels=(0, 1))


def test_bad_calibration_array_is_named(pair, tmp_path) -> None:
    fp32, _ = pair
    with pytest.raises(ValueError, match="float32"):
        quantize_int8(fp32, tmp_path / "x.onnx", np.zeros((2, 64, 64)))


def _consumers(model, tensor: str) -> list:
    return [n for n in model.graph.node if tensor in n.input]


def test_first_conv_reads_the_float_image_by_default(pair, tmp_path) -> None:
    fp32, int8 = pair
    m = onnx.load(str(int8))
    first = _consumers(m, "image")
    assert [n.op_type for n in first] == ["Conv"]  # no QuantizeLinear on the input image
    inits = {t.name for t in m.graph.initializer}
    assert first[0].input[1] in inits  # float weights, not DequantizeLinear output
    q_path = quantize_int8(fp32, tmp_path / "q.onnx", parity_inputs(64, 64, 8, 1, seed=0), keep_input_fp32=False)
    q = onnx.load(str(q_path))
    assert [n.op_type for n in _consumers(q, "image")] == ["QuantizeLinear"]
    # agreement not reduced beyond noise (both ~1e-5 on this random tiny model; the lesion gain on the
    # real model is measured in docs/int8_research.md)
    held = parity_inputs(64, 64, 4, 1, seed=11)
    ref = _logits(fp32, held)
    err = {p: np.abs(ref - _logits(p, held)).mean() for p in (int8, q_path)}
    assert err[int8] < 1.5 * err[q_path], err


def _int32_biases(path) -> dict:
    return {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer
            if t.data_type == onnx.TensorProto.INT32}


def _logits(path, x):
    return ort_session(path, 1).run(["logits"], {"image": x})[0].astype(np.float64)


def test_bias_correction_removes_the_mean_logit_shift(pair, tmp_path) -> None:
    fp32, _ = pair
    cal = parity_inputs(64, 64, 8, 1, seed=0)
    plain = quantize_int8(fp32, tmp_path / "plain.onnx", cal)
    bc = quantize_int8(fp32, tmp_path / "bc.onnx", cal, bias_correction=True, bias_correction_slices=8)
    b0, b1 = _int32_biases(plain), _int32_biases(bc)
    assert b0.keys() == b1.keys() and any((b0[k] != b1[k]).any() for k in b0)  # biases changed, nothing else added
    ref = _logits(fp32, cal)
    shift = {p: np.abs((ref - _logits(p, cal)).mean((0, 2, 3))).max() for p in (plain, bc)}
    assert shift[bc] < 0.5 * shift[plain], shift  # per-channel mean error on the calibration data
    held = parity_inputs(64, 64, 4, 1, seed=11)
    ref_h = _logits(fp32, held)
    mad = {p: np.abs(ref_h - _logits(p, held)).mean() for p in (plain, bc)}
    assert mad[bc] < 1.5 * mad[plain], mad  # no worse on other inputs (beyond noise: both ~1e-5 here)
    res = verify_int8(fp32, bc, held)
    assert res["pixel_agreement"] > 0.99


def test_bad_options_are_named(pair, tmp_path) -> None:
    fp32, _ = pair
    cal = parity_inputs(64, 64, 2, 1, 0)
    with pytest.raises(ValueError, match="fp32_nodes"):
        quantize_int8(fp32, tmp_path / "x.onnx", cal, fp32_nodes=["no_such_node"])
    with pytest.raises(ValueError, match="calibrate_method"):
        quantize_int8(fp32, tmp_path / "x.onnx", cal, calibrate_method="kl")
