"""Autosave storage of reader edits: atomic, compact, keyed by the exact series. No Qt.

The debounced :class:`viewer.autosave.Autosaver` uses these functions.

Where: ``$CLINICAL_VIEWER_HOME/autosave`` when that variable is set (tests set it), otherwise
``platformdirs.user_data_dir("clinical-viewer")/autosave``.

What (format 1), for a series whose :class:`SeriesIdentity` key is ``K``:

* ``K.ai-<digest>.npz``: the AI label map (``ai``: uint8 [z, y, x]), written once, compressed;
  ``<digest>`` is the first 16 hex digits of its SHA-256 (over shape and bytes);
* ``K.edits.npz``: rewritten on every save (``np.savez``; the chunks are compressed already):
  ``meta`` (UTF-8 JSON as uint8), and the reader's changes as chunks of
  :data:`viewer.masks_persist.CHUNK` = (16, 64, 64) voxels: ``chunk_coords`` (int32 [N, 3],
  chunk index along z, y, x), ``chunk_sizes`` (int64 [N]) and ``chunk_data`` (uint8, the
  concatenated zlib streams of ``current XOR ai`` over each chunk, C order; only chunks with a
  change are stored). The JSON holds the format number, the series identity, shape, spacing,
  the AI file name and SHA-256, the chunk shape and codec, the touched box
  ``[z0, z1, y0, y1, x0, x1]``, revision and committed revision, label table (value, name,
  colour, source, decision), review state, reader and UTC timestamps.

Every file is written to a temporary name in the same folder, flushed, ``fsync``-ed and moved
into place with ``os.replace`` (then the folder is fsync-ed): a kill at any moment leaves either
the previous complete save or the new one, never a torn file. The AI file is immutable and
named by its digest, so the edits file always points at a complete AI file.

Restoring checks the series identity (SeriesInstanceUID + a fingerprint of the SOPInstanceUIDs,
frame numbers, shape and geometry) and the AI digest, and raises :class:`AutosaveMismatchError`
when the edits belong to another series. Undo history is not saved.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from viewer.errors import ViewerError
from viewer.masks import EditableSegmentation
from viewer.masks_geometry import Box
from viewer.masks_labels import EditError, LabelInfo, ReviewState
from viewer.masks_persist import CHUNK, Coord, Snapshot, chunk_box

__all__ = [
    "FORMAT",
    "AutosaveError",
    "AutosaveInfo",
    "AutosaveMismatchError",
    "SeriesIdentity",
    "ai_digest",
    "atomic_write_bytes",
    "autosave_dir",
    "discard",
    "encode_chunks",
    "find_restorable",
    "list_autosaves",
    "remove_stale_temps",
    "restore",
    "save_snapshot",
]

log = logging.getLogger(__name__)

FORMAT = 1


class AutosaveError(ViewerError):
    """Autosaved edits that cannot be written or read; the message names the file and the fix."""


class AutosaveMismatchError(AutosaveError):
    """Autosaved edits that belong to a different series (or a different AI result)."""


def autosave_dir() -> Path:
    """The autosave folder (``$CLINICAL_VIEWER_HOME/autosave`` overrides the platform default)."""
    env = os.environ.get("CLINICAL_VIEWER_HOME")
    if env:
        return Path(env) / "autosave"
    from platformdirs import user_data_dir

    return Path(user_data_dir("clinical-viewer", appauthor=False)) / "autosave"


@dataclass(frozen=True)
class SeriesIdentity:
    """The exact identity of a series: its UID plus a fingerprint of instances and geometry.

    ``fingerprint`` is the SHA-256 of the ordered SOPInstanceUIDs and frame numbers (one per
    slice), the shape and the rounded spacing, origin and direction, so edits never restore onto
    a series that was re-exported, re-sorted or cropped under the same SeriesInstanceUID.
    """

    series_instance_uid: str
    fingerprint: str

    @classmethod
    def compute(cls, series_instance_uid: str, sop_instance_uids: Sequence[str], shape: Sequence[int],
                spacing: Sequence[float], origin: Sequence[float] = (0.0, 0.0, 0.0),
                direction: Any = None, frame_numbers: Sequence[int | None] | None = None) -> SeriesIdentity:
        direction = np.eye(3) if direction is None else np.asarray(direction, float).reshape(3, 3)
        parts = {
            "sop": [str(u) for u in sop_instance_uids],
            "frames": [None if f is None else int(f) for f in (frame_numbers or [])],
            "shape": [int(s) for s in shape[:3]],
            "spacing": [round(float(s), 4) for s in spacing],
            "origin": [round(float(o), 3) for o in origin],
            "direction": [round(float(d), 5) + 0.0 for d in direction.ravel()],
        }
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
        return cls(str(series_instance_uid), digest)

    @classmethod
    def from_volume(cls, volume: Any) -> SeriesIdentity:
        """The identity of a :class:`viewer.volume.Volume` (from its meta and geometry)."""
        m = volume.meta
        return cls.compute(m.series_instance_uid, m.sop_instance_uids, volume.shape, volume.spacing,
                           volume.origin, volume.direction, m.frame_numbers)

    @property
    def key(self) -> str:
        """File-name key (a hash: no identifiers in file names)."""
        return hashlib.sha256(f"{self.series_instance_uid}\0{self.fingerprint}".encode()).hexdigest()[:32]

    def to_json(self) -> dict[str, str]:
        return {"series_instance_uid": self.series_instance_uid, "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class AutosaveInfo:
    """What :func:`find_restorable` found (enough to word the "restore edits?" question)."""

    path: Path
    identity: SeriesIdentity
    revision: int
    saved_at: str
    modified: str
    reader: str
    review_state: str
    labels: list[dict[str, Any]]
    meta: dict[str, Any]


# ---------------------------------------------------------------------- atomic files
def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform / filesystem
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + flush + fsync + os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def remove_stale_temps(directory: Path, identity: SeriesIdentity) -> int:
    """Delete temporary files a killed save of this series left behind; returns how many."""
    n = 0
    for p in Path(directory).glob(f".{identity.key}.*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def ai_digest(ai: np.ndarray) -> str:
    """SHA-256 hex of a label map's shape and bytes."""
    h = hashlib.sha256(json.dumps(list(ai.shape)).encode())
    h.update(np.ascontiguousarray(ai).data)
    return h.hexdigest()


