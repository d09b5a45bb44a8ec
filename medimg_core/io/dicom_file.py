"""Telling a DICOM file from its first bytes, and opening it, with or without the 128-byte preamble.

A DICOM file as the standard writes it has a 128-byte preamble, then 'DICM' and the file meta group. Older
software and some exports write the bare dataset instead: no preamble, often no file meta, so nothing says how
it is encoded. pydicom reads those only when forced, and then cannot decode their pixels until it is told the
transfer syntax, which such a file can only have been written in uncompressed (encapsulated pixel data needs the
file meta). `is_dicom` recognises both; `read_dataset` opens both.
"""
from __future__ import annotations

import io
import struct

VALUE_REPRESENTATIONS = {vr.encode() for vr in (
    "AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV").split()}
LONG_FORM = {vr.encode() for vr in "OB OD OF OL OV OW SQ UC UN UR UT UV".split()}  # 2 reserved bytes, 4-byte length
FIRST_GROUPS = (0x0002, 0x0008)  # a dataset opens with its file meta or its identification group
HEAD_BYTES = 132  # enough to see the preamble's 'DICM', or the first elements of a bare dataset


def is_dicom(head: bytes) -> bool:
    """Whether a file's first bytes (HEAD_BYTES of them suffice) are a DICOM file's: 'DICM' after the preamble, or
    a bare dataset's first elements (bare_dataset_start)."""
    return has_preamble(head) or bare_dataset_start(head)


def has_preamble(head: bytes) -> bool:
    """Whether a file's first bytes are the standard's: 128 bytes of preamble, then 'DICM'."""
    return head[128:132] == b"DICM"


def bare_dataset_start(head: bytes) -> bool:
    """Whether bytes begin as a DICOM dataset written without preamble: a first element of group 0002 or 0008,
    with an explicit value representation (either byte order) or an implicit one (little-endian, a short even
    length), and a second element, when the bytes reach it, that comes after it in one of the groups a dataset
    opens with (file meta, identification, patient, acquisition, position, image)."""
    if len(head) < 8:
        return False
    for order in "<>":
        group, element = struct.unpack(order + "HH", head[:4])
        if group not in FIRST_GROUPS:
            continue
        if head[4:6] in VALUE_REPRESENTATIONS:
            if head[4:6] in LONG_FORM:
                return True
            start = 8 + struct.unpack(order + "H", head[6:8])[0]
        elif order == "<":
            length = struct.unpack("<I", head[4:8])[0]
            if length > 1024 or length % 2:
                return False
            start = 8 + length
        else:
            return False
        return _follows(head[start:start + 4], order, (group, element))
    return False


def _follows(tag_bytes: bytes, order: str, first: tuple[int, int]) -> bool:
    """Whether a second element's tag comes after the first within the opening groups (true when not in view)."""
    if len(tag_bytes) < 4:
        return True
    second = struct.unpack(order + "HH", tag_bytes)
    return second[0] in FIRST_GROUPS + (0x0010, 0x0018, 0x0020, 0x0028) and second > first


def read_dataset(data: bytes, **kwargs):
    """pydicom's dataset of a DICOM file's bytes (kwargs go to `pydicom.dcmread`). A file without preamble is read
    forced, and given the transfer syntax it was found to be written in when its file meta names none, so that
    its pixels decode. Raises what pydicom raises on a damaged file."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    bare = not has_preamble(data)
    ds = pydicom.dcmread(io.BytesIO(data), force=bare, **kwargs)
    if bare and "TransferSyntaxUID" not in (getattr(ds, "file_meta", None) or {}):
        implicit, little = ds.original_encoding
        ds.file_meta = getattr(ds, "file_meta", None) or FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                          ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    return ds
