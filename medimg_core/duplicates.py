"""Exact and near-duplicate images: perceptual hashes, groups within a Hamming distance, a report.

A dataset can repeat an image byte for byte, or as a re-encoded, rescaled or slightly cropped copy
(the brain tumour MRI set repeats images between its Training and Testing folders and within
Training). Exact duplicates share their pixels; near-duplicates share their perceptual hash (pHash,
`imagehash.phash`: the signs of the lowest 8 x 8 DCT coefficients of a 32 x 32 thumbnail against
their median) up to a few of its 64 bits. Groups are the connected components of "within
max_distance bits", so a chain of near copies is one group. `data.split_train_val` keeps a group on
one side of the validation split. This module reads no files: it works on the uint8 image stacks a
Dataset holds (N x S x S).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .data import Dataset

DEFAULT_MAX_DISTANCE = 4  # of 64 pHash bits: re-encoded or resized copies land within 0-2, unrelated scans near 32
HASH_BITS = 64
PART_NAMES = {"training": "train", "train": "train", "testing": "test", "test": "test", "validation": "val", "val": "val"}


def duplicate_groups(images: np.ndarray) -> np.ndarray:
    """Group id per image; images with identical pixels share one id (ids in order of first appearance)."""
    seen: dict[bytes, int] = {}
    return np.array([seen.setdefault(hashlib.md5(im.tobytes()).digest(), len(seen)) for im in images], np.int64)


def perceptual_hashes(images: np.ndarray) -> np.ndarray:
    """64-bit pHash (imagehash.phash) of each image of an N x H x W uint8 stack, as N uint64.

    The bits are packed in imagehash's order, so `f"{h:016x}"` is imagehash's hex string.
    """
    import imagehash
    from PIL import Image

    bits = np.stack([imagehash.phash(Image.fromarray(im)).hash.reshape(-1) for im in images]) if len(images) else \
        np.zeros((0, HASH_BITS), bool)
    return np.packbits(bits, axis=1).view(">u8").reshape(-1).astype(np.uint64)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Number of differing bits between 64-bit hashes (broadcast like a ^ b)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64)))


def near_pairs(hashes: np.ndarray, max_distance: int = DEFAULT_MAX_DISTANCE,
               block: int = 1 << 22) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) of every pair i < j whose hashes differ in at most max_distance bits.

    Compares all pairs in blocks of about `block` hashes at a time (55,000 images: about 1.5e9 pairs,
    seconds on a CPU, tens of MB of memory).
    """
    if not 0 <= max_distance <= HASH_BITS:
        raise ValueError(f"max_distance must be between 0 and {HASH_BITS} bits, not {max_distance}")
    hashes = np.asarray(hashes, np.uint64)
    n = len(hashes)
    rows = max(1, block // max(n, 1))
    found_i, found_j, found_d = [], [], []
    for start in range(0, n, rows):
        d = hamming(hashes[start : start + rows, None], hashes[None, start:])  # columns from `start`: each pair once
        ii, jj = np.nonzero(d <= max_distance)
        later = jj > ii
        found_i.append(ii[later] + start)
        found_j.append(jj[later] + start)
        found_d.append(d[ii[later], jj[later]])
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8)
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d).astype(np.uint8)