def _edits_path(directory: Path, identity: SeriesIdentity) -> Path:
    return directory / f"{identity.key}.edits.npz"


# ---------------------------------------------------------------------- save / find / restore
def encode_chunks(chunks: dict[Coord, np.ndarray]) -> dict[Coord, bytes]:
    """zlib (level 1) payloads of the non-zero chunk differences; zero chunks map to ``b""``."""
    return {c: (zlib.compress(np.ascontiguousarray(d).tobytes(), 1) if d.any() else b"")
            for c, d in chunks.items()}


def save_snapshot(snap: Snapshot, ai: np.ndarray, identity: SeriesIdentity, *,
                  directory: Path | None = None, digest: str | None = None,
                  payloads: dict[Coord, bytes] | None = None) -> Path:
    """Write one snapshot atomically; returns the edits file path. See the module docstring.

    ``digest`` is :func:`ai_digest` of ``ai`` when already known. ``payloads`` are the compressed
    differences of *every* changed chunk (the Autosaver keeps them up to date from partial
    snapshots); without it ``snap`` must be a full snapshot (``since_revision`` 0).
    """
    directory = Path(directory) if directory is not None else autosave_dir()
    digest = digest or ai_digest(ai)
    if payloads is None:
        if snap.since_revision != 0:
            raise ValueError("save_snapshot needs payloads, or a full snapshot (since_revision=0)")
        payloads = encode_chunks(snap.chunks)
    items = sorted((c, p) for c, p in payloads.items() if p)
    ai_path = directory / f"{identity.key}.ai-{digest[:16]}.npz"
    try:
        if not ai_path.exists():
            atomic_write_bytes(ai_path, _npz_bytes(ai=np.ascontiguousarray(ai, dtype=np.uint8)))
        meta = {
            "format": FORMAT,
            "identity": identity.to_json(),
            "shape": list(snap.shape),
            "spacing": list(snap.spacing),
            "ai_file": ai_path.name,
            "ai_sha256": digest,
            "chunk_shape": list(CHUNK),
            "chunk_codec": "zlib",
            "touched": None if snap.touched is None else snap.touched.to_list(),
            "revision": snap.revision,
            "committed_revision": snap.committed_revision,
            "labels": [i.to_json() for i in snap.labels],
            "review_state": str(snap.review_state),
            "reader": snap.reader,
            "created": snap.created,
            "modified": snap.modified,
            "saved_at": _utc(),
        }
        arrays = {
            "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
            "chunk_coords": np.array([c for c, _ in items], np.int32).reshape(-1, 3),
            "chunk_sizes": np.array([len(p) for _, p in items], np.int64),
            "chunk_data": np.frombuffer(b"".join(p for _, p in items), dtype=np.uint8),
        }
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # payloads are compressed already
        path = _edits_path(directory, identity)
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:
        raise AutosaveError(f"could not autosave edits to {directory}: {exc}. "
                            "Free disk space or set CLINICAL_VIEWER_HOME to a writable folder") from exc
    for stale in directory.glob(f"{identity.key}.ai-*.npz"):  # an older AI result of this series
        if stale != ai_path:
            with contextlib.suppress(OSError):
                stale.unlink()
    return path


