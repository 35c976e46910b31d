"""Write synthetic DICOM series (tests, benchmarks, the demo). No Qt.

Everything here writes *real* DICOM Part 10 files with pydicom that other readers
(pydicom, SimpleITK/GDCM, dciodvfy) accept, so the loader is exercised on real parsing.

Geometry follows DICOM PS3.3 C.7.6.2: slice ``k`` has ImagePositionPatient
``origin + k * sz * normal`` with ``normal = cross(row, col)`` of ImageOrientationPatient,
unless explicit ``positions`` (for gaps, tilt, irregular spacing) are given.

Stored values come from HU via ``stored = round((hu - intercept) / slope)`` and are written
as uint16 when all stored values are >= 0, int16 otherwise (override with ``signed``).

Compressed transfer syntaxes use pydicom's encoders: RLE Lossless (pydicom / pylibjpeg-rle),
JPEG-LS (pyjpegls), JPEG 2000 (pylibjpeg-openjpeg; images of at least 32x32 pixels, since
openjpeg's default 6 resolution levels need them). pydicom has no JPEG (process 1/14) encoder:
JPEG Lossless SV1 (1.2.840.10008.1.2.4.70) is encoded with GDCM through SimpleITK when that is
installed (the ``bench`` extra). :func:`encodable_transfer_syntaxes` says what works here.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

__all__ = [
    "write_series",
    "write_multiframe",
    "encodable_transfer_syntaxes",
    "CT_IMAGE_STORAGE",
    "MR_IMAGE_STORAGE",
    "ENHANCED_CT_IMAGE_STORAGE",
    "ENHANCED_MR_IMAGE_STORAGE",
]

log = logging.getLogger(__name__)

CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")
MR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4")
ENHANCED_CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2.1")
ENHANCED_MR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4.1")
SECONDARY_CAPTURE = UID("1.2.840.10008.5.1.4.1.1.7")
JPEG_LOSSLESS_SV1 = UID("1.2.840.10008.1.2.4.70")
_NATIVE = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian)


def encodable_transfer_syntaxes() -> list[UID]:
    """Compressed transfer syntaxes whose pydicom encoder is available here."""
    from pydicom.pixels import get_encoder
    from pydicom.uid import (
        JPEG2000,
        JPEG2000Lossless,
        JPEGLSLossless,
        JPEGLSNearLossless,
        RLELossless,
    )

    out = []
    try:
        import SimpleITK  # noqa: F401 - GDCM's JPEG lossless encoder

        out.append(JPEG_LOSSLESS_SV1)
    except ImportError:
        pass
    for uid in (RLELossless, JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000):
        try:
            if get_encoder(uid).is_available:
                out.append(uid)
        except (NotImplementedError, ValueError):  # pragma: no cover - depends on plugins
            pass
    return out


def _uid(seed: str | None, what: str) -> UID:
    return generate_uid(entropy_srcs=[seed, what]) if seed is not None else generate_uid()


def _unit(v: Sequence[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


def _stored(
    voxels: np.ndarray, slope: float, intercept: float, signed: bool | None, bits_stored: int
) -> tuple[np.ndarray, bool]:
    """HU -> stored integers (int16/uint16) and the PixelRepresentation flag."""
    if voxels.dtype == np.uint8 and voxels.ndim == 4:
        return voxels, False
    s = np.rint((voxels.astype(np.float64) - intercept) / slope)
    if signed is None:
        signed = bool(s.min() < 0)
    lo, hi = (
        (-(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1)
        if signed
        else (0, (1 << bits_stored) - 1)
    )
    if s.min() < lo or s.max() > hi:
        raise ValueError(
            f"stored values [{s.min():.0f}, {s.max():.0f}] do not fit {bits_stored} bits "
            f"({'signed' if signed else 'unsigned'}); change rescale_intercept/slope or bits_stored"
        )
    return s.astype(np.int16 if signed else np.uint16), signed


def _base_dataset(
    *,
    modality: str,
    sop_class: UID,
    patient_name: str,
    patient_id: str,
    birth_date: str,
    patient_sex: str,
    patient_position: str,
    study_uid: UID,
    series_uid: UID,
    for_uid: UID,
    series_description: str,
    series_number: int,
    study_date: str,
) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = birth_date
    ds.PatientSex = patient_sex
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = for_uid
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.StudyTime = "120000"
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Synthetic study"
    ds.SeriesDescription = series_description
    ds.SeriesNumber = series_number
    ds.Manufacturer = "clinical-viewer synth"
    ds.ManufacturerModelName = "synth"
    ds.DeviceSerialNumber = "0"
    ds.SoftwareVersions = "1"
    ds.ContentDate = study_date
    ds.ContentTime = "120000"
    ds.AcquisitionNumber = 1
    ds.PatientPosition = patient_position
    ds.PositionReferenceIndicator = ""
    ds.SpecificCharacterSet = "ISO_IR 100"
    return ds


def _pixel_module(
    ds: Dataset, stored: np.ndarray, signed: bool, photometric: str, bits_stored: int
) -> None:
    if stored.dtype == np.uint8 and stored.ndim >= 3 and stored.shape[-1] == 3:  # [.., y, x, 3] RGB
        ds.Rows, ds.Columns = int(stored.shape[-3]), int(stored.shape[-2])
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        return
    ds.Rows, ds.Columns = int(stored.shape[-2]), int(stored.shape[-1])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0


def _set_pixels(ds: Dataset, arr: np.ndarray, ts: UID) -> None:
    """Store ``arr`` (one frame [y, x(, 3)] or frames [f, y, x(, 3)]) in ``ds`` with syntax
    ``ts``."""
    ds.file_meta.TransferSyntaxUID = ts
    if ts in _NATIVE:
        data = arr.astype(arr.dtype.newbyteorder(">")) if ts == ExplicitVRBigEndian else arr
        raw = np.ascontiguousarray(data).tobytes()
        ds.PixelData = raw + (b"\0" if len(raw) % 2 else b"")
        ds["PixelData"].VR = "OB" if arr.dtype.itemsize == 1 else "OW"
        return
    if ts == JPEG_LOSSLESS_SV1:
        from pydicom.encaps import encapsulate

        frames = arr[None] if arr.ndim == 2 else arr
        ds.PixelData = encapsulate([_gdcm_jpeg_lossless(f) for f in frames])
        ds["PixelData"].VR = "OB"
        return
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    kwargs: dict[str, Any] = {}
    if ts == "1.2.840.10008.1.2.4.91":  # JPEG 2000 (lossy allowed): near-lossless quality
        kwargs["j2k_psnr"] = [90.0]
    ds.compress(ts, arr, generate_instance_uid=False, **kwargs)


def _gdcm_jpeg_lossless(frame: np.ndarray) -> bytes:
    """One JPEG Lossless SV1 codestream of a [y, x] integer frame, encoded by GDCM (SimpleITK)."""
    import tempfile

    import pydicom
    import SimpleITK as sitk
    from pydicom.encaps import generate_frames

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "f.dcm")
        w = sitk.ImageFileWriter()
        w.SetImageIO("GDCMImageIO")
        w.SetFileName(path)
        w.UseCompressionOn()
        w.SetCompressor("JPEG")
        w.Execute(sitk.GetImageFromArray(np.ascontiguousarray(frame)[None]))
        enc = pydicom.dcmread(path)
        if enc.file_meta.TransferSyntaxUID != JPEG_LOSSLESS_SV1:  # pragma: no cover - GDCM version
            raise RuntimeError(
                f"GDCM wrote {enc.file_meta.TransferSyntaxUID}, not JPEG Lossless SV1"
            )
        return next(generate_frames(enc.PixelData, number_of_frames=1))


def _windows(ds: Dataset, window: Any) -> None:
    if window is None:
        return
    wins = [window] if isinstance(window[0], (int, float)) else list(window)
    ds.WindowCenter = [float(w[0]) for w in wins] if len(wins) > 1 else float(wins[0][0])
    ds.WindowWidth = [float(w[1]) for w in wins] if len(wins) > 1 else float(wins[0][1])
    names = [str(w[2]) if len(w) > 2 else f"WINDOW{i + 1}" for i, w in enumerate(wins)]
    ds.WindowCenterWidthExplanation = names if len(names) > 1 else names[0]


def _save(ds: Dataset, path: Path) -> Path:
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ts = ds.file_meta.TransferSyntaxUID
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(
        path,
        enforce_file_format=True,
        implicit_vr=ts == ImplicitVRLittleEndian,
        little_endian=ts != ExplicitVRBigEndian,
    )
    return path


def write_series(
    folder: str | Path,
    voxels_hu: np.ndarray,
    *,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    iop: Sequence[float] = (1, 0, 0, 0, 1, 0),
    positions: Sequence[Sequence[float]] | None = None,
    modality: str = "CT",
    patient_name: str = "Demo^Patient",
    patient_id: str = "DEMO0001",
    birth_date: str = "19700101",
    patient_sex: str = "O",
    patient_position: str = "HFS",
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    series_description: str = "Synthetic CT",
    series_number: int = 1,
    study_date: str = "20240101",
    transfer_syntax: str = ExplicitVRLittleEndian,
    rescale_slope: float = 1.0,
    rescale_intercept: float | None = None,
    signed: bool | None = None,
    bits_stored: int = 16,
    photometric: str = "MONOCHROME2",
    window: Any = (40.0, 400.0),
    file_names: str = "slice{:04d}.dcm",
    shuffle: bool = False,
    uid_seed: str | None = None,
    extra: dict[str, Any] | None = None,
) -> list[Path]:
    """Write one single-frame image per slice of ``voxels_hu``.

    Parameters
    ----------
    folder : output folder (created).
    voxels_hu : [z, y, x] values in output units (HU for CT), or [z, y, x, 3] uint8 for RGB.
    spacing : (sz, sy, sx) in mm; sy/sx become PixelSpacing (row spacing, column spacing).
    origin : LPS position (mm) of the centre of the first voxel of slice 0.
    iop : ImageOrientationPatient (row cosine, column cosine), normalised here.
    positions : explicit ImagePositionPatient per slice (overrides origin/spacing[0]).
    rescale_intercept : default -1024 for CT, 0 otherwise. ``rescale_slope`` likewise 1.
    window : (center, width), a list of (center, width, name), or None.
    file_names : format string taking the slice index; ``shuffle`` permutes which index
        goes to which name (so file order says nothing about position).
    uid_seed : derive UIDs deterministically from this string (else random).
    extra : keyword -> value set on every dataset (e.g. ``{"EchoNumbers": 2}``).

    Returns
    -------
    list of Path, one per slice in slice order.
    """
    vox = np.asarray(voxels_hu)
    if vox.ndim not in (3, 4):
        raise ValueError(f"voxels_hu must be [z, y, x] or [z, y, x, 3], got shape {vox.shape}")
    folder = Path(folder)
    rgb = vox.ndim == 4
    intercept = (
        (-1024.0 if modality == "CT" else 0.0)
        if rescale_intercept is None
        else float(rescale_intercept)
    )
    stored, is_signed = _stored(vox, float(rescale_slope), intercept, signed, bits_stored)
    row, col = _unit(iop[:3]), _unit(iop[3:6])
    normal = np.cross(row, col)
    nz = vox.shape[0]
    if positions is None:
        pos = (
            np.asarray(origin, float)[None, :]
            + np.arange(nz)[:, None] * float(spacing[0]) * normal[None, :]
        )
    else:
        pos = np.asarray(positions, float).reshape(nz, 3)
    study_uid = study_uid or _uid(uid_seed, "study")
    series_uid = series_uid or _uid(uid_seed, f"series{series_description}{series_number}")
    for_uid = frame_of_reference_uid or _uid(uid_seed, "for")
    sop_class = {"CT": CT_IMAGE_STORAGE, "MR": MR_IMAGE_STORAGE}.get(modality, SECONDARY_CAPTURE)
    names = list(range(nz))
    if shuffle:
        random.Random(uid_seed or 0).shuffle(names)
    paths: list[Path] = []
    for k in range(nz):
        ds = _base_dataset(
            modality=modality,
            sop_class=sop_class,
            patient_name=patient_name,
            patient_id=patient_id,
            birth_date=birth_date,
            patient_sex=patient_sex,
            patient_position=patient_position,
            study_uid=study_uid,
            series_uid=series_uid,
            for_uid=for_uid,
            series_description=series_description,
            series_number=series_number,
            study_date=study_date,
        )
        ds.file_meta = FileMetaDataset()
        ds.SOPInstanceUID = _uid(uid_seed, f"{series_uid}/{k}") if uid_seed else generate_uid()
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [round(float(v), 6) for v in pos[k]]
        ds.ImageOrientationPatient = [round(float(v), 8) for v in (*row, *col)]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[2])]
        ds.SliceThickness = float(spacing[0])
        ds.SliceLocation = round(float(np.dot(pos[k], normal)), 6)
        if modality == "CT":
            ds.KVP = 120
        _pixel_module(ds, stored[k], is_signed, photometric, bits_stored)
        if not rgb:
            if modality == "CT" or rescale_slope != 1.0 or intercept != 0.0:
                ds.RescaleIntercept = intercept
                ds.RescaleSlope = float(rescale_slope)
                ds.RescaleType = "HU" if modality == "CT" else "US"
            _windows(ds, window)
        for key, value in (extra or {}).items():
            setattr(ds, key, value)
        _set_pixels(ds, stored[k], UID(transfer_syntax))
        paths.append(_save(ds, folder / file_names.format(names[k])))
    log.debug("wrote %d synthetic %s slices", nz, modality)
    return paths


def write_multiframe(path: str | Path, voxels_hu: np.ndarray, **kwargs: Any) -> Path:
    """Write an Enhanced CT/MR multi-frame file.

    See :func:`viewer.dicom.synth_enhanced.write_multiframe` for the parameters.
    """
    from viewer.dicom.synth_enhanced import write_multiframe as _write

    return _write(path, voxels_hu, **kwargs)
