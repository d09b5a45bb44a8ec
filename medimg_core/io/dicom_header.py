"""What a DICOM file says it is: the descriptive, non-identifying part of its header.

`read_dicom_header` reads a short allow-list of elements (`ALLOWED_TAGS`: modality, body part,
study and series description, view, pixel spacing, size, photometric interpretation, window)
into a `DicomHeader`. pydicom is asked for those elements only, so identifying ones (patient
name, IDs, birth date, addresses, institution, physicians, accession number, dates and times,
UIDs, device serials) are never parsed, never held, shown, logged or exported.

Modality codes and BodyPartExamined values are also mapped here to the vocabulary of the task
registry's class facts ("CT", "MRI", "X-ray"; "chest", "abdomen", "head", "hand", "breast"),
so `header_check` can compare them with what a model predicted. This module is not the image
reader: pixels are decoded by `imaging.read_image`, whose window this header reports.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

from .dicom_file import HEAD_BYTES, read_dataset
from .formats import sniff_format
from .imaging import ImageReadError, ImageSource, Window, _read_bytes, dicom_window

# the only elements ever read from a file (pydicom adds SpecificCharacterSet to decode the text)
ALLOWED_TAGS = ("Modality", "BodyPartExamined", "StudyDescription", "SeriesDescription", "ViewPosition",
                "PatientOrientation", "ImageOrientationPatient", "PixelSpacing", "ImagerPixelSpacing", "Rows",
                "Columns", "PhotometricInterpretation", "SamplesPerPixel", "WindowCenter", "WindowWidth")
MAX_TEXT = 64  # longest text kept from one element (the DICOM limit of a description)

# DICOM modality codes -> the facts' words ("CT", "MRI", "X-ray") or another plain name; codes not here
# (OT other, SC secondary capture, reports, ...) say nothing about the image and are not checked
# (plain radiographs are "X-ray"; mammography, angiography, fluoroscopy and dental films are X-ray techniques of
# their own, which no chest or hand X-ray class is)
MODALITY_NAMES = {
    "CT": "CT", "MR": "MRI", "MRI": "MRI",
    **dict.fromkeys(("CR", "DX", "DR", "RG", "XR", "XRAY"), "X-ray"),
    "MG": "mammography", "XA": "angiography", "RF": "fluoroscopy", "DF": "fluoroscopy", "PX": "dental X-ray",
    "IO": "dental X-ray",
    "US": "ultrasound", "PT": "PET", "NM": "nuclear medicine", "OCT": "optical coherence tomography",
    "XC": "photograph", "OP": "eye photograph", "ES": "endoscopy", "SM": "microscope slide",
}
IMPLIED_PARTS = {"MG": "BREAST"}  # mammography is an X-ray of the breast, whatever the body part field says

# BodyPartExamined terms (letters only, upper case) -> body parts in the facts' words
BODY_PARTS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("CHEST", "THORAX", "LUNG", "LUNGS", "HEART", "CARDIAC", "RIB", "RIBS", "CXR"), ("chest",)),
    **dict.fromkeys(("ABDOMEN", "ABD", "ABDO", "LIVER", "KIDNEY", "KIDNEYS", "PANCREAS", "STOMACH", "BOWEL",
                     "SPLEEN"), ("abdomen",)),
    **dict.fromkeys(("HEAD", "BRAIN", "SKULL", "CRANIUM", "KOPF", "SCHAEDEL", "SCHADEL", "FACE", "SINUS", "SINUSES",
                     "ORBIT", "ORBITS", "IAC"), ("head",)),
    **dict.fromkeys(("HAND", "HANDS", "FINGER", "FINGERS"), ("hand",)),
    "WRIST": ("wrist", "hand"),  # a wrist film shows the hand too
    **dict.fromkeys(("BREAST", "BREASTS", "MAMMA"), ("breast",)),
    "ABDOMENPELVIS": ("abdomen", "pelvis"), "ABDPELVIS": ("abdomen", "pelvis"),
    "CHESTABDOMEN": ("chest", "abdomen"), "CHESTABDPELVIS": ("chest", "abdomen", "pelvis"),
    "TORSO": ("chest", "abdomen"), "HEADNECK": ("head", "neck"),
    "WHOLEBODY": ("head", "chest", "abdomen", "pelvis"),
    **{term: (term.lower(),) for term in (
        "NECK", "PELVIS", "HIP", "SPINE", "SHOULDER", "ELBOW", "KNEE", "ANKLE", "FOOT", "FEET", "LEG", "ARM",
        "FOREARM", "HUMERUS", "FEMUR", "TIBIA", "EXTREMITY", "PROSTATE", "HEEL", "CLAVICLE", "SACRUM", "JAW")},
    **dict.fromkeys(("CSPINE", "TSPINE", "LSPINE", "LSSPINE", "SSPINE"), ("spine",)),
}
# the words of a study or series description that name a body part (a smaller, unambiguous part of BODY_PARTS:
# descriptions are free text, "CT CHEST W CONTRAST", "Sag T1 KNEE", "CT ABD AND PELVIS")
DESCRIPTION_TERMS = frozenset((
    "CHEST", "THORAX", "LUNG", "LUNGS", "CARDIAC", "HEART", "ABDOMEN", "ABD", "LIVER", "KIDNEY", "KIDNEYS", "PANCREAS",
    "PELVIS", "HEAD", "BRAIN", "SKULL", "HAND", "HANDS", "WRIST", "BREAST", "BREASTS", "MAMMA", "KNEE", "SPINE",
    "CSPINE", "TSPINE", "LSPINE", "SHOULDER", "HIP", "ANKLE", "FOOT", "ELBOW", "NECK", "PROSTATE", "FEMUR"))


@dataclass(frozen=True)
class DicomHeader:
    """The descriptive header of one DICOM image; None where the file leaves a field out (or garbles it)."""

    modality: str | None = None  # the code as written, e.g. "CT", "MR", "DX"
    body_part: str | None = None  # BodyPartExamined as written, e.g. "CHEST"
    study_description: str | None = None
    series_description: str | None = None
    view: str | None = None  # ViewPosition ("PA"), else the plane ("axial"), else PatientOrientation ("L / F")
    pixel_spacing: tuple[float, float] | None = None  # mm between rows, between columns
    rows: int | None = None
    columns: int | None = None
    photometric: str | None = None  # e.g. "MONOCHROME2"
    window: Window | None = None  # the window read_image applies; None = the image's own value range

    @property
    def modality_name(self) -> str | None:
        """The modality in plain words ("CT", "MRI", "X-ray", "ultrasound", ...); None when the code says nothing."""
        return modality_name(self.modality)

    @property
    def anatomy(self) -> frozenset[str]:
        """The body parts the header names, in the facts' words (empty when it names none we know)."""
        return body_parts(self.body_part or IMPLIED_PARTS.get(_letters(self.modality or ""), ""))

    @property
    def described_anatomy(self) -> frozenset[str]:
        """The body parts the study and series descriptions name (DESCRIPTION_TERMS), in the facts' words."""
        words = re.split(r"[^A-Za-z]+", f"{self.study_description or ''} {self.series_description or ''}".upper())
        return frozenset(part for word in words if word in DESCRIPTION_TERMS for part in BODY_PARTS[word])

    @property
    def named_anatomy(self) -> tuple[frozenset[str], str]:
        """The body parts the header names and where: BodyPartExamined (or what the modality implies), else the
        study and series descriptions; (empty, "") when it names none we know."""
        if self.anatomy:
            return self.anatomy, "body part" if self.body_part and body_parts(self.body_part) else "modality"
        described = self.described_anatomy
        return (described, "description") if described else (frozenset(), "")

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (window: centre, width and where it comes from; 'image' = its own range)."""
        w = self.window
        return {"modality": self.modality, "modality_name": self.modality_name, "body_part": self.body_part,
                "study_description": self.study_description, "series_description": self.series_description,
                "view": self.view, "pixel_spacing": list(self.pixel_spacing) if self.pixel_spacing else None,
                "rows": self.rows, "columns": self.columns, "photometric": self.photometric,
                "window": {"center": w.center if w else None, "width": w.width if w else None,
                           "source": w.source if w else "image"}}


def modality_name(code: str | None) -> str | None:
    """A DICOM modality code in plain words ("MR" -> "MRI", "CR"/"DX"/"MG" -> "X-ray"); None if it says nothing."""
    return MODALITY_NAMES.get(_letters(code or ""))


def body_parts(value: str | None) -> frozenset[str]:
    """A BodyPartExamined value in the facts' words, tolerant of case, spacing and synonyms ("Thorax" -> chest).

    The whole value is looked up first ("ABDOMEN_PELVIS"), then word by word ("CHEST PA"); terms we do not
    know are left out, so an unfamiliar value names no body part rather than a wrong one.
    """
    whole = BODY_PARTS.get(_letters(value or ""))
    if whole:
        return frozenset(whole)
    return frozenset(part for word in re.split(r"[^A-Za-z]+", value or "") for part in BODY_PARTS.get(word.upper(), ()))


def read_dicom_header(source: ImageSource) -> DicomHeader | None:
    """The descriptive header of a DICOM (path, bytes or binary file object), read in memory.

    Returns None for anything that is not a readable DICOM (another format, an empty or missing file, a
    header with none of the fields); a field that is missing or malformed is None, so a damaged header
    never raises.
    """
    data = _dicom_bytes(source)
    if data is None:
        return None
    with warnings.catch_warnings():  # a malformed value's warning would quote it: nothing from the file is logged
        warnings.simplefilter("ignore")
        try:
            ds = read_dataset(data, stop_before_pixels=True, specific_tags=list(ALLOWED_TAGS))
        except Exception:  # noqa: BLE001 - pydicom raises many kinds on a damaged file; the contract is None
            return None
        header = DicomHeader(
            modality=_text(ds, "Modality"), body_part=_text(ds, "BodyPartExamined"),
            study_description=_text(ds, "StudyDescription"), series_description=_text(ds, "SeriesDescription"),
            view=_view(ds), pixel_spacing=_spacing(ds), rows=_count(ds, "Rows"), columns=_count(ds, "Columns"),
            photometric=_text(ds, "PhotometricInterpretation"), window=_field(lambda: dicom_window(ds)),
        )
    return header if any(getattr(header, f.name) is not None for f in fields(header)) else None


def _dicom_bytes(source: ImageSource) -> bytes | None:
    """The source's bytes when it is a DICOM (a path is sniffed before it is read whole), else None."""
    if isinstance(source, (str, Path)):
        try:
            with open(source, "rb") as f:
                if sniff_format(f.read(HEAD_BYTES)) != "dicom":
                    return None
        except OSError:
            return None
    try:
        data = _read_bytes(source)
    except (ImageReadError, OSError):
        return None
    return data if sniff_format(data) == "dicom" else None


