"""Task registry: one frozen definition per classification task.

A task's definition is written here once and saved inside every checkpoint, so training,
evaluation, prediction, the app and the tests all read classes, sizes and the Grad-CAM layer
from the same place. This module knows nothing about torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class DataSource:
    """Where a task's public dataset comes from and what it looks like."""

    filename: str  # name of the archive in the data folder
    kind: str  # "image-folders" (archive or folder of <class>/<image>) or "medmnist-npz"
    url: str | None = None  # public download; None when the source needs an account
    md5: str | None = None
    homepage: str = ""
    licence: str = ""
    how_to_get: str = ""  # shown when the archive cannot be downloaded automatically


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
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return len(self.classes)

    def follow_up(self, label: str) -> str | None:
        """The task that images predicted as `label` are also sent to (two-step triage), if any."""
        return dict(self.follow_ups).get(label)

    def to_dict(self) -> dict:
        """Plain-typed dict, safe for JSON and for torch.load(weights_only=True)."""
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["follow_ups"] = [list(pair) for pair in self.follow_ups]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TaskSpec":
        """Rebuild a spec saved with to_dict (tolerates unknown keys from newer versions)."""
        src = DataSource(**{k: v for k, v in d["source"].items() if k in DataSource.__dataclass_fields__})
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "source"}
        kw["classes"] = tuple(kw["classes"])
        kw["follow_ups"] = tuple(tuple(pair) for pair in kw.get("follow_ups", ()))
        return cls(source=src, **kw)


MEDNIST = DataSource(
    filename="MedNIST.tar.gz",
    kind="image-folders",
    url="https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/MedNIST.tar.gz",
    md5="0bc7306e7427e00ad1c5526a6677552d",
    homepage="https://github.com/Project-MONAI/MONAI-extra-test-data",
    licence="CC BY-SA 4.0 (TCIA, RSNA Bone Age Challenge, NIH Chest X-ray)",
)

PNEUMONIAMNIST = DataSource(
    filename="pneumoniamnist.npz",
    kind="medmnist-npz",
    url="https://zenodo.org/records/10519652/files/pneumoniamnist.npz?download=1",
    md5="28209eda62fecd6e6a2d98b1501bb15f",
    homepage="https://medmnist.com",
    licence="CC BY 4.0",
)

BRAIN_TUMOR_MRI = DataSource(
    filename="brain-tumor-mri-training.tar.gz",
    kind="image-folders",
    homepage="https://www.kaggle.com/datasets/masoudnickparvar/brain-tumor-mri-dataset",
    licence="CC0 1.0",
    how_to_get=(
        "The Brain Tumor MRI dataset needs a Kaggle account: download "
        "'masoudnickparvar/brain-tumor-mri-dataset' from Kaggle, then run "
        "`python -m medimg_core download brain-tumor --from PATH` with the zip or the unpacked folder."
    ),
)

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="modality",
            title="Scan type (Medical MNIST)",
            classes=("AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT"),
            image_size=64,
            source=MEDNIST,
            follow_ups=(("CXR", "pneumonia"),),
            description="Which kind of scan is this: abdomen CT, breast MRI, chest X-ray, chest CT, hand X-ray or head CT.",
        ),
        TaskSpec(
            name="pneumonia",
            title="Pneumonia on paediatric chest X-rays (PneumoniaMNIST)",
            classes=("normal", "pneumonia"),
            image_size=64,
            source=PNEUMONIAMNIST,
            positive_class="pneumonia",
            description="Normal chest X-ray or pneumonia, from paediatric chest X-rays.",
        ),
        TaskSpec(
            name="brain-tumor",
            title="Brain tumour type on MRI",
            classes=("glioma", "meningioma", "notumor", "pituitary"),
            image_size=128,
            source=BRAIN_TUMOR_MRI,
            description="Glioma, meningioma, pituitary tumour or no tumour, from brain MRI slices.",
        ),
    )
}


def get_task(name: str) -> TaskSpec:
    """Look a task up by name; the error lists the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None
