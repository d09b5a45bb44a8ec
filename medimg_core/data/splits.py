"""Splits of a dataset that never put one image, one copy of it, or one patient on both sides.

A validation split or a cross-validation fold is drawn over *groups*, not images: exact duplicates
(identical pixels), near-duplicates where a task asks for them (pHash within a few bits,
`duplicates.near_duplicate_groups`), and a patient's images where file names carry the patient
(`TaskSpec.patient_pattern`: several X-rays of one child must not train and validate at once).
Groups are the connected components of all three relations, so a patient whose image is a copy of
another patient's image joins that patient's group.
"""
from __future__ import annotations

import re

import numpy as np

from .duplicates import connected_groups, duplicate_groups, near_duplicate_groups


def patient_ids(files: list[str], spec) -> np.ndarray:
    """The patient each file's name names (TaskSpec.patient), "" where it names none."""
    return np.array([spec.patient(f) for f in files], dtype=str)


def named_patients(files: list[str], spec) -> np.ndarray | None:
    """patient_ids of the files, or None when the task (spec may be None) or every one of their names names no patient."""
    if spec is None or not spec.patient_pattern:
        return None
    patients = patient_ids(files, spec)
    return patients if (patients != "").any() else None


def split_groups(images: np.ndarray, max_distance: int | None = None, patients: np.ndarray | None = None) -> np.ndarray:
    """Group id per image: exact duplicates (near ones within max_distance pHash bits) and images of one
    patient share a group (patients "" are no patient)."""
    groups = duplicate_groups(images) if max_distance is None else near_duplicate_groups(images, max_distance)
    if patients is None or not (patients != "").any():
        return groups
    order = np.argsort(groups, kind="stable")
    same = groups[order][:-1] == groups[order][1:]  # keep the duplicate groups: chain each group's members
    i, j = [order[:-1][same]], [order[1:][same]]
    named = np.flatnonzero(patients != "")
    by_patient = named[np.argsort(patients[named], kind="stable")]
    same = patients[by_patient][:-1] == patients[by_patient][1:]
    i.append(by_patient[:-1][same])
    j.append(by_patient[1:][same])
    return connected_groups(len(images), np.concatenate(i), np.concatenate(j))


def kept_together(spec) -> str:
    """What a task's splits keep on one side, in words (see splits.split_groups)."""
    copies = "exact duplicates" if spec.near_duplicate_distance is None else \
        f"near-duplicates (pHash within {spec.near_duplicate_distance} of 64 bits)"
    return f"each patient's images and {copies}" if spec.patient_pattern else copies


def split_train_val(ds, val_fraction: float = 0.1, seed: int = 0, max_distance: int | None = None,
                    patients: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified train/validation split that keeps each group (see split_groups) on one side.

    Whole groups are drawn per class, a group counting for the class of its first image. A dataset that
    carries an official split ("train"/"val") uses it as given, unless patients are given: then the
    split is drawn by patient (the chest X-ray set's official val folder holds 16 images).
    """
    if patients is None and {"train", "val"} <= set(ds.split.tolist()):
        return np.flatnonzero(ds.split == "train"), np.flatnonzero(ds.split == "val")
    groups = split_groups(ds.images, max_distance, patients)
    owner = ds.labels[np.unique(groups, return_index=True)[1]]  # the class of each group's first image
    rng = np.random.default_rng(seed)
    val_groups = []
    for c in range(len(ds.classes)):
        ids = np.flatnonzero(owner == c)
        rng.shuffle(ids)
        val_groups.append(ids[: int(round(len(ids) * val_fraction))])
    in_val = np.isin(groups, np.concatenate(val_groups))
    known = ds.labels < len(ds.classes)
    return np.flatnonzero(known & ~in_val), np.flatnonzero(known & in_val)


def patient_number(patient: str) -> float:
    """The number at the end of a patient name ("person-1000" -> 1000, "IM-0115" -> 115); inf when there is none."""
    found = re.search(r"(\d+)$", patient)
    return float(found.group(1)) if found else float("inf")


def earliest_split(labels: np.ndarray, groups: np.ndarray, patients: np.ndarray, fraction: float,
                   num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) positions: in each class, the groups of the lowest patient numbers (where a dataset
    numbers its patients in the order they came, the earliest ones) until `fraction` of the class validates.

    A split by time: the images of later patients train, those of earlier ones validate, as a test split
    gathered at another time would differ. Images of other labels, and images without a patient, all train.
    """
    numbers = np.array([patient_number(p) for p in patients])
    val = []
    for c in range(num_classes):
        mine = np.flatnonzero((labels == c) & np.isfinite(numbers))
        ids, inverse = np.unique(groups[mine], return_inverse=True)
        first = np.full(len(ids), np.inf)
        np.minimum.at(first, inverse, numbers[mine])
        sizes = np.bincount(inverse, minlength=len(ids))
        order = np.argsort(first, kind="stable")
        take = order[: int(np.searchsorted(np.cumsum(sizes[order]), fraction * len(mine))) + 1]
        val.append(mine[np.isin(inverse, take)])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    return np.setdiff1d(np.flatnonzero(labels < num_classes), val_idx), val_idx


def own_folds(ds, n_folds: int, seed: int, max_distance: int | None = None,
              patients: np.ndarray | None = None) -> list[np.ndarray]:
    """Positions in ds (a task's own images) of each of n stratified folds over its train+val images.

    scikit-learn's StratifiedGroupKFold over the groups of split_groups, so no image has a copy, and no
    patient an image, on the other side; an official test split stays out of every fold.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    pool = np.flatnonzero(ds.split != "test")
    groups = split_groups(ds.images[pool], max_distance, None if patients is None else patients[pool])
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [pool[np.sort(test)] for _, test in splitter.split(pool, ds.labels[pool], groups)]


def subset_positions(labels: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    """Sorted positions of at most max_per_class random images of each class (all of them when None)."""
    if not max_per_class:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:max_per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def stratified_sample(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A fixed, class-balanced sample of about n indices (sorted)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per = max(1, n // len(classes))
    picks = [rng.choice(np.flatnonzero(labels == c), min(per, int((labels == c).sum())), replace=False) for c in classes]
    return np.sort(np.concatenate(picks))
