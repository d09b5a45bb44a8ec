"""Whether evaluation images are independent of a model's training: `evaluate`'s note and `--record`'s refusal.

Numbers recorded as "test" must come from images the model never trained or validated on. Three checks:
- official split: images their dataset puts in its train or val split (a MedMNIST npz's arrays, the train/
  and val/ folders of a Kaggle layout, see folders.split_of) are development data of every model of the
  task; only a test split is test data;
- same source: the data is a file the model was trained on (its card's source, or a supplement or foreign
  source of its pool), or the very dataset its card fingerprinted;
- same pixels: images identical, at the model's input, to images of its own training source outside that
  source's test split (when the source is in the data folder; the disk cache makes it cheap).
Not here: the metrics themselves (evaluation.py).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .datasets import Dataset, DataError, dataset_path, load_dataset
from ..tasks import SOURCES


@dataclass(frozen=True)
class Overlap:
    """How an evaluated set relates to a model's training data (counts of its n images)."""

    n: int
    development: int  # in their dataset's official train or val split
    seen: int  # identical to an image of the model's own training source (outside its test split)
    same_source: str  # the training source the data file is ("" when it is none)
    compared_with: str  # the training source compared pixel by pixel ("" when it was not available)

    @property
    def independent(self) -> bool:
        """Whether nothing suggests the model trained or validated on these images."""
        return not (self.development or self.seen or self.same_source)

    def sentence(self) -> str:
        """What was found, in one sentence."""
        found = []
        if self.same_source:
            found.append(f"the data is {self.same_source}, a source this model was trained on")
        if self.development:
            found.append(f"{self.development:,} of the {self.n:,} images are in their dataset's train or val split "
                         "(development data; only a test split is test data)")
        if self.seen:
            found.append(f"{self.seen:,} of the {self.n:,} images are identical to images of {self.compared_with}, "
                         "which the model trained or validated on")
        if found:
            return "; ".join(found)
        compared = (f"none identical to an image of its training source {self.compared_with}" if self.compared_with
                    else "images not compared pixel by pixel with its training source")
        return f"none of the {self.n:,} images is in a train or val split or from a source it trained on; {compared}"

    def to_dict(self) -> dict:
        """Plain JSON-ready dict, with the sentence and the verdict."""
        return {**asdict(self), "independent": self.independent, "sentence": self.sentence()}


def image_digests(images: np.ndarray) -> np.ndarray:
    """One 8-byte content hash per image (N x S x S uint8) as N uint64: equal pixels give equal digests."""
    return np.array([int.from_bytes(hashlib.blake2b(im.tobytes(), digest_size=8).digest(), "little")
                     for im in np.ascontiguousarray(images)], dtype=np.uint64)


def training_files(clf) -> set[str]:
    """The file names of the sources a model trained on: its card's own source, plus its pool's other sources."""
    data = clf.card.get("data", {})
    names = {data.get("source") or clf.spec.source.filename}
    if clf.card.get("training", {}).get("config", {}).get("sources", True):
        names |= {SOURCES[s].filename for s in (*clf.spec.supplements, *clf.spec.foreign) if s in SOURCES}
    return {n for n in names if n}


def training_overlap(clf, ds: Dataset, data: Path | None, pixels: bool = True) -> Overlap:
    """Check an evaluated dataset (loaded at the model's input) against the model's training (see the module).

    pixels: also compare with the images of the model's own training source (reads it: minutes the first time
    for a large archive, then the disk cache); without it only the split and the source's name are checked.
    """
    development = int(np.isin(ds.split, ["train", "val"]).sum())
    name = Path(data).name if data is not None else clf.spec.source.filename
    fingerprint = clf.card.get("data", {}).get("fingerprint")
    beyond_test = bool((ds.split != "test").any())  # a source's official test split never trains (sources.pool_split)
    same = name if beyond_test and (name in training_files(clf) or ds.fingerprint == fingerprint) else ""
    own = Path(data) if data is not None and name == clf.spec.source.filename else dataset_path(clf.spec)
    if own is None or same or not pixels:
        return Overlap(len(ds), development, 0, same, "")
    try:
        source = load_dataset(clf.spec, own, other=True)
    except DataError:  # not readable as this task's data: nothing to compare with
        return Overlap(len(ds), development, 0, same, "")
    trained = image_digests(source.images[source.split != "test"])
    seen = int(np.isin(image_digests(ds.images), trained).sum())
    return Overlap(len(ds), development, seen, same, own.name)
