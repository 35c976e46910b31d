"""Seeded byte-level mutations of real files: scan and load never crash, every problem is a reason.

Each case corrupts one file of a small series (truncation, flipped bytes in the header, rewritten
element lengths, inserted / deleted bytes) in several transfer syntaxes; ``scan`` must classify
every file and ``load_stack`` must return a Volume or raise a typed ``DicomError``.
"""

from __future__ import annotations

import random
import shutil
import struct

import numpy as np
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from viewer.dicom.load import load_stack
from viewer.dicom.scan import scan
from viewer.dicom.synth import JPEG_LOSSLESS_SV1, encodable_transfer_syntaxes, write_series
from viewer.errors import DicomError

SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless] + (
    [JPEG_LOSSLESS_SV1] if JPEG_LOSSLESS_SV1 in encodable_transfer_syntaxes() else []
)


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.choice(["truncate", "flip", "length", "insert", "delete"])
    head = min(len(b), 1200)  # the header region, where structure lives
    if kind == "truncate":
        return bytes(b[: rng.randrange(0, len(b))])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(128, head)] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == "length":  # overwrite a 2- or 4-byte field with a large or odd value
        pos = rng.randrange(132, head - 4)
        fmt, val = rng.choice(
            [("<H", rng.choice([0, 1, 0xFFFF])), ("<I", rng.choice([0, 7, 0xFFFFFFFF, 1 << 30]))]
        )
        b[pos : pos + struct.calcsize(fmt)] = struct.pack(fmt, val)
        return bytes(b)
    pos = rng.randrange(128, head)
    if kind == "insert":
        return bytes(b[:pos] + rng.randbytes(rng.randint(1, 16)) + b[pos:])
    return bytes(b[:pos] + b[pos + rng.randint(1, 16) :])


@pytest.mark.parametrize("ts", SYNTAXES, ids=lambda u: u.name)
def test_mutated_series_never_crash(tmp_path, ts):
    v = np.random.default_rng(0).integers(-1024, 2000, (3, 32, 32)).astype(np.int16)
    seed_dir = tmp_path / "seed"
    paths = write_series(seed_dir, v, transfer_syntax=ts)
    rng = random.Random(str(ts))
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(40):
        d = tmp_path / f"case{case}"
        shutil.copytree(seed_dir, d)
        victim = d / paths[case % 3].name
        victim.write_bytes(mutate(victim.read_bytes(), rng))
        res = scan(d)
        classified = sum(len(s.files) for s in res.stacks) + len(res.skipped) + len(res.non_image)
        assert classified >= 3, f"case {case}: a file vanished from the scan"
        assert all(s.reason for s in res.skipped)
        for st in res.stacks:
            try:
                vol = load_stack(st)
            except DicomError as exc:
                assert str(exc)
                outcomes["refused"] += 1
                continue
            for z, src in enumerate(vol.meta.source_files):  # intact files load exactly
                name = src.rsplit("/", 1)[-1]
                if src and name != victim.name and vol.shape[1:] == (32, 32):
                    np.testing.assert_array_equal(vol.voxels[z], v[int(name[5:9])])
            outcomes["loaded"] += 1
        shutil.rmtree(d)
    assert outcomes["loaded"] > 0
