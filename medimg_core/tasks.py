"""Task registry: one frozen definition per classification task.

A task's definition is written here once and saved inside every checkpoint, so training,
evaluation, prediction, the app and the tests all read classes, sizes and the Grad-CAM layer
from the same place. This module knows nothing about torch.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class DataSource:
    """Where a task's public dataset comes from and what it looks like."""

    filename: str  # name of the archive in the data folder
    kind: str  # "image-folders" (archive or folder of <class>/<image>), "medmnist-npz" or "generated" (in code)
    url: str | None = None  # public download; None when the source needs an account
    md5: str | None = None
    homepage: str = ""
    licence: str = ""
    how_to_get: str = ""  # shown when the archive cannot be downloaded automatically
    name: str = ""  # short name for the command line and the records, e.g. "mednist"
    image_kind: str = ""  # what every image is (e.g. "brain MRI"); "" = the class folder names the kind
    manifest: str = ""  # CSV inside the archive naming each file's dataset (and, for 'other', its kind)
    parts: tuple[str, ...] = ()  # further archives of the same layout, read as part of the source when beside it


@dataclass(frozen=True)
class ClassFacts:
    """What the images of one class are: imaging modality, body part and a plain-language name."""

    modality: str = ""  # "CT", "MRI" or "X-ray" ("" when unknown)
    body_part: str = ""  # e.g. "chest", "head"
    plain_name: str = ""  # e.g. "chest CT", "no tumour"


@dataclass(frozen=True)
class TaskSpec:
    """Everything that defines a task: labels, input, data and default model."""

    name: str
    title: str
    classes: tuple[str, ...]
    image_size: int
    source: DataSource
    architecture: str = "compact-cnn"
    description: str = ""
    positive_class: str | None = None  # for two-class screening tasks: the "disease" class
    hflip: bool = True  # whether left-right flips are a label-preserving augmentation
    follow_ups: tuple[tuple[str, str], ...] = ()  # (class, task): images of that class also go to that task
    native_size: int | None = None  # resolution of the task's own images, when lower than image_size (see to_model_input)
    kinds: tuple[str, ...] = ()  # the image kinds the task is for (e.g. "CXR"); () = its classes are the kinds
    supplements: tuple[str, ...] = ()  # further sources (SOURCES names) of labelled images of the same classes
    foreign: tuple[str, ...] = ()  # sources whose images of other kinds teach the model to say 'not recognised'
    modality: str = ""  # the modality of all the task's images, when they share one ("X-ray")
    body_part: str = ""  # the body part of all the task's images, when they share one ("chest")
    class_facts: dict = field(default_factory=dict)  # class -> {"modality", "body_part", "plain_name"}, per class
    population: str = ""  # whose images the task's dataset holds (a model says nothing about anyone else's)
    # new training runs keep images whose pHashes differ in at most this many of 64 bits on one side of the
    # validation split (duplicates.py); None: exact duplicates only. Checkpoints saved before it existed read None.
    near_duplicate_distance: int | None = None
    fit: str = "letterbox"  # how an image becomes the square input: "letterbox" (black bars) or "squash" (see imaging.FITS)
    patient_pattern: str = ""  # regex on a file's name whose groups name its patient: a patient stays on one side of splits
    min_sensitivity: float | None = None  # two-class screening tasks: the operating point keeps at least this sensitivity
    extra: dict = field(default_factory=dict)

    def patient(self, file: str) -> str:
        """The patient a file's name names (via patient_pattern), or "" when the task or the name has none."""
        found = re.search(self.patient_pattern, file.rsplit("/", 1)[-1]) if self.patient_pattern else None
        return "-".join(g for g in found.groups() if g) if found else ""

    def facts(self, class_name: str) -> ClassFacts:
        """What a class's images are: its own facts, else the task's modality and body part."""
        own = self.class_facts.get(class_name, {})
        return ClassFacts(own.get("modality", self.modality), own.get("body_part", self.body_part),
                          own.get("plain_name", class_name))

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return len(self.classes)

    @property
    def image_kinds(self) -> tuple[str, ...]:
        """The kinds of image this task's model is meant for; images of any other kind are foreign."""
        return self.kinds or self.classes

    @property
    def rejects(self) -> bool:
        """Whether the task trains a rejection output ('other') on foreign images."""
        return bool(self.foreign)

    def follow_up(self, label: str) -> str | None:
        """The task that images predicted as `label` are also sent to (two-step triage), if any."""
        return dict(self.follow_ups).get(label)

    def to_dict(self) -> dict:
        """Plain-typed dict, safe for JSON and for torch.load(weights_only=True)."""
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["follow_ups"] = [list(pair) for pair in self.follow_ups]
        for key in ("kinds", "supplements", "foreign"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TaskSpec":
        """Rebuild a spec saved with to_dict (tolerates unknown keys from newer versions)."""
        src = DataSource(**{k: v for k, v in d["source"].items() if k in DataSource.__dataclass_fields__})
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "source"}
        builtin = BUILTIN_TASKS.get(kw.get("name"))
        for key in ("modality", "body_part", "class_facts", "population"):  # checkpoints saved before these existed
            if builtin is not None and key not in kw:
                kw[key] = getattr(builtin, key)
        kw["classes"] = tuple(kw["classes"])
        kw["follow_ups"] = tuple(tuple(pair) for pair in kw.get("follow_ups", ()))
        for key in ("kinds", "supplements", "foreign"):
            kw[key] = tuple(kw.get(key, ()))
        return cls(source=src, **kw)