def _field(read):
    """The value of one field's reader, or None when the element is malformed (pydicom parses lazily)."""
    try:
        return read()
    except Exception:  # noqa: BLE001 - one garbled element costs that field, never the header
        return None


def _letters(text: str) -> str:
    """Only the letters of a code or term, upper case ("X-Ray" -> "XRAY", "abdomen_pelvis" -> "ABDOMENPELVIS")."""
    return re.sub(r"[^A-Z]", "", text.upper())


def _text(ds, keyword: str) -> str | None:
    """A text element as one printable line of at most MAX_TEXT characters (multiple values joined by ' / ')."""
    from pydicom.multival import MultiValue

    def read() -> str | None:
        value = ds.get(keyword)
        if value is None:
            return None
        parts = [str(v) for v in value] if isinstance(value, MultiValue) else [str(value)]
        text = " / ".join(p.strip() for p in parts if p.strip())
        text = "".join(ch for ch in text if ch.isprintable())[:MAX_TEXT].strip()
        return text or None

    return _field(read)


def _count(ds, keyword: str) -> int | None:
    """A positive integer element (Rows, Columns), else None."""
    value = _field(lambda: int(ds.get(keyword)))
    return value if value is not None and value > 0 else None


def _spacing(ds) -> tuple[float, float] | None:
    """PixelSpacing (else ImagerPixelSpacing, as X-ray detectors write it) in mm: (between rows, between columns)."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        pair = _field(lambda k=keyword: tuple(float(v) for v in ds.get(k)))
        if pair and len(pair) == 2 and all(math.isfinite(v) and v > 0 for v in pair):
            return pair
    return None


def _view(ds) -> str | None:
    """How the image was taken: ViewPosition (PA, AP, LL ...), else the plane, else PatientOrientation."""
    return _text(ds, "ViewPosition") or _field(lambda: _plane(ds.get("ImageOrientationPatient"))) \
        or _text(ds, "PatientOrientation")


def _plane(orientation) -> str | None:
    """The slice plane (axial, coronal, sagittal) from ImageOrientationPatient's row and column directions."""
    if orientation is None or len(orientation) != 6:
        return None
    r, c = [float(v) for v in orientation[:3]], [float(v) for v in orientation[3:]]
    normal = [abs(r[1] * c[2] - r[2] * c[1]), abs(r[2] * c[0] - r[0] * c[2]), abs(r[0] * c[1] - r[1] * c[0])]
    if max(normal) < 0.5:
        return None
    return ("sagittal", "coronal", "axial")[normal.index(max(normal))]
