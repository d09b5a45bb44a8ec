"""A task's training pool from several sources, and splits that hold out whole datasets.

A task trains on its own dataset plus, where its TaskSpec names them, supplements (labelled
images of the same classes from other hospitals, e.g. the scan-kinds set for the scan-type
task) and foreign sources, whose images of other kinds get the label 'other' and teach the
model to say that it does not recognise an image. Every image keeps the name of the dataset it
came from (`Dataset.origin`): images of one dataset share a scanner, a window and an export
pipeline, so validation holds out whole datasets (`dataset_folds`), never random images.
"""
from __future__ import annotations

import warnings
import zlib
from collections.abc import Collection
from pathlib import Path

import numpy as np

from .acquisition import atypical_split
from .datasets import Dataset, DataError, dataset_path, fingerprint, load_dataset, read_source
from ..io.folders import SourceImages
from .splits import earliest_split, own_folds, named_patients, split_groups, split_train_val, subset_positions
from ..tasks import DataSource, TaskSpec, get_source


def own_origin(spec: TaskSpec) -> str:
    """The dataset name of a task's own images (its source's name)."""
    return spec.source.name or spec.name


def own_dataset(spec: TaskSpec, data_path: str | Path | None = None) -> Dataset:
    """The task's own dataset, every image marked as of it (whatever datasets a manifest inside names)."""
    ds = load_dataset(spec, data_path)
    ds.origin = np.full(len(ds), own_origin(spec))
    return ds


def source_path(source: DataSource, paths: dict[str, str | Path] | None = None) -> Path | None:
    """Where a source's archive is: an explicit path (by source name), else the data folder."""
    given = (paths or {}).get(source.name)
    return Path(given).expanduser() if given else dataset_path(source)


def task_pool(spec: TaskSpec, data_path: str | Path | None = None, paths: dict[str, str | Path] | None = None,
              max_foreign_per_dataset: int | None = 600, seed: int = 0,
              parts: Collection[str] | None = None) -> tuple[Dataset, list[str]]:
    """A task's training data from all its sources, and a note for each source that is missing.

    Args:
        data_path: the task's own dataset (default: its archive in the data folder).
        paths: other sources' archives by source name (default: their archives in the data folder).
        max_foreign_per_dataset: at most this many random foreign images from each dataset (the same
            images for every task and whatever other sources are present: each dataset draws with its own seed).
        parts: read only these further archives of the sources (DataSource.parts; default: all that are there),
            so a model's pool is rebuilt as its card recorded it (`pool_parts`).
    Returns:
        (dataset, notes): labels 0..K-1 for the task's classes and K for foreign images; the task's
        own images keep their official split (if any), the others have split "".
    Raises:
        DataError: the task's own dataset is missing or unreadable (a missing supplement is only a note).
    """
    own = own_dataset(spec, data_path)
    pieces, notes = [own], []
    index = {c.lower(): i for i, c in enumerate(spec.classes)}
    kinds = {k.lower() for k in spec.image_kinds}
    for name in dict.fromkeys(spec.supplements + spec.foreign):
        raw = source_images(get_source(name), spec, paths, max_foreign_per_dataset or 600, parts)
        if raw is None:
            notes.append(f"{name} is not in the data folder, so the model learns without it "
                         f"(medimg download {name}" + ("" if get_source(name).url else " --from PATH") + ")")
            continue
        labels = np.full(len(raw.files), -1, np.int64)
        if name in spec.supplements:
            labels = np.array([index.get(f.lower(), -1) for f in raw.folders], np.int64)
        if name in spec.foreign:
            foreign = (labels < 0) & ~np.isin(np.char.lower(raw.kinds.astype(str)), list(kinds))
            labels[foreign] = spec.num_classes
        keep = np.flatnonzero(labels >= 0)
        if max_foreign_per_dataset:
            keep = _cap_foreign(keep, labels, raw.origins, spec.num_classes, max_foreign_per_dataset, seed)
        images, labs = raw.images[keep], labels[keep]
        pieces.append(Dataset(images, labs, [raw.files[i] for i in keep], np.full(len(keep), "", "<U5"), spec.classes,
                              "", raw.origins[keep]))
    return concat(pieces), notes


def source_images(source: DataSource, spec: TaskSpec, paths: dict | None, generated: int,
                  parts: Collection[str] | None = None) -> SourceImages | None:
    """A source's images at the task's input (None when its archive is not there); `generated` pictures
    for a source made in code; `parts`: which further archives to read (default: all that are there)."""
    if source.kind == "generated":
        from .synthetic import synthetic_source

        return synthetic_source(spec.image_size, generated, native=spec.native_size, fit=spec.fit)
    path = source_path(source, paths)
    if path is None:
        return None
    return join_images([read_source(p, spec.image_size, source.name, source.image_kind, native=spec.native_size,
                                    fit=spec.fit) for p in [path, *source_parts(source, path, parts)]])


def source_parts(source: DataSource, path: Path, only: Collection[str] | None = None) -> list[Path]:
    """The source's further archives (DataSource.parts) that are beside its main archive (of those in `only`, if given)."""
    return [p for p in (path.parent / name for name in source.parts if only is None or name in only) if p.is_file()]


def pool_parts(spec: TaskSpec, paths: dict[str, str | Path] | None = None) -> list[str]:
    """The further archives a pool of the task reads now (those beside its sources' archives), by file name."""
    found = []
    for name in dict.fromkeys(spec.supplements + spec.foreign):
        source = get_source(name)
        path = None if source.kind == "generated" else source_path(source, paths)
        if path is not None and path.exists():
            found += [p.name for p in source_parts(source, path)]
    return found


