"""`medimg duplicates`: what a duplicate search finds in one dataset (exact and near-duplicate groups, groups
that span labels or official parts, example pairs) and, given a model card, how many of that model's validation
images have a near-duplicate in its training. The hashing and grouping are in data's duplicates.py."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import PurePosixPath

import numpy as np

from ..data.datasets import Dataset
from ..data.duplicates import (DEFAULT_MAX_DISTANCE, HASH_BITS, PART_NAMES, connected_groups, duplicate_groups,
                                group_counts, near_pairs, perceptual_hashes)
from .explore import model_split


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
