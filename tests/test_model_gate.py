"""bench/model_gate.py: the round-3 ship gate as code reproduces the verdicts recorded in rounds 3 and 4."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("model_gate", ROOT / "bench" / "model_gate.py")
model_gate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(model_gate)  # type: ignore[union-attr]


def _summary(post, hits, in_box, vox_4dct, abdomen):
    s = {n: {"post": p, "lesion_vox_raw": 0} for n, p in zip(("B70f", "B40f", "4dct"), post, strict=True)}
    for n, h, f in zip(("B70f", "B40f"), hits, in_box, strict=True):
        s[n].update(hits=h, in_box=f)
    s["4dct"]["lesion_vox_raw"] = vox_4dct
    s["abdomen_ml_post"] = abdomen
    return s


# docs/model.md, Round 3 (1.1.0 = baseline)
BASE = _summary((0.9679, 0.9696, 0.9748), ("3/8", "4/10"), (0.4445, 0.4238), 34583, 6.25)
R3C = _summary((0.9677, 0.9696, 0.9765), ("7/8", "9/10"), (0.2645, 0.3002), 20958, 5.78)
R3D = _summary((0.9663, 0.9682, 0.9752), ("7/8", "8/10"), (0.4768, 0.5206), 12679, 9.77)
R3E = _summary((0.9662, 0.9681, 0.9755), ("7/8", "8/10"), (0.3985, 0.4540), 12122, 5.45)
# docs/model_gate_r4.md
R4B = _summary((0.9665, 0.9680, 0.9760), ("6/8", "7/10"), (0.1896, 0.1936), 12920, 10.51)
R4C = _summary((0.9674, 0.9689, 0.9756), ("7/8", "9/10"), (0.2386, 0.2770), 18416, 14.06)
R5 = _summary((0.9655, 0.9668, 0.9746), ("7/8", "8/10"), (0.3512, 0.3882), 13317, 5.54)


def _failed(items):
    return sorted(item for item, ok, _ in items if not ok)


def test_round3_verdicts() -> None:
    assert _failed(model_gate.gate(R3C, BASE)) == ["3 lesion fraction in boxes B40f", "3 lesion fraction in boxes B70f"]
    assert _failed(model_gate.gate(R3D, BASE)) == ["2 abdomen lung mL"]
    assert _failed(model_gate.gate(R3E, BASE)) == ["3 lesion fraction in boxes B70f"]
    assert _failed(model_gate.gate(R5, BASE)) == ["3 lesion fraction in boxes B40f", "3 lesion fraction in boxes B70f"]
    for r4 in (R4B, R4C):
        assert _failed(model_gate.gate(r4, BASE)) == ["2 abdomen lung mL", "3 lesion fraction in boxes B40f",
                                                      "3 lesion fraction in boxes B70f"]
    assert _failed(model_gate.gate(BASE, BASE)) == ["3 lesion fraction in boxes B40f", "3 lesion fraction in boxes B70f",
                                                    "3 tumour slices hit B40f", "3 tumour slices hit B70f"]


def test_a_better_candidate_passes_and_model_json_items(tmp_path) -> None:
    good = _summary((0.9690, 0.9700, 0.9750), ("6/8", "7/10"), (0.60, 0.55), 9000, 6.0)
    mj = {"validation": {"synthetic_heldout": {"onnx_fp32": {"dice": {"1": 0.982, "2": 0.981, "3": 0.7}}}},
          "parity": {"onnx_vs_torch": {"min_dice": {"1": 1.0, "2": 1.0, "3": 1.0}}, "int8_vs_fp32": {"dice": {"1": 0.999, "2": 0.999, "3": 0.995}}}}
    assert _failed(model_gate.gate(good, BASE, model_json=mj)) == []
    mj["parity"]["int8_vs_fp32"]["dice"]["3"] = 0.983
    assert _failed(model_gate.gate(good, BASE, model_json=mj)) == ["5 ONNX and INT8 parity"]
    # the CLI on summary files: exit code and verdict line
    (tmp_path / "c.json").write_text(json.dumps(good))
    (tmp_path / "b.json").write_text(json.dumps(BASE))
    assert model_gate.main(["--candidate-summary", str(tmp_path / "c.json"), "--baseline-summary", str(tmp_path / "b.json")]) == 0
    (tmp_path / "c.json").write_text(json.dumps(R3E))
    assert model_gate.main(["--candidate-summary", str(tmp_path / "c.json"), "--baseline-summary", str(tmp_path / "b.json")]) == 1
    # rules can be declared in a file (e.g. a looser fraction rule would need to be declared up front)
    (tmp_path / "rules.json").write_text(json.dumps({"tumour_series": ["B40f"]}))
    assert model_gate.main(["--candidate-summary", str(tmp_path / "c.json"), "--baseline-summary",
                            str(tmp_path / "b.json"), "--rules", str(tmp_path / "rules.json")]) == 0


def test_bad_input_is_a_clear_error(tmp_path, capsys) -> None:
    (tmp_path / "b.json").write_text(json.dumps(BASE))
    (tmp_path / "bad.json").write_text("{not json")
    partial = {k: v for k, v in R3E.items() if k != "4dct"}
    (tmp_path / "partial.json").write_text(json.dumps(partial))
    for cand, expect in ((tmp_path / "missing.json", "No such file"), (tmp_path / "bad.json", "Expecting"),
                         (tmp_path / "partial.json", "missing figure '4dct'")):
        code = model_gate.main(["--candidate-summary", str(cand), "--baseline-summary", str(tmp_path / "b.json")])
        err = capsys.readouterr().err
        assert code == 2 and "model_gate: error: bad input" in err and expect in err
