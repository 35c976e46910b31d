"""De-identification for exports: DICOM PS3.15 Annex E Basic Application Confidentiality Profile.

No Qt. One :class:`Anonymizer` per export session: every export it touches (DICOM SEG, PDF,
PNG, NIfTI) then agrees on the same pseudonyms and the same replacement UIDs, so the anonymised
SEG still references the anonymised series and the report quotes the same UIDs.

What the basic profile does here (PS3.15 Table E.1-1, action codes):

* ``X`` remove, ``Z`` replace with an empty value, ``D`` replace with a dummy value, for the
  identifying attributes listed in :data:`ACTIONS` (names, IDs, dates and times, addresses,
  institution, physicians, operators, free-text descriptions and comments, device identifiers),
  in nested sequences too.
* ``U`` every UID that is not a DICOM-defined one (``1.2.840.10008.*``: SOP classes, transfer
  syntaxes, coding schemes) is replaced through :class:`UidMap`: the same source UID always
  gives the same new UID within a session (and across sessions that share a ``secret``).
* All private attributes, overlays (60xx) and curves (50xx) are removed. Any other person name
  is emptied; any other date, date-time or time is removed.
* PatientName / PatientID become pseudonyms derived from a keyed hash of the original PatientID;
  PatientIdentityRemoved = YES; DeidentificationMethod and DeidentificationMethodCodeSequence
  (DCM 113100 "Basic Application Confidentiality Profile") are set.

:func:`identifiers_of` and :func:`scan_for_identifiers` let an export verify its own output:
they look for the source's name, ID and birth date (several spellings) in raw bytes, including
zlib-compressed PDF streams.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import logging
import re
import secrets
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, generate_uid

from viewer.volume import VolumeMeta

__all__ = [
    "ACTIONS",
    "UidMap",
    "Anonymizer",
    "session_anonymizer",
    "DEIDENTIFICATION_METHOD",
    "identifiers_of",
    "scan_for_identifiers",
    "scan_files",
]

log = logging.getLogger(__name__)

DEIDENTIFICATION_METHOD = "DICOM PS3.15 E.1 Basic Profile (clinical-viewer)"  # LO: <= 64 chars
DUMMY_DATE = "19000101"
DUMMY_TIME = "000000"

# PS3.15 Table E.1-1, basic profile column, for the attributes real CT/MR headers carry.
# Where the table gives a choice ("X/Z", "Z/D", "X/Z/D") the least destructive action that
# keeps a valid object is used (Z for type 2, D for type 1).
ACTIONS: dict[str, str] = {
    # patient
    "PatientName": "Z", "PatientID": "Z", "PatientBirthDate": "Z", "PatientSex": "Z",
    "PatientBirthTime": "X", "PatientAge": "X", "PatientSize": "X", "PatientWeight": "X",
    "PatientAddress": "X", "PatientTelephoneNumbers": "X", "PatientMotherBirthName": "X",
    "PatientBirthName": "X", "OtherPatientIDs": "X", "OtherPatientIDsSequence": "X",
    "OtherPatientNames": "X", "IssuerOfPatientID": "X", "IssuerOfPatientIDQualifiersSequence": "X",
    "PatientComments": "X", "AdditionalPatientHistory": "X", "EthnicGroup": "X", "Occupation": "X",
    "PatientReligiousPreference": "X", "MilitaryRank": "X", "BranchOfService": "X",
    "MedicalRecordLocator": "X", "MedicalAlerts": "X", "Allergies": "X", "CountryOfResidence": "X",
    "RegionOfResidence": "X", "PregnancyStatus": "X", "SmokingStatus": "X", "SpecialNeeds": "X",
    "PatientState": "X", "LastMenstrualDate": "X", "PatientInsurancePlanCodeSequence": "X",
    "PatientPrimaryLanguageCodeSequence": "X", "ResponsiblePerson": "X",
    "ResponsibleOrganization": "X", "PatientSexNeutered": "X", "ReferencedPatientSequence": "X",
    "ReferencedPatientPhotoSequence": "X", "AdmissionID": "X", "AdmittingDiagnosesDescription": "X",
    "AdmittingDiagnosesCodeSequence": "X", "CurrentPatientLocation": "X", "PatientTransportArrangements": "X",
    # study / visit / request
    # Z allows "a non-zero length dummy value": D keeps DICOMDIR builders (dciodvfy) content
    "StudyDate": "D", "StudyTime": "D", "AccessionNumber": "Z", "StudyID": "D",
    "ReferringPhysicianName": "Z", "ReferringPhysicianAddress": "X",
    "ReferringPhysicianTelephoneNumbers": "X", "ReferringPhysicianIdentificationSequence": "X",
    "StudyDescription": "X", "PhysiciansOfRecord": "X", "PhysiciansOfRecordIdentificationSequence": "X",
    "NameOfPhysiciansReadingStudy": "X", "PhysiciansReadingStudyIdentificationSequence": "X",
    "RequestingPhysician": "X", "RequestingService": "X", "RequestAttributesSequence": "X",
    "RequestedProcedureDescription": "X", "RequestedProcedureID": "X", "ReasonForStudy": "X",
    "ReasonForTheRequestedProcedure": "X", "RequestedProcedureCodeSequence": "X",
    "ReferencedStudySequence": "X", "ReferencedPerformedProcedureStepSequence": "X",
    "PerformedProcedureStepDescription": "X", "PerformedProcedureStepID": "X",
    "PerformedProcedureStepStartDate": "X", "PerformedProcedureStepStartTime": "X",
    "PerformedProcedureStepEndDate": "X", "PerformedProcedureStepEndTime": "X",
    "ScheduledProcedureStepDescription": "X", "ScheduledProcedureStepID": "X",
    "ScheduledProcedureStepStartDate": "X", "ScheduledProcedureStepStartTime": "X",
    "ProcedureCodeSequence": "X", "StudyComments": "X", "InterpretationAuthor": "X",
    "ConsultingPhysicianName": "X", "VisitComments": "X", "AdmittingDate": "X", "AdmittingTime": "X",
    "DischargeDate": "X", "DischargeTime": "X", "ServiceEpisodeID": "X", "ServiceEpisodeDescription": "X",
    # series / equipment / acquisition
    "SeriesDate": "X", "SeriesTime": "X", "AcquisitionDate": "X", "AcquisitionTime": "X",
    "AcquisitionDateTime": "X", "ContentDate": "Z", "ContentTime": "Z",
    "InstanceCreationDate": "X", "InstanceCreationTime": "X", "SeriesDescription": "X",
    "ProtocolName": "X", "PerformingPhysicianName": "X", "PerformingPhysicianIdentificationSequence": "X",
    "OperatorsName": "X", "OperatorIdentificationSequence": "X", "InstitutionName": "X",
    "InstitutionAddress": "X", "InstitutionalDepartmentName": "X", "InstitutionCodeSequence": "X",
    "StationName": "X", "DeviceSerialNumber": "X", "DetectorID": "X", "PlateID": "X",
    "GantryID": "X", "CassetteID": "X", "GeneratorID": "X", "DeviceDescription": "X",
    "AcquisitionDeviceProcessingDescription": "X", "AcquisitionComments": "X",
    "ContrastBolusAgent": "Z", "DerivationDescription": "X", "ImageComments": "X",
    "FrameComments": "X",
    "TimezoneOffsetFromUTC": "X", "ContentCreatorName": "Z", "ContentCreatorIdentificationCodeSequence": "X",
    "VerifyingObserverName": "D", "VerifyingObserverIdentificationCodeSequence": "X",
    "VerifyingOrganization": "X", "PersonName": "D", "PersonIdentificationCodeSequence": "X",
    "TextValue": "X", "TextComments": "X", "TextString": "X", "ModifiedAttributesSequence": "X",
    "OriginalAttributesSequence": "X", "DigitalSignaturesSequence": "X", "DataSetTrailingPadding": "X",
    "StorageMediaFileSetID": "X", "AcquisitionContextSequence": "X", "IconImageSequence": "X",
    "SourceApplicationEntityTitle": "X", "SendingApplicationEntityTitle": "X",
    "ReceivingApplicationEntityTitle": "X", "TopicTitle": "X", "TopicSubject": "X",
    "TopicAuthor": "X", "TopicKeywords": "X", "Arbitrary": "X",
}
# UIDs that are identifiers of things in the world, never of the standard (kept when DICOM-defined)
_KEEP_UID_KEYWORDS = {
    "SOPClassUID", "ReferencedSOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID",
    "ImplementationClassUID", "CodingSchemeUID", "ContextUID", "MappingResourceUID",
    "ContextGroupExtensionCreatorUID", "PrivateInformationCreatorUID", "SOPClassesInStudy",
    "AffectedSOPClassUID", "RequestedSOPClassUID", "DimensionIndexPointer",
}
_DICOM_ROOT = "1.2.840.10008."


class UidMap:
    """Consistent replacement UIDs: ``uid_map(source_uid) -> new_uid``.

    New UIDs are ``pydicom.uid.generate_uid`` values derived from ``secret`` and the source UID
    (SHA-512), so the same source UID maps to the same new UID for as long as the secret is the
    same; the source UID cannot be recovered without the secret. A value that this map itself
    produced is returned unchanged (mapping is idempotent), so anonymising an object built from
    already-anonymised headers keeps its references consistent.

    Parameters
    ----------
    secret : per-session random bytes (default: 16 fresh random bytes). Pass a stored secret to
        keep UIDs stable across sessions.
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(16)
        self._key = hashlib.sha256(b"uid|" + self._secret).hexdigest()
        self._forward: dict[str, str] = {}
        self._outputs: set[str] = set()

    def __call__(self, uid: str) -> str:
        uid = str(uid).strip().rstrip("\0")
        if not uid or uid in self._outputs:
            return uid
        new = self._forward.get(uid)
        if new is None:
            new = str(generate_uid(entropy_srcs=[self._key, "|", uid]))
            self._forward[uid] = new
            self._outputs.add(new)
        return new

    def __len__(self) -> int:
        return len(self._forward)

    def __contains__(self, uid: object) -> bool:
        return str(uid) in self._forward

    def items(self) -> list[tuple[str, str]]:
        """(source, new) pairs mapped so far. Keep private: it re-identifies the data."""
        return list(self._forward.items())

    @property
    def secret(self) -> bytes:
        return self._secret