def connected_groups(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Group id per item 0..n-1 when each pair (i[k], j[k]) joins two items (ids in order of first appearance)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def near_duplicate_groups(images: np.ndarray, max_distance: int = DEFAULT_MAX_DISTANCE) -> np.ndarray:
    """Group id per image: images whose pHashes are within max_distance bits (directly or through a chain)
    share one id; identical images always do."""
    i, j, _ = near_pairs(perceptual_hashes(images), max_distance)
    return connected_groups(len(images), i, j)


def group_counts(groups: np.ndarray) -> tuple[int, int]:
    """(groups of more than one image, images in them)."""
    sizes = np.bincount(groups) if len(groups) else np.zeros(0, np.int64)
    return int((sizes > 1).sum()), int(sizes[sizes > 1].sum())


def near_duplicate_summary(images: np.ndarray, max_distance: int) -> dict:
    """What a model card records of the near-duplicates its split kept together: max_distance, groups, images."""
    groups, members = group_counts(near_duplicate_groups(images, max_distance))
    return {"max_distance": max_distance, "groups": groups, "images": members}


def official_parts(files: list[str], split: np.ndarray) -> np.ndarray:
    """Each image's official part: its split when the source names one (a MedMNIST npz), else the
    Training/Testing/val folder in its path (normalised to "train", "test", "val"), else ""."""
    parts = np.asarray(split, dtype=object).copy()
    for k, (given, file) in enumerate(zip(parts, files)):
        if not given:
            folders = [PART_NAMES.get(p.lower(), "") for p in PurePosixPath(file).parts[:-1]]
            parts[k] = next((p for p in reversed(folders) if p), "")
    return parts.astype(str)


@dataclass
class DuplicateReport:
    """What a duplicate search found in one dataset (counts of groups of more than one image)."""

    images: int
    max_distance: int
    exact_groups: int
    exact_images: int  # images in exact-duplicate groups (the first of each included)
    near_groups: int  # groups within max_distance bits, exact duplicates included
    near_images: int
    largest_group: int
    mixed_label_groups: int  # near-duplicate groups whose images carry different labels
    parts: dict[str, int]  # images per official part ("" = none named)
    cross_part_groups: int  # near-duplicate groups with images in more than one official part
    examples: list[dict]  # a few pairs: {"a", "b", "distance"}
    model_split: dict | None = None  # a model's validation images with a near-duplicate in its training (model_leaks)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)

    def lines(self, name: str) -> list[str]:
        """The report as text lines, headed by the dataset's name."""
        parts = ", ".join(f"{p or 'unnamed'} {n:,}" for p, n in self.parts.items())
        spans = (f"{self.cross_part_groups:,} near-duplicate groups span official parts ({parts})" if len(self.parts) > 1
                 else "no official part named (no Training/Testing folder, no npz split)" if "" in self.parts
                 else f"one official part only ({parts}): no group can span parts")
        out = [f"{name}: {self.images:,} images, near-duplicates = pHash within {self.max_distance} of {HASH_BITS} bits",
               f"  exact duplicates: {self.exact_groups:,} groups, {self.exact_images:,} images "
               f"({self.exact_images - self.exact_groups:,} beyond the first of each group)",
               f"  near-duplicates:  {self.near_groups:,} groups, {self.near_images:,} images (exact ones included; "
               f"largest group {self.largest_group:,}; {self.mixed_label_groups:,} groups mix labels)",
               f"  {spans}"]
        if self.model_split:
            m = self.model_split
            out.append(f"  the model's validation split ({m['split']}): {m['near_duplicate_in_train']:,} of its "
                       f"{m['validation']:,} images have a near-duplicate in its training split "
                       f"({m['exact_duplicate_in_train']:,} an exact one)")
        out += [f"  e.g. {e['a']}  ~  {e['b']}  ({e['distance']} bits)" for e in self.examples]
        return out


def find_duplicates(ds: Dataset, max_distance: int = DEFAULT_MAX_DISTANCE, examples: int = 5,
                    card: dict | None = None) -> DuplicateReport:
    """Exact and near-duplicate groups of a Dataset (images, labels, files, split), with example pairs, and
    with a model card, how many of that model's validation images have a near-duplicate in its training."""
    hashes = perceptual_hashes(ds.images)
    i, j, d = near_pairs(hashes, max_distance)
    groups, exact = connected_groups(len(ds.images), i, j), duplicate_groups(ds.images)
    exact_groups, exact_images = group_counts(exact)
    near_groups, near_images = group_counts(groups)
    parts = official_parts(ds.files, ds.split)
    names, counts = np.unique(parts, return_counts=True)
    return DuplicateReport(
        images=len(ds.images), max_distance=max_distance, exact_groups=exact_groups, exact_images=exact_images,
        near_groups=near_groups, near_images=near_images,
        largest_group=int(np.bincount(groups).max()) if len(groups) else 0,
        mixed_label_groups=spanning_groups(groups, ds.labels), parts=dict(zip(names.tolist(), counts.tolist())),
        cross_part_groups=spanning_groups(groups, parts), examples=example_pairs(ds.files, i, j, d, groups, examples),
        model_split=model_leaks(ds, card, groups, exact) if card else None)


def model_leaks(ds: Dataset, card: dict, groups: np.ndarray, exact: np.ndarray) -> dict | None:
    """How many of a model's validation images (its split rebuilt from its card) share a group with one of its
    training images; None when the card has no training record or the rebuilt split is not the card's size."""
    from .explore import model_split

    if not card.get("training", {}).get("config"):
        return None
    split = model_split(ds, card)
    val, train, data = split == "val", split == "train", card.get("data", {})
    if int(val.sum()) != data.get("validation"):
        return None
    return {"validation": int(val.sum()), "near_duplicate_in_train": int(np.isin(groups[val], groups[train]).sum()),
            "exact_duplicate_in_train": int(np.isin(exact[val], exact[train]).sum()), "split": data.get("split", "")}


def spanning_groups(groups: np.ndarray, values: np.ndarray) -> int:
    """Number of groups whose members do not all share one value (label, official part)."""
    if not len(groups):
        return 0
    _, codes = np.unique(values, return_inverse=True)
    pairs = np.unique(np.stack([groups, codes.reshape(-1)], 1), axis=0)
    return int((np.bincount(pairs[:, 0]) > 1).sum())


def example_pairs(files: list[str], i: np.ndarray, j: np.ndarray, d: np.ndarray, groups: np.ndarray,
                  n: int) -> list[dict]:
    """Up to n pairs of file names from different groups, near (not identical) pairs first."""
    out, seen = [], set()
    for k in np.argsort(d == 0, kind="stable"):  # near pairs (d > 0) first, each set in index order
        g = groups[i[k]]
        if len(out) == n:
            break
        if g not in seen:
            seen.add(g)
            out.append({"a": files[i[k]], "b": files[j[k]], "distance": int(d[k])})
    return out