def join_images(parts: list[SourceImages]) -> SourceImages:
    """Several archives' images as one source (the parts of one source, in order)."""
    if len(parts) == 1:
        return parts[0]
    return SourceImages(np.concatenate([p.images for p in parts]), np.concatenate([p.folders for p in parts]),
                        [f for p in parts for f in p.files], np.concatenate([p.origins for p in parts]),
                        np.concatenate([p.kinds for p in parts]), np.concatenate([p.split for p in parts]),
                        [b for p in parts for b in p.broken])


def _cap_foreign(keep: np.ndarray, labels: np.ndarray, origins: np.ndarray, other: int, cap: int,
                 seed: int) -> np.ndarray:
    """`keep` with at most `cap` random foreign images of each dataset (labelled images all stay)."""
    out = [keep[labels[keep] != other]]
    foreign = keep[labels[keep] == other]
    for origin in np.unique(origins[foreign]):
        members = foreign[origins[foreign] == origin]
        rng = np.random.default_rng([seed, zlib.crc32(str(origin).encode())])
        out.append(np.sort(rng.permutation(members)[:cap]))
    return np.sort(np.concatenate(out))


def concat(parts: list[Dataset]) -> Dataset:
    """Datasets of the same task, one after another."""
    images = np.concatenate([p.images for p in parts])
    labels = np.concatenate([p.labels for p in parts])
    return Dataset(images, labels, [f for p in parts for f in p.files],
                   np.concatenate([p.split.astype("<U5") for p in parts]), parts[0].classes,
                   fingerprint(images, labels), np.concatenate([p.origin.astype(str) for p in parts]))


def dataset_folds(ds: Dataset, own: str, n_folds: int = 5, seed: int = 0) -> list[list[str]]:
    """The datasets each fold holds out: every dataset but the task's own, in exactly one fold.

    Folds are stratified by label (scan kinds and 'other') as far as whole datasets allow
    (scikit-learn's StratifiedGroupKFold, the datasets as groups). The task's own dataset keeps its
    own (duplicate-aware or official) validation split instead.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    others = np.flatnonzero(ds.origin != own)
    names = np.unique(ds.origin[others])
    if len(names) < 2:
        raise DataError(f"cross-validation by dataset needs at least two datasets besides {own}; found {len(names)} "
                        "(--own-cv cross-validates over the task's own images instead)")
    n_folds = min(n_folds, len(names))
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a class seen in fewer datasets than folds is expected (e.g. breast MRI)
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(splitter.split(others, ds.labels[others], groups=ds.origin[others]))
    return [sorted(np.unique(ds.origin[others][test]).tolist()) for _, test in splits]


def pool_split(ds: Dataset, own: str, max_per_class: int | None, val_fraction: float, seed: int,
               held_out: Collection[str] = (), own_fold: tuple[int, int] | None = None,
               max_distance: int | None = None, spec: TaskSpec | None = None,
               strategy: str = "random") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kept, train, validation) positions in ds of a multi-source run.

    The task's own images are limited to max_per_class per class and split as `split_train_val`
    does, or, with own_fold = (fold, n_folds), into that fold of `own_folds` (validation) and the rest
    of train+val (training); images of other datasets train, except those of the held-out datasets,
    which validate. max_distance: keep near-duplicates of the own images (pHash bits) on one side, not only exact ones;
    spec: a task whose file names carry the patient (TaskSpec.patient_pattern) keeps each patient on one side;
    strategy "atypical": the own validation images are the least typical patients by acquisition traits
    (`acquisition.atypical_split`); "earliest": the patients of the lowest numbers (`splits.earliest_split`).
    """
    mine = np.flatnonzero((ds.origin == own) & (ds.split != "test"))  # an official test split never trains
    mine = mine[subset_positions(ds.labels[mine], max_per_class, seed)]
    mine_ds = ds.subset(mine)
    patients = named_patients(mine_ds.files, spec)
    if own_fold is None and strategy in ("atypical", "earliest"):
        groups = split_groups(mine_ds.images, max_distance, patients)
        if strategy == "atypical":
            own_train, own_val = atypical_split(mine_ds.images, mine_ds.labels, groups, val_fraction, len(ds.classes))
        elif patients is None:
            raise DataError(f"--validation earliest needs patient numbers in the file names; {own} has none")
        else:
            own_train, own_val = earliest_split(mine_ds.labels, groups, patients, val_fraction, len(ds.classes))
    elif own_fold is None:
        own_train, own_val = split_train_val(mine_ds, val_fraction, seed, max_distance, patients)
    else:
        folds = own_folds(mine_ds, own_fold[1], seed, max_distance, patients)
        own_val = folds[own_fold[0]]
        own_train = np.sort(np.concatenate([f for i, f in enumerate(folds) if i != own_fold[0]]))
    others = np.flatnonzero(ds.origin != own)
    out = np.isin(ds.origin[others], list(held_out))
    unknown = set(held_out) - set(np.unique(ds.origin[others]).tolist())
    if unknown:
        raise DataError(f"cannot hold out {', '.join(sorted(unknown))}: no such dataset in the pool")
    train = np.sort(np.concatenate([mine[own_train], others[~out]]))
    val = np.sort(np.concatenate([mine[own_val], others[out]]))
    return np.sort(np.concatenate([mine, others])), train, val