MEDNIST = DataSource(
    filename="MedNIST.tar.gz",
    kind="image-folders",
    url="https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/MedNIST.tar.gz",
    md5="0bc7306e7427e00ad1c5526a6677552d",
    homepage="https://github.com/Project-MONAI/MONAI-extra-test-data",
    licence="CC BY-SA 4.0 (TCIA, RSNA Bone Age Challenge, NIH Chest X-ray)",
    name="mednist",
)

PNEUMONIAMNIST = DataSource(
    filename="pneumoniamnist.npz",
    kind="medmnist-npz",
    url="https://zenodo.org/records/10519652/files/pneumoniamnist.npz?download=1",
    md5="28209eda62fecd6e6a2d98b1501bb15f",
    homepage="https://medmnist.com",
    licence="CC BY 4.0",
    name="pneumoniamnist",
    image_kind="CXR",
)

BRAIN_TUMOR_MRI = DataSource(
    filename="brain-tumor-mri-training.tar.gz",
    kind="image-folders",
    homepage="https://www.kaggle.com/datasets/masoudnickparvar/brain-tumor-mri-dataset",
    licence="CC0 1.0",
    how_to_get=(
        "The Brain Tumor MRI dataset needs a Kaggle account: download "
        "'masoudnickparvar/brain-tumor-mri-dataset' from Kaggle, then run "
        "`medimg download brain-tumor --from PATH` with the zip or the unpacked folder."
    ),
    name="brain-tumor-mri",
    image_kind="brain MRI",
)

CHEST_XRAY = DataSource(
    filename="chest-xray-pneumonia-224.tar.gz",
    kind="image-folders",
    homepage="https://www.kaggle.com/datasets/paultimothymooney/chest-xray-pneumonia",
    licence="CC BY 4.0 (Kermany et al., Cell 2018)",
    how_to_get=(
        "The paediatric chest X-rays (Kermany et al. 2018) need a Kaggle account: download "
        "'paultimothymooney/chest-xray-pneumonia' from Kaggle, then run "
        "`medimg download pneumonia --from PATH` with the zip or the unpacked chest_xray folder "
        "(train/, val/, test/ with NORMAL/ and PNEUMONIA/ inside)."
    ),
    name="chest-xray-pneumonia",
    image_kind="CXR",
)

SCAN_KINDS = DataSource(
    filename="scan-kinds.tar.gz",
    kind="image-folders",
    licence="varies per file (CC BY, CC0, research-only, unstated): see the licence column of its manifest.csv",
    how_to_get=(
        "The scan-kinds supplement (1,020 real scans of the six kinds and of other kinds, gathered from 40+ public "
        "datasets) has no public download: run `medimg download scan-kinds --from PATH` with "
        "a copy of scan-kinds.tar.gz (scan-kinds-2.tar.gz beside it comes along)."
    ),
    name="scan-kinds",
    manifest="manifest.csv",
    parts=("scan-kinds-2.tar.gz",),
)

SYNTHETIC = DataSource(filename="", kind="generated", name="synthetic", image_kind="synthetic picture",
                       licence="generated in code (medimg_core/data/synthetic.py)")

SOURCES: dict[str, DataSource] = {s.name: s for s in (MEDNIST, PNEUMONIAMNIST, CHEST_XRAY, BRAIN_TUMOR_MRI, SCAN_KINDS,
                                                     SYNTHETIC)}
OTHER = "other"  # the label of foreign images: the rejection output of a task's model, and a folder name in evaluate