def _utc() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _read_meta(path: Path, *, with_chunks: bool = False) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            arrays = ({k: z[k] for k in ("chunk_coords", "chunk_sizes", "chunk_data")}
                      if with_chunks else {})
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise AutosaveError(f"autosaved edits {path} cannot be read ({exc}); "
                            "discard them (they are not usable)") from exc
    if meta.get("format") != FORMAT:
        raise AutosaveError(f"autosaved edits {path} have format {meta.get('format')!r}, "
                            f"this version reads format {FORMAT}; discard them or use a newer version")
    return meta, arrays


def _decode_chunks(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[Coord, np.ndarray]:
    shape = tuple(int(n) for n in meta["shape"])
    if list(meta.get("chunk_shape", [])) != list(CHUNK):
        raise AutosaveError(f"{path.name}: chunk shape {meta.get('chunk_shape')} is not {list(CHUNK)}; "
                            "discard the autosave")
    coords, sizes, data = arrays["chunk_coords"], arrays["chunk_sizes"], arrays["chunk_data"].tobytes()
    if len(coords) != len(sizes) or int(sizes.sum()) != len(data):
        raise AutosaveError(f"{path.name}: chunk table does not match its data; the autosave is damaged")
    out: dict[Coord, np.ndarray] = {}
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    for i, c in enumerate(coords):
        coord = (int(c[0]), int(c[1]), int(c[2]))
        box_shape = chunk_box(coord, shape).shape
        try:
            raw = zlib.decompress(data[offsets[i]:offsets[i + 1]])
        except zlib.error as exc:
            raise AutosaveError(f"{path.name}: edit chunk {coord} is damaged ({exc}); discard the autosave") from exc
        if len(raw) != int(np.prod(box_shape)) or min(box_shape) <= 0:
            raise AutosaveError(f"{path.name}: edit chunk {coord} has {len(raw)} bytes, expected "
                                f"{box_shape}; the autosave is damaged")
        out[coord] = np.frombuffer(raw, np.uint8).reshape(box_shape)
    return out


def _info(path: Path, meta: dict[str, Any]) -> AutosaveInfo:
    ident = meta["identity"]
    return AutosaveInfo(path, SeriesIdentity(ident["series_instance_uid"], ident["fingerprint"]),
                        int(meta["revision"]), meta["saved_at"], meta["modified"], meta["reader"],
                        meta["review_state"], meta["labels"], meta)


def find_restorable(identity: SeriesIdentity, *, directory: Path | None = None) -> AutosaveInfo | None:
    """The autosaved edits of exactly this series, or None. Unreadable files are logged, skipped."""
    path = _edits_path(Path(directory) if directory is not None else autosave_dir(), identity)
    if not path.exists():
        return None
    try:
        meta, _ = _read_meta(path)
    except AutosaveError as exc:
        log.warning("%s", exc)
        return None
    info = _info(path, meta)
    return info if info.identity == identity else None


def list_autosaves(*, directory: Path | None = None) -> list[AutosaveInfo]:
    """Every readable autosave in the folder (for a "recover edits" list)."""
    directory = Path(directory) if directory is not None else autosave_dir()
    out = []
    for path in sorted(directory.glob("*.edits.npz")):
        try:
            out.append(_info(path, _read_meta(path)[0]))
        except (AutosaveError, KeyError) as exc:
            log.warning("skipping autosave %s: %s", path.name, exc)
    return out


def restore(identity: SeriesIdentity, *, path: Path | None = None, directory: Path | None = None,
            image: np.ndarray | None = None, **kwargs: Any) -> EditableSegmentation:
    """Rebuild the edited segmentation saved for ``identity`` (no undo history).

    ``path`` restores a specific edits file (e.g. from :func:`list_autosaves`); its identity must
    still equal ``identity``. Raises :class:`AutosaveMismatchError` when it belongs to another
    series, :class:`AutosaveError` when missing or damaged. ``kwargs`` go to the constructor.
    """
    directory = Path(directory) if directory is not None else autosave_dir()
    path = Path(path) if path is not None else _edits_path(directory, identity)
    if not path.exists():
        raise AutosaveError(f"no autosaved edits at {path} for this series")
    meta, arrays = _read_meta(path, with_chunks=True)
    saved = _info(path, meta).identity
    if saved != identity:
        what = ("a different series" if saved.series_instance_uid != identity.series_instance_uid
                else "the same SeriesInstanceUID but different images or geometry")
        raise AutosaveMismatchError(
            f"the autosaved edits in {path.name} belong to {what} (fingerprint "
            f"{saved.fingerprint[:12]}… vs this series {identity.fingerprint[:12]}…); they were not "
            "restored. Open the series they were made on, or discard them")
    ai_path = path.parent / meta["ai_file"]
    try:
        with np.load(ai_path, allow_pickle=False) as z:
            ai = z["ai"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise AutosaveError(f"the AI label map {ai_path} of the autosaved edits cannot be read ({exc}); "
                            "discard the autosave") from exc
    if ai_digest(ai) != meta["ai_sha256"] or list(ai.shape) != list(meta["shape"]):
        raise AutosaveMismatchError(f"the AI label map {ai_path.name} does not match its recorded "
                                    "SHA-256 or shape; the autosave is damaged: discard it")
    touched = None if meta["touched"] is None else Box(*meta["touched"])
    snap = Snapshot(int(meta["revision"]), tuple(meta["shape"]), tuple(meta["spacing"]), touched,
                    _decode_chunks(path, meta, arrays), 0,
                    [LabelInfo.from_json(d) for d in meta["labels"]], ReviewState(meta["review_state"]),
                    meta["reader"], meta["created"], meta["modified"], int(meta.get("committed_revision", 0)))
    try:
        return EditableSegmentation.from_snapshot(ai, snap, image=image, **kwargs)
    except EditError as exc:
        raise AutosaveError(f"{path.name}: {exc}; the autosave is damaged: discard it") from exc


def discard(identity: SeriesIdentity, *, directory: Path | None = None) -> bool:
    """Delete the autosaved edits (and AI map) of this series; True if something was deleted."""
    directory = Path(directory) if directory is not None else autosave_dir()
    hit = False
    for p in list(directory.glob(f"{identity.key}.*")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            hit = True
    return hit