@dataclass
class Anonymizer:
    """One export session's de-identification state (pseudonyms and the UID map).

    Parameters
    ----------
    uid_map : shared :class:`UidMap` (default: a new one with a random secret).
    patient_name, patient_id : pseudonyms to use instead of the derived ones.
    """

    uid_map: UidMap = field(default_factory=UidMap)
    patient_name: str | None = None
    patient_id: str | None = None

    def pseudonym(self, patient_id: str) -> tuple[str, str]:
        """``(PatientName, PatientID)`` pseudonyms for a source PatientID (keyed hash)."""
        digest = hmac.new(self.uid_map.secret, b"pid|" + str(patient_id).encode("utf-8"), "sha256")
        # letters only: a pseudonym can never contain a date or a numeric ID by accident
        code = "".join(chr(ord("A") + b % 26) for b in digest.digest()[:8])
        return (self.patient_name or f"ANONYMOUS^{code}", self.patient_id or f"ANON-{code}")

    # ------------------------------------------------------------------ DICOM datasets
    def dataset(self, ds: Dataset) -> Dataset:
        """A de-identified deep copy of ``ds`` (the caller's dataset is not modified)."""
        out = copy.deepcopy(ds)
        name, pid = self.pseudonym(str(ds.get("PatientID", "")))
        self._clean(out)
        meta = getattr(out, "file_meta", None)
        if isinstance(meta, FileMetaDataset):
            for kw in ("MediaStorageSOPInstanceUID",):
                if kw in meta:
                    setattr(meta, kw, self.uid_map(getattr(meta, kw)))
            for kw in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle"):
                if kw in meta:
                    delattr(meta, kw)
        self.mark(out, name=name, pid=pid)
        return out

    def mark(self, ds: Dataset, *, name: str | None = None, pid: str | None = None) -> None:
        """Set the pseudonyms and the de-identification attributes on ``ds`` in place."""
        if name is None or pid is None:
            name, pid = self.pseudonym(str(ds.get("PatientID", "")))
        ds.PatientName = name
        ds.PatientID = pid
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
        code = Dataset()
        code.CodeValue = "113100"
        code.CodingSchemeDesignator = "DCM"
        code.CodeMeaning = "Basic Application Confidentiality Profile"
        ds.DeidentificationMethodCodeSequence = DicomSequence([code])
        ds.LongitudinalTemporalInformationModified = "REMOVED"  # dates removed or dummies (no shift)

    def _clean(self, ds: Dataset) -> None:
        for elem in list(ds):
            tag = elem.tag
            if tag.is_private or (tag.group & 0xFF00) in (0x5000, 0x6000) and tag.group % 2 == 0:
                del ds[tag]
                continue
            kw = elem.keyword
            action = ACTIONS.get(kw)
            if elem.VR == "SQ":
                if action == "X":
                    del ds[tag]
                elif action in ("Z", "D"):
                    elem.value = DicomSequence([])
                else:
                    for item in elem.value:
                        self._clean(item)
                continue
            if action == "X":
                del ds[tag]
            elif action == "Z":
                elem.value = ""
            elif action == "D":
                elem.value = {"DA": DUMMY_DATE, "TM": DUMMY_TIME, "DT": DUMMY_DATE + DUMMY_TIME,
                              "PN": "ANONYMOUS"}.get(elem.VR, "ANONYMOUS")
            elif elem.VR == "UI":
                if kw not in _KEEP_UID_KEYWORDS:
                    elem.value = self._map_uids(elem.value)
            elif elem.VR == "PN":
                elem.value = ""
            elif elem.VR in ("DA", "DT", "TM"):
                del ds[tag]

    def _map_uids(self, value: object) -> object:
        def one(u: object) -> str:
            s = str(u)
            return s if s.startswith(_DICOM_ROOT) else self.uid_map(s)

        if value is None or value == "":
            return value
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            return [one(v) for v in value]  # type: ignore[union-attr]
        return UID(one(value))

    # ------------------------------------------------------------------ volume metadata
    def meta(self, meta: VolumeMeta) -> VolumeMeta:
        """A copy of ``meta`` fit for anonymised exports: pseudonyms, mapped UIDs, no free text.

        Dates, descriptions, body part, source file paths and header extras are removed;
        modality, geometry-related and display fields are kept.
        """
        name, pid = self.pseudonym(meta.patient_id)
        return replace(
            meta,
            patient_name=name,
            patient_id=pid,
            patient_birth_date="",
            patient_sex="",
            study_instance_uid=self.uid_map(meta.study_instance_uid) if meta.study_instance_uid else "",
            study_date="",
            study_description="",
            series_instance_uid=self.uid_map(meta.series_instance_uid) if meta.series_instance_uid else "",
            series_description="",
            frame_of_reference_uid=self.uid_map(meta.frame_of_reference_uid) if meta.frame_of_reference_uid else "",
            body_part="",
            sop_instance_uids=[self.uid_map(u) if u else "" for u in meta.sop_instance_uids],
            frame_numbers=list(meta.frame_numbers),
            source_files=[],
            window_presets=list(meta.window_presets),
            extra={},
        )


