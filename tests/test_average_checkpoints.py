"""inference/average_checkpoints.py: stochastic weight averaging of a run's kept checkpoints."""

from __future__ import annotations

import pytest
import torch

from inference.average_checkpoints import AverageError, average_checkpoints, main
from inference.networks import UNet2D

ARGS = {"in_channels": 1, "num_classes": 4, "base": 4, "depth": 2}


def _ckpt(path, seed: int, step: int, args=ARGS) -> dict:
    torch.manual_seed(seed)
    m = UNet2D(**args)
    m.train()
    with torch.no_grad():  # move the BatchNorm running statistics away from their defaults
        m(torch.randn(2, 1, 32, 32) * (seed + 1))
    ck = {"model": m.state_dict(), "optimizer": {"state": {}}, "scheduler": {}, "step": step,
          "arch": "UNet2D", "arch_args": dict(args), "config": {"seed": seed}}
    torch.save(ck, path)
    return ck


def test_average_is_the_mean_of_weights_and_bn_statistics(tmp_path) -> None:
    cks = [_ckpt(tmp_path / f"s{i}.pt", i, 100 * (i + 1)) for i in range(3)]
    avg = average_checkpoints([tmp_path / f"s{i}.pt" for i in range(3)])
    for k, v in avg["model"].items():
        if torch.is_floating_point(v):
            want = (cks[0]["model"][k] + cks[1]["model"][k] + cks[2]["model"][k]) / 3
            torch.testing.assert_close(v, want)
            if "running_var" in k:
                assert not torch.allclose(v, torch.ones_like(v))  # statistics averaged, not reset
        else:  # num_batches_tracked: the last checkpoint's
            assert torch.equal(v, cks[2]["model"][k])
    assert avg["step"] == 300 and "optimizer" not in avg and len(avg["averaged_from"]) == 3
    # the result loads into the network like any training checkpoint (what model export does)
    m = UNet2D(**avg["arch_args"])
    m.load_state_dict(avg["model"])
    m.eval()
    assert m(torch.zeros(1, 1, 32, 32)).shape == (1, 4, 32, 32)
    # CLI writes it
    assert main([str(tmp_path / "avg.pt"), *(str(tmp_path / f"s{i}.pt") for i in range(3))]) == 0
    assert torch.load(tmp_path / "avg.pt", weights_only=False)["averaged_from"]


def test_bad_inputs_are_refused(tmp_path, capsys) -> None:
    _ckpt(tmp_path / "a.pt", 0, 1)
    _ckpt(tmp_path / "b.pt", 1, 2, args={**ARGS, "base": 8})
    with pytest.raises(AverageError, match="different architecture"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main([str(tmp_path / "o.pt"), str(tmp_path / "a.pt"), str(tmp_path / "junk.pt")]) == 2
    assert "cannot read a checkpoint" in capsys.readouterr().err
    torch.save({"weights": 1}, tmp_path / "plain.pt")
    with pytest.raises(AverageError, match="not a training checkpoint"):
        average_checkpoints([tmp_path / "plain.pt"])
    with pytest.raises(AverageError, match="no checkpoints"):
        average_checkpoints([])
