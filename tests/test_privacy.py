"""Privacy and security: no network, no patient identifiers in logs.

1. A full headless session (scan, load, segment with the shipped package, compare PyTorch vs
   ONNX, Grad-CAM on one slice, export SEG / PDF / PNG / NIfTI) runs in a subprocess whose
   ``sitecustomize`` makes every socket path fail from interpreter start: ``socket.socket``,
   ``socket.create_connection``, ``socket.getaddrinfo`` are replaced, and an audit hook
   (``sys.addaudithook``: ``socket.__new__``, ``socket.connect``, ``socket.getaddrinfo`` …) also
   catches C-level use. Every attempt is recorded; the test requires none.
2. The same session, and the ``scan`` / ``segment`` / ``compare`` CLI with ``-v``, log at DEBUG on
   a series with a known PatientName / PatientID / birth date; no log line (log file, stderr)
   contains any of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from inference.package import shipped_models_dir
from viewer.dicom.synth import write_series

ROOT = Path(__file__).resolve().parents[1]
PATIENT = {"name": "Zyxwvut^Qwertyuiop", "id": "PID98765XQ", "birth": "19431127"}
NEEDLES = ["Zyxwvut", "Qwertyuiop", "PID98765XQ", "19431127", "1943-11-27", "27.11.1943"]
pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not (shipped_models_dir() / "lung-ct-unet" / "model.pt").is_file(),
        reason="the shipped package (with its PyTorch file) is needed for the full session",
    ),
]

SITECUSTOMIZE = textwrap.dedent(
    """
    # Installed before anything else runs: every network path fails and is recorded.
    import os, socket, sys

    _LOG = os.environ["NO_NET_LOG"]

    def _record(what):
        import traceback
        where = " <- ".join(
            f"{fr.filename.rsplit('site-packages/', 1)[-1]}:{fr.lineno}"
            for fr in reversed(traceback.extract_stack()[:-2])
            if "sitecustomize" not in fr.filename and "<frozen" not in fr.filename
        )
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write(f"{what} at {where[:3000]}\\n")

    class _NoSocket(socket.socket):
        def __init__(self, *a, **k):
            _record(f"socket.socket{a!r}")
            raise OSError("network disabled by test")

    def _deny(name):
        def f(*a, **k):
            _record(f"{name}{a!r}")
            raise OSError("network disabled by test")
        return f

    socket.socket = _NoSocket
    socket.create_connection = _deny("socket.create_connection")
    socket.getaddrinfo = _deny("socket.getaddrinfo")
    socket.gethostbyname = _deny("socket.gethostbyname")
    socket.socketpair = _deny("socket.socketpair")

    _EVENTS = {"socket.__new__", "socket.connect", "socket.getaddrinfo", "socket.bind",
               "socket.sendto", "socket.gethostbyname", "socket.gethostbyaddr",
               "urllib.Request", "http.client.connect", "ftplib.connect", "smtplib.connect"}

    def _hook(event, args):
        if event in _EVENTS:
            _record(f"audit {event} {args!r}")
            raise OSError("network disabled by test")

    sys.addaudithook(_hook)
    """
)

SESSION = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    import numpy as np

    src, out, log_file = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    logging.basicConfig(level=logging.DEBUG, filename=log_file, filemode="w",
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))

    from viewer.dicom import load_stack, scan
    res = scan(src)
    vol = load_stack(res.stacks[0])

    from inference.package import find_package
    from inference.pipeline import segment_volume
    pkg = find_package("lung-ct-unet")
    result = segment_volume(vol, pkg, engine="onnx", force_domain=True)

    from inference.compare import compare_engines
    cmp = compare_engines(vol, pkg, ["torch", "onnx"])

    from inference.gradcam import compute_cam_series, load_cam_model
    model, _ = load_cam_model(pkg)
    z = vol.shape[0] // 2
    heat = compute_cam_series(model, vol, pkg, target_label=1, slices=[z])

    from viewer.export.nifti import write_nifti
    from viewer.export.png import write_png
    from viewer.export.report import write_report
    from viewer.export.seg import segment_infos, write_seg
    segs = segment_infos(pkg.labels, model={"name": pkg.name, "version": pkg.version,
                                            "sha256": pkg.files["onnx"].sha256})
    write_seg(out / "seg.dcm", vol, result.labels, segs)
    write_report(out / "report.pdf", volume=vol, result=result, parity=cmp.to_dict(),
                 gradcam={"slice": z, "heatmap": heat[z]})
    rgb = np.repeat(np.clip((heat[z] * 255), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    write_png(out / "key.png", rgb)
    write_nifti(result.labels, out / "labels.nii.gz", volume=vol)
    write_nifti(vol, out / "volume.nii.gz")
    print("SESSION OK", sorted(p.name for p in out.iterdir()))
    """
)


