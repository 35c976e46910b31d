"""Faults during work, one subprocess per job type: SIGINT / SIGTERM mid-way through scanning,
loading (``convert``), segmenting, comparing, Grad-CAM, and SEG / PDF / NIfTI export.

Each job is started for real (the CLI where one exists, else a short ``python -c`` driver),
the signal is sent once the job reports progress, and the test checks that the process ends
promptly with the "cancelled" exit code 130 and that no output (and no hidden temporary file) is
left in the output folder.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_engines import build_slow_onnx, write_package
from viewer.dicom.synth import write_series

ROOT = Path(__file__).resolve().parents[1]
PROMPT_S = 20.0  # "promptly" on a busy 2-core machine
pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(os.name != "posix", reason="POSIX signals"),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    one = write_series(base / "one", np.zeros((1, 16, 16)))[0]
    many = base / "many"
    many.mkdir()
    for i in range(6000):  # hard links: a big folder to scan, made in milliseconds
        os.link(one, many / f"f{i:05d}.dcm")
    hu = np.random.default_rng(0).normal(-300, 300, (100, 256, 256))
    write_series(base / "j2k", hu, transfer_syntax="1.2.840.10008.1.2.4.90")  # slow to decode
    ct = np.full((12, 128, 128), -1000.0)
    ct[:, 20:108, 20:108] = -800.0
    write_series(base / "ct", ct, spacing=(2.0, 1.5, 1.5))
    slow = base / "models" / "slow"
    slow.mkdir(parents=True)
    build_slow_onnx(slow / "model.onnx", layers=120)
    write_package(slow, {"onnx": slow / "model.onnx"})
    return base


def _start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    e = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    e.update(env or {})
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # a shell without job control starts background jobs with SIGINT ignored, and Python
        # then installs no KeyboardInterrupt handler: give the child the default disposition
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(proc: subprocess.Popen, marker: bytes, timeout: float = 120.0) -> bytes:
    """Read the child's output until ``marker`` appears (progress bars use \\r, not lines)."""
    buf = b""
    end = time.monotonic() + timeout
    fd = proc.stdout.fileno()  # type: ignore[union-attr]
    while marker not in buf:
        left = end - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise AssertionError(f"no {marker!r} before the job ended/timed out: {buf[-2000:]!r}")
        r, _, _ = select.select([fd], [], [], min(left, 1.0))
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                continue
            buf += chunk
    return buf


def _interrupt(proc: subprocess.Popen, sig: int, marker: bytes) -> tuple[int, str, float]:
    out = _wait_for(proc, marker)
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        rest, _ = proc.communicate(timeout=PROMPT_S * 3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"the job did not stop within {PROMPT_S * 3} s of {sig!r}") from None
    return proc.returncode, (out + rest).decode("utf-8", "replace"), time.monotonic() - t0


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return _start([sys.executable, "-m", "viewer.cli", *args], env)


def _no_outputs(folder: Path) -> None:
    left = (
        [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()]
        if folder.exists()
        else []
    )
    assert left == [], f"partial output left behind: {left}"


def _assert_cancelled(rc: int, out: str, secs: float) -> None:
    assert rc == 130, f"exit code {rc}: {out[-3000:]}"
    assert "cancelled" in out, out[-2000:]
    assert "Traceback" not in out, out[-3000:]
    assert secs < PROMPT_S, f"took {secs:.1f} s to stop"


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_scan_cli(data, sig):
    p = _cli("-v", "scan", str(data / "many"))
    _assert_cancelled(*_interrupt(p, sig, b"candidate files"))


@pytest.mark.parametrize("sig", [signal.SIGINT])
def test_convert_cli_loading(data, tmp_path, sig):
    out = tmp_path / "out"
    p = _cli("-v", "convert", str(data / "j2k"), "--out", str(out / "vol.nii.gz"))
    _assert_cancelled(*_interrupt(p, sig, b"scan: "))
    _no_outputs(out)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_segment_cli(data, tmp_path, sig):
    out = tmp_path / "out"
    p = _cli(
        "segment",
        str(data / "ct"),
        "--model",
        "slow",
        "--force",
        "--out",
        str(out),
        env={"CLINICAL_VIEWER_MODELS": str(data / "models")},
    )
    _assert_cancelled(*_interrupt(p, sig, b"slice 2/"))
    _no_outputs(out)


def test_compare_cli(data, tmp_path):
    from inference.package import shipped_models_dir

    if not (shipped_models_dir() / "lung-ct-unet" / "model.pt").is_file():
        pytest.skip("shipped package with a PyTorch file absent")
    out = tmp_path / "out"
    p = _cli(
        "compare",
        str(data / "j2k"),
        "--engines",
        "torch,onnx",
        "--out",
        str(out),
        env={"CLINICAL_VIEWER_MODELS": str(tmp_path / "none")},
    )
    _assert_cancelled(*_interrupt(p, signal.SIGINT, b"compare   ["))
    _no_outputs(out)


DRIVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from viewer.cli import cancel_on_sigterm

    seen = []
    def progress(done, total, msg=""):
        if not seen:
            seen.append(1)
            print("PROGRESS", flush=True)

    def main():
        kind, src, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
        from viewer.dicom import load_path
        vol = load_path(src)
        import numpy as np
        lab = np.zeros(vol.shape, np.uint8)
        lab[:, 60:200, 60:200] = 1
        print("LOADED", flush=True)
        if kind == "seg":
            from viewer.export.seg import SegmentInfo, write_seg
            write_seg(out / "seg.dcm", vol, lab, [SegmentInfo(1, "x", (255, 0, 0))],
                      progress=progress)
        elif kind == "pdf":
            from viewer.export.report import write_report
            write_report(out / "report.pdf", volume=vol, labels=lab, progress=progress)
        elif kind == "gradcam":
            from inference.gradcam import compute_cam_series, load_cam_model
            from inference.package import find_package
            pkg = find_package("lung-ct-unet")
            model, _ = load_cam_model(pkg)
            heat = compute_cam_series(model, vol, pkg, target_label=1, progress=progress)
            np.save(out / "heat.npy", heat)

    try:
        with cancel_on_sigterm():
            main()
    except KeyboardInterrupt:
        print("cancelled", flush=True)
        sys.exit(130)
    """
)


@pytest.mark.parametrize(
    "kind,sig",
    [("seg", signal.SIGTERM), ("pdf", signal.SIGINT), ("gradcam", signal.SIGTERM)],
)
def test_export_and_gradcam_driver(data, tmp_path, kind, sig):
    if kind == "gradcam":
        from inference.package import shipped_models_dir

        if not (shipped_models_dir() / "lung-ct-unet" / "model.pt").is_file():
            pytest.skip("shipped package with a PyTorch file absent")
    out = tmp_path / "out"
    out.mkdir()
    p = _start([sys.executable, "-c", DRIVER, kind, str(data / "j2k"), str(out)])
    _assert_cancelled(*_interrupt(p, sig, b"PROGRESS"))
    _no_outputs(out)
