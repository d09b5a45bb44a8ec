"""DICOM errors in words: which element of a file is malformed, and what is wrong with its pixel data.

pydicom parses element values lazily and reports a bad one in Python's words ("invalid literal for int() with
base 10: '1A'"). These functions find the element and say it as a sentence for the user: its keyword, its tag
and (for elements that describe the image, never for one that could name a person) its value. They return
sentences; `imaging` raises them as ImageReadError.
"""
from __future__ import annotations

import re

NUMBER_WORDS = {"IS": "a whole number", "DS": "a decimal number", "US": "a whole number (2 bytes)",
                "SS": "a whole number (2 bytes)", "UL": "a whole number (4 bytes)", "SL": "a whole number (4 bytes)",
                "FL": "a number (4 bytes)", "FD": "a number (8 bytes)"}
QUOTABLE_GROUPS = (0x0018, 0x0020, 0x0028)  # acquisition, position and image description: values that name no one


def malformed_element(ds) -> str | None:
    """The sentence for the first top-level element of a dataset whose value does not fit its value representation
    (IS '1A', a 3-byte US ...), naming its keyword, tag and value; None when every number reads."""
    from pydicom.datadict import keyword_for_tag

    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if getattr(raw, "VR", None) not in NUMBER_WORDS:
            continue
        try:
            elem = ds[tag]
            for value in (elem.value if elem.VM > 1 else [elem.value]):
                if value is not None and value != "":
                    float(value)
        except Exception:  # noqa: BLE001 - any failure to read the number is the malformation we name
            return element_sentence(tag, keyword_for_tag(tag), raw.value, NUMBER_WORDS[raw.VR])
    return None


def element_sentence(tag, keyword: str, value, expected: str) -> str:
    """'The DICOM element NumberOfFrames (0028,0008) holds '1A', which is not a whole number, so ...'; the value is
    quoted only for elements that describe the image (QUOTABLE_GROUPS), never for one that could name a person."""
    from pydicom.tag import Tag

    tag = Tag(tag)
    holds = "a value"
    if tag.group in QUOTABLE_GROUPS:
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        text = "".join(ch for ch in text.strip() if ch.isprintable())[:32]
        holds = f"'{text}'" if text else "an empty value"
    name = keyword or "a private element"
    return (f"The DICOM element {name} ({tag.group:04X},{tag.element:04X}) holds {holds}, which is not {expected}, "
            "so the image cannot be read.")


def pixel_data_problem(message: str) -> str:
    """pydicom's complaint about pixel data, in one plain sentence (sizes kept, Python's wording left out)."""
    found = re.search(r"less than expected \((\d+) vs (\d+) bytes\)", message)
    if found:
        return (f"The DICOM pixel data is incomplete: the file holds {int(found[1]):,} bytes of pixels where its size "
                f"and bit depth call for {int(found[2]):,}, so it was cut short or its header is wrong.")
    return "The DICOM pixel data is damaged or incomplete, so the image cannot be decoded."


def undecodable(ds) -> str:
    """Why compressed pixel data did not decode: no decoder here for its compression, or damaged data."""
    from pydicom.pixels import get_decoder

    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    name = getattr(syntax, "name", str(syntax))
    try:
        available = get_decoder(syntax).is_available
    except (NotImplementedError, ValueError, TypeError):  # a transfer syntax pydicom has no decoder for at all
        available = False
    if available:
        return f"This DICOM file's pixel data, compressed with {name}, is damaged and cannot be decoded."
    return f"This DICOM file is compressed with {name}, which cannot be decoded here."