@pytest.fixture(scope="module")
def env_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("privacy")
    site = base / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    src = base / "ct"
    hu = np.full((6, 96, 96), -1000.0)
    yy, xx = np.mgrid[:96, :96]
    hu[:, ((yy - 48) / 40) ** 2 + ((xx - 48) / 44) ** 2 < 1] = 40.0
    for cx in (28, 68):
        hu[:, ((yy - 46) / 22) ** 2 + ((xx - cx) / 14) ** 2 < 1] = -850.0
    write_series(
        src,
        hu,
        spacing=(5.0, 3.5, 3.5),
        patient_name=PATIENT["name"],
        patient_id=PATIENT["id"],
        birth_date=PATIENT["birth"],
        series_description="Thorax",
    )
    return base, site, src


def _run(
    args: list[str], base: Path, site: Path, tag: str
) -> tuple[subprocess.CompletedProcess, list[str]]:
    net_log = base / f"net-{tag}.log"
    net_log.write_text("")
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]),
        NO_NET_LOG=str(net_log),
        CLINICAL_VIEWER_MODELS=str(base / "no-user-models"),
    )
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, timeout=280)
    return r, [ln for ln in net_log.read_text().splitlines() if ln and not _import_probe(ln)]


def _import_probe(line: str) -> bool:
    """urllib3's import-time IPv6 capability probe (``_has_ipv6``: an AF_INET6 socket bound to
    ``::1``, no traffic). ``import pydicom`` pulls it in (pydicom.pixels → pydicom.data →
    requests → urllib3), so any program using pydicom shows it; it is the one socket allowed
    here, and only from that place."""
    return line.startswith("socket.socket(<AddressFamily.AF_INET6") and line.split(" at ", 1)[
        1
    ].startswith("urllib3/util/connection.py")


def test_sitecustomize_really_blocks_sockets(env_dirs):
    """The harness itself can fail: a socket attempt is refused and recorded."""
    base, site, _ = env_dirs
    code = (
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9))\n"
        "except OSError:\n    print('refused')"
    )
    r, attempts = _run([sys.executable, "-c", code], base, site, "probe")
    assert b"refused" in r.stdout
    assert attempts and "create_connection" in attempts[0]
    code2 = "import _socket\ntry:\n    _socket.socket()\nexcept OSError:\n    print('refused')"
    r, attempts = _run([sys.executable, "-c", code2], base, site, "probe2")
    assert b"refused" in r.stdout and any("socket.__new__" in a for a in attempts)


def _pii(text: str) -> list[str]:
    return [n for n in NEEDLES if n.lower() in text.lower()]


def test_full_session_opens_no_socket_and_logs_no_identifiers(env_dirs, tmp_path):
    base, site, src = env_dirs
    out = tmp_path / "out"
    out.mkdir()
    log_file = tmp_path / "session.log"
    r, attempts = _run(
        [sys.executable, "-c", SESSION, str(src), str(out), str(log_file)], base, site, "session"
    )
    stderr = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, stderr[-4000:]
    assert b"SESSION OK" in r.stdout
    assert {"seg.dcm", "report.pdf", "key.png", "labels.nii.gz", "volume.nii.gz"} <= {
        p.name for p in out.iterdir()
    }
    assert attempts == [], f"network attempts: {attempts}"
    log_text = log_file.read_text(encoding="utf-8", errors="replace")
    assert log_text.count("\n") > 5, "DEBUG logging produced (almost) nothing: the check is void"
    assert _pii(log_text) == [], [ln for ln in log_text.splitlines() if _pii(ln)][:5]
    assert _pii(stderr) == [], [ln for ln in stderr.splitlines() if _pii(ln)][:5]


@pytest.mark.parametrize("command", ["scan", "segment"])
def test_cli_debug_logs_have_no_identifiers_and_no_network(env_dirs, tmp_path, command):
    base, site, src = env_dirs
    args = [sys.executable, "-m", "viewer.cli", "-v", command, str(src)]
    if command == "scan":
        args.append("--json")
    elif command == "segment":
        args += ["--force", "--out", str(tmp_path / "seg")]
    else:
        args += ["--engines", "torch,onnx", "--out", str(tmp_path / "cmp")]
    r, attempts = _run(args, base, site, command)
    stderr = r.stderr.decode("utf-8", "replace")
    assert r.returncode in (0, 1), stderr[-3000:]  # compare: 1 = parity verdict failed
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "DEBUG" in stderr  # -v really logged
    assert attempts == [], attempts
    assert _pii(stderr) == [], [ln for ln in stderr.splitlines() if _pii(ln)][:5]
    if command == "scan":  # the listing itself is output, not a log: it may name the patient
        doc = json.loads(r.stdout)
        assert doc["patients"][0]["patient_id"] == PATIENT["id"]
