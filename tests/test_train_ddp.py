"""The DistributedDataParallel code path: 2 CPU processes (gloo) under torchrun, a tiny run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           f"--master_port={_free_port()}", "--master_addr=127.0.0.1",
           "-m", "inference.train", "--out", str(out), "--device", "cpu", "--steps", "3", "--batch", "2",
           "--base", "4", "--depth", "2", "--threads", "1", "--pool", "8", "--lifetime", "2", "--canvas", "64",
           "--crop", "32", "--spacing-mm", "6", "--hires-fraction", "0", "--gen-kwargs", '{"size": 64}',
           "--val-n", "2", "--val-every", "3", "--log-every", "1", "--ckpt-every", "3"]


def test_torchrun_two_process_gloo(tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    # one retry with a fresh port and folder: the free port can be taken by another process between
    # _free_port() and torchrun's bind. One unexplained failure on the busy shared machine did not
    # reproduce in 4 reruns; a real DDP bug fails both attempts (and prints the output).
    for attempt in range(2):
        out = tmp_path / f"ddp{attempt}"
        r = subprocess.run(_cmd(out), cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        if r.returncode == 0:
            break
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps_done"] == 3
    ck = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert ck["world_size"] == 2 and len(ck["history"]) == 3
    # DDP keeps the replicas identical: the saved (rank 0) weights are plain, un-prefixed names
    assert all(not k.startswith("module.") for k in ck["model"])
    log = (out / "progress.log").read_text()
    assert "x 2 ranks" in log and "step 3/3" in log