_SESSION: Anonymizer | None = None


def session_anonymizer() -> Anonymizer:
    """The process-wide :class:`Anonymizer` that exports use when none is passed.

    One per process (a CLI run, a GUI session), created on first use with a random secret, so
    that an anonymised SEG, report and key images written separately still agree on pseudonyms
    and UIDs. Pass an explicit ``anonymizer`` to scope consistency differently.
    """
    global _SESSION
    if _SESSION is None:
        _SESSION = Anonymizer()
    return _SESSION


# ---------------------------------------------------------------------- verification helpers
def identifiers_of(*, patient_name: str = "", patient_id: str = "", birth_date: str = "",
                   extra: Iterable[str] = ()) -> list[str]:
    """Strings whose presence in an anonymised export would identify the patient.

    The DICOM name ``Family^Given^Middle`` gives the full name in several spellings (also
    ``Family_Given`` and ``FamilyGiven``, as folder names often have it) and each
    component of 4 or more characters (shorter ones match
    binary data by chance); the birth date ``YYYYMMDD`` gives ``YYYYMMDD``,
    ``YYYY-MM-DD``, ``DD/MM/YYYY``, ``MM/DD/YYYY`` and ``DD.MM.YYYY``.
    """
    out: list[str] = []
    parts = [p.strip() for p in str(patient_name).split("^") if p.strip()]
    if parts:
        out += [str(patient_name).strip(), " ".join(parts), " ".join(reversed(parts[:2])), ", ".join(parts[:2]),
                "_".join(parts[:2]), "".join(parts[:2])]
        out += [p for p in parts if len(p) >= 4]
    if str(patient_id).strip():
        out.append(str(patient_id).strip())
    b = re.sub(r"\D", "", str(birth_date))
    if len(b) == 8:
        y, m, d = b[:4], b[4:6], b[6:]
        out += [b, f"{y}-{m}-{d}", f"{d}/{m}/{y}", f"{m}/{d}/{y}", f"{d}.{m}.{y}"]
    out += [s for s in extra if s]
    seen: dict[str, None] = {}
    for s in out:
        seen.setdefault(s, None)
    return list(seen)