BUILTIN_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="modality",
            title="Scan type (X-ray, CT, MRI)",
            classes=("AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT"),
            image_size=64,
            source=MEDNIST,
            follow_ups=(("CXR", "pneumonia"),),
            supplements=("scan-kinds",),
            foreign=("scan-kinds", "brain-tumor-mri", "synthetic"),
            class_facts={
                "AbdomenCT": {"modality": "CT", "body_part": "abdomen", "plain_name": "abdomen CT"},
                "BreastMRI": {"modality": "MRI", "body_part": "breast", "plain_name": "breast MRI"},
                "CXR": {"modality": "X-ray", "body_part": "chest", "plain_name": "chest X-ray"},
                "ChestCT": {"modality": "CT", "body_part": "chest", "plain_name": "chest CT"},
                "Hand": {"modality": "X-ray", "body_part": "hand", "plain_name": "hand X-ray"},
                "HeadCT": {"modality": "CT", "body_part": "head", "plain_name": "head CT"},
            },
            description="Which kind of scan is this: abdomen CT, breast MRI, chest X-ray, chest CT, hand X-ray or head CT.",
        ),
        TaskSpec(
            name="pneumonia",
            title="Pneumonia on paediatric chest X-rays",
            classes=("normal", "pneumonia"),
            image_size=128,
            source=CHEST_XRAY,
            positive_class="pneumonia",
            fit="squash",  # the training copy was squashed to a square; a user's X-ray is brought to the same shape
            # personN_bacteria_M / personN_virus_M: patient N; IM-XXXX-YYYY and NORMAL2-IM-XXXX-YYYY: patient XXXX
            patient_pattern=r"^(person)(\d+)_|(?:^|-)(IM)-(\d+)-",
            min_sensitivity=0.95,  # triage: miss at most 1 pneumonia in 20
            kinds=("CXR",),
            foreign=("mednist", "scan-kinds", "brain-tumor-mri", "synthetic"),
            modality="X-ray",
            body_part="chest",
            class_facts={"normal": {"plain_name": "no sign of pneumonia"}, "pneumonia": {"plain_name": "pneumonia"}},
            population="chest X-rays of children aged one to five at one hospital in Guangzhou, China "
                       "(Guangzhou Women and Children's Medical Center; Kermany et al., 2018)",
            description="Normal chest X-ray or pneumonia, from paediatric chest X-rays.",
        ),
        TaskSpec(
            name="brain-tumor",
            title="Brain tumour type on MRI",
            classes=("glioma", "meningioma", "notumor", "pituitary"),
            image_size=224,  # the shipped model's input; train with --progressive-from 128 to spend most epochs smaller
            source=BRAIN_TUMOR_MRI,
            kinds=("brain MRI",),
            foreign=("mednist", "scan-kinds", "pneumoniamnist", "synthetic"),
            modality="MRI",
            body_part="head",
            near_duplicate_distance=4,  # the archive repeats slices re-encoded and rescaled (medimg duplicates)
            class_facts={"glioma": {"plain_name": "glioma"}, "meningioma": {"plain_name": "meningioma"},
                         "notumor": {"plain_name": "no tumour"}, "pituitary": {"plain_name": "pituitary tumour"}},
            description="Glioma, meningioma, pituitary tumour or no tumour, from brain MRI slices.",
        ),
    )
}


def user_tasks_dir() -> Path:
    """Folder of user task definitions: $MEDIMG_TASKS_DIR, default ~/.config/medimg/tasks."""
    return Path(os.environ.get("MEDIMG_TASKS_DIR") or Path.home() / ".config" / "medimg" / "tasks")


def task_from_json(path: Path) -> TaskSpec:
    """A task definition written as JSON, e.g. a folder-of-classes dataset a user brings.

    Required: name, title, classes, image_size; optional: positive_class, hflip, description,
    near_duplicate_distance and source (default: a folder or archive of <class>/<image> files given to --data).
    """
    try:
        d = json.loads(Path(path).read_text())
        d.setdefault("source", {"filename": d["name"], "kind": "image-folders"})
        spec = TaskSpec.from_dict(d)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a valid task definition ({type(err).__name__}: {err})") from None
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,40}", spec.name):
        raise ValueError(f"{path}: name must be lower-case letters, digits, '-' or '_' (it names the model file)")
    if len(spec.classes) < 2 or len(set(spec.classes)) != len(spec.classes):
        raise ValueError(f"{path}: a task needs at least two distinct classes")
    if spec.positive_class and (len(spec.classes) != 2 or spec.positive_class not in spec.classes):
        raise ValueError(f"{path}: positive_class must be one of exactly two classes")
    if not 16 <= spec.image_size <= 512:
        raise ValueError(f"{path}: image_size must be between 16 and 512")
    if spec.near_duplicate_distance is not None and not 0 <= spec.near_duplicate_distance <= 64:
        raise ValueError(f"{path}: near_duplicate_distance must be between 0 and 64 bits (or null)")
    return spec


def load_tasks() -> dict[str, TaskSpec]:
    """The built-in tasks plus every valid *.json definition in user_tasks_dir() (built-in names win).

    An invalid file is skipped with one logged line (logger "medimg_core.tasks"; without a logging setup Python
    prints just the message to stderr), so one bad definition never stops the app or the CLI.
    """
    tasks = dict(BUILTIN_TASKS)
    folder = user_tasks_dir()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            spec = task_from_json(path)
        except ValueError as err:
            logging.getLogger(__name__).warning("medimg: skipped a task definition: %s", err)
            continue
        tasks.setdefault(spec.name, spec)
    return tasks


TASKS: dict[str, TaskSpec] = load_tasks()


def get_source(name: str) -> DataSource:
    """Look a data source up by name; the error lists the known ones."""
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown data source {name!r}; known sources: {', '.join(SOURCES)}") from None


def get_task(name: str) -> TaskSpec:
    """Look a task up by name; the error lists the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None
