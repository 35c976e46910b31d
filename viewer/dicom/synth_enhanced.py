"""Write synthetic Enhanced CT / Enhanced MR multi-frame files (tests, demo). No Qt.

Geometry, rescale and windows live in the functional groups (PS3.3 C.7.6.16); see
:func:`write_multiframe`. Shared helpers are in :mod:`viewer.dicom.synth`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from viewer.dicom.synth import (
    ENHANCED_CT_IMAGE_STORAGE,
    ENHANCED_MR_IMAGE_STORAGE,
    _base_dataset,
    _pixel_module,
    _save,
    _set_pixels,
    _stored,
    _uid,
    _unit,
)

__all__ = ["write_multiframe"]


def write_multiframe(
    path: str | Path,
    voxels_hu: np.ndarray,
    *,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    iop: Sequence[float] = (1, 0, 0, 0, 1, 0),
    modality: str = "CT",
    patient_name: str = "Demo^Patient",
    patient_id: str = "DEMO0001",
    birth_date: str = "19700101",
    patient_position: str = "HFS",
    study_uid: str | None = None,
    series_uid: str | None = None,
    series_description: str = "Synthetic enhanced CT",
    transfer_syntax: str = ExplicitVRLittleEndian,
    rescale_slope: float = 1.0,
    rescale_intercept: float | None = None,
    window: tuple[float, float] | None = (40.0, 400.0),
    frame_order: Sequence[int] | None = None,
    uid_seed: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``voxels_hu`` [z, y, x] as one Enhanced CT (or Enhanced MR) multi-frame file.

    Geometry lives in the functional groups (PS3.3 C.7.6.16): PixelMeasures, PlaneOrientation,
    PixelValueTransformation and FrameVOILUT are shared; PlanePosition and FrameContent are per
    frame. ``frame_order`` lists which slice each stored frame holds (default 0..n-1), so frames
    need not be stored in spatial order. The file carries everything a loader needs (geometry,
    rescale, windows, dimensions) but not the CT acquisition macros a fully conformant Enhanced CT
    IOD requires (dciodvfy lists those as missing).

    Returns
    -------
    Path of the written file.
    """
    vox = np.asarray(voxels_hu)
    if vox.ndim != 3:
        raise ValueError(f"voxels_hu must be [z, y, x], got shape {vox.shape}")
    intercept = (
        (-1024.0 if modality == "CT" else 0.0)
        if rescale_intercept is None
        else float(rescale_intercept)
    )
    stored, is_signed = _stored(vox, float(rescale_slope), intercept, None, 16)
    order = list(range(vox.shape[0])) if frame_order is None else [int(i) for i in frame_order]
    row, col = _unit(iop[:3]), _unit(iop[3:6])
    normal = np.cross(row, col)
    ds = _base_dataset(
        modality=modality,
        sop_class=ENHANCED_CT_IMAGE_STORAGE if modality == "CT" else ENHANCED_MR_IMAGE_STORAGE,
        patient_name=patient_name,
        patient_id=patient_id,
        birth_date=birth_date,
        patient_sex="O",
        patient_position=patient_position,
        study_uid=study_uid or _uid(uid_seed, "study"),
        series_uid=series_uid or _uid(uid_seed, "mfseries"),
        for_uid=_uid(uid_seed, "for"),
        series_description=series_description,
        series_number=1,
        study_date="20240101",
    )
    ds.file_meta = FileMetaDataset()
    ds.SOPInstanceUID = _uid(uid_seed, "mfinstance")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.InstanceNumber = 1
    ds.NumberOfFrames = len(order)
    ds.ContentQualification = "PRODUCT"
    _pixel_module(ds, stored[0], is_signed, "MONOCHROME2", 16)
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = [float(spacing[1]), float(spacing[2])]
    pm.SliceThickness = float(spacing[0])
    shared.PixelMeasuresSequence = DicomSequence([pm])
    po = Dataset()
    po.ImageOrientationPatient = [round(float(v), 8) for v in (*row, *col)]
    shared.PlaneOrientationSequence = DicomSequence([po])
    pvt = Dataset()
    pvt.RescaleIntercept = intercept
    pvt.RescaleSlope = float(rescale_slope)
    pvt.RescaleType = "HU" if modality == "CT" else "US"
    shared.PixelValueTransformationSequence = DicomSequence([pvt])
    if window is not None:
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = float(window[0]), float(window[1])
        voi.WindowCenterWidthExplanation = "DEFAULT"
        shared.FrameVOILUTSequence = DicomSequence([voi])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    for k in order:
        fg = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = [
            round(float(v), 6) for v in np.asarray(origin, float) + k * float(spacing[0]) * normal
        ]
        fg.PlanePositionSequence = DicomSequence([pp])
        fc = Dataset()
        fc.StackID = "1"
        fc.InStackPositionNumber = k + 1
        fc.DimensionIndexValues = [1, k + 1]
        fg.FrameContentSequence = DicomSequence([fc])
        per_frame.append(fg)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    dim_uid = _uid(uid_seed, "dimorg")
    org = Dataset()
    org.DimensionOrganizationUID = dim_uid
    ds.DimensionOrganizationSequence = DicomSequence([org])
    ds.DimensionOrganizationType = "3D"
    dims = []
    for tag, seq in (
        (0x00209056, 0x00209111),
        (0x00209057, 0x00209111),
    ):  # StackID, InStackPositionNumber
        di = Dataset()
        di.DimensionOrganizationUID = dim_uid
        di.DimensionIndexPointer = tag
        di.FunctionalGroupPointer = seq
        dims.append(di)
    ds.DimensionIndexSequence = DicomSequence(dims)
    for key, value in (extra or {}).items():
        setattr(ds, key, value)
    _set_pixels(ds, np.ascontiguousarray(stored[order]), UID(transfer_syntax))
    return _save(ds, Path(path))