_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)


def _views(data: bytes) -> list[bytes]:
    """The raw bytes plus every zlib stream inside them that inflates (PDF FlateDecode, PNG IDAT)."""
    views = [data]
    for m in _STREAM.finditer(data):
        try:
            views.append(zlib.decompress(m.group(1)))
        except zlib.error:
            continue
    if data[:8] == b"\x89PNG\r\n\x1a\n":  # compressed text chunks (pixels are not text)
        pos = 8
        while pos + 8 <= len(data):
            n = int.from_bytes(data[pos:pos + 4], "big")
            kind = data[pos + 4:pos + 8]
            chunk = data[pos + 8:pos + 8 + n]
            if kind in (b"zTXt", b"iTXt"):
                with_null = chunk.split(b"\0", 1)
                if len(with_null) == 2 and len(with_null[1]) > 1:
                    try:
                        views.append(zlib.decompress(with_null[1][1:]))
                    except zlib.error:
                        pass
            pos += 12 + n
    if data[:2] == b"\x1f\x8b":  # gzip (.nii.gz)
        try:
            views.append(zlib.decompress(data, 16 + zlib.MAX_WBITS))
        except zlib.error:
            pass
    return views


def scan_for_identifiers(data: bytes, identifiers: Iterable[str]) -> list[str]:
    """Identifiers found in ``data`` (case-insensitive; UTF-8, Latin-1 and UTF-16 encodings).

    Also searches inflated zlib streams (PDF FlateDecode, gzip). Returns the identifiers found.
    """
    views = [v.lower() for v in _views(data)]
    found = []
    for ident in identifiers:
        low = ident.lower()
        needles = {low.encode("utf-8"), low.encode("latin-1", "ignore"),
                   low.encode("utf-16-be"), low.encode("utf-16-le")}
        if any(n and n in v for v in views for n in needles):
            found.append(ident)
    return found


def scan_files(paths: Iterable[str | Path], identifiers: Iterable[str]) -> dict[str, list[str]]:
    """``{file: identifiers found}`` for every file (and file name) that contains one."""
    idents = list(identifiers)
    hits: dict[str, list[str]] = {}
    for p in paths:
        p = Path(p)
        found = scan_for_identifiers(p.read_bytes(), idents)
        found += [i for i in idents if i.lower() in p.name.lower() and i not in found]
        if found:
            hits[str(p)] = found
    return hits
