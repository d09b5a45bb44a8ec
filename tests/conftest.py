"""Shared test fixtures: images generated in code, and real Medical MNIST images read at test time."""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# Tests read the real datasets from ../shared/data unless MEDIMG_DATA_DIR points elsewhere.
os.environ.setdefault("MEDIMG_DATA_DIR", str(ROOT.parent / "shared" / "data"))
SHARED_DATA = Path(os.environ["MEDIMG_DATA_DIR"])

BROKEN_FILE = b"not an image"
PER_CLASS = 10  # real images read per class


def png_of(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 array."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def noise_png(seed: int = 0, size: int = 64) -> bytes:
    """A PNG of uniform random noise: nothing like any scan."""
    return png_of(np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8))


def checkerboard_png(cells: int = 8, size: int = 96) -> bytes:
    """A PNG of a black-and-white checkerboard: a picture that is no scan of any kind."""
    yy, xx = np.mgrid[:size, :size] * cells // size
    return png_of(((xx + yy) % 2 * 255).astype(np.uint8))


def hand_like_png(size: int = 96) -> bytes:
    """A PNG of a bright palm with five fingers on black, drawn in code (a stand-in when MedNIST is absent)."""
    yy, xx = np.mgrid[:size, :size] / size
    palm = ((xx - 0.5) / 0.22) ** 2 + ((yy - 0.7) / 0.2) ** 2 < 1
    fingers = np.zeros_like(palm)
    for cx, top in ((0.3, 0.25), (0.42, 0.12), (0.54, 0.1), (0.66, 0.18), (0.78, 0.45)):
        fingers |= (np.abs(xx - cx) < 0.045) & (yy > top) & (yy < 0.7)
    return png_of(np.where(palm | fingers, 200, 10).astype(np.uint8))


def shared_file(name: str) -> Path:
    """A file of the real datasets folder, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is not available (set MEDIMG_DATA_DIR to the folder with the real datasets)")
    return path


@pytest.fixture
def mednist() -> Path:
    """The real MedNIST archive (skips when absent)."""
    return shared_file("MedNIST.tar.gz")


def mednist_archive() -> Path | None:
    """The Medical MNIST archive in $MEDIMG_DATA_DIR, or None."""
    folder = os.environ.get("MEDIMG_DATA_DIR")
    path = Path(folder) / "MedNIST.tar.gz" if folder else None
    return path if path and path.is_file() else None


def first_images(archive: Path, n_classes: int, per_class: int = PER_CLASS) -> dict[str, list[bytes]]:
    """Bytes of the first per_class files of each <class>/ folder in a tar archive."""
    found: dict[str, list[bytes]] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and len(parts) >= 2 and len(found.setdefault(parts[-2], [])) < per_class:
                found[parts[-2]].append(tar.extractfile(member).read())
                if len(found) == n_classes and all(len(v) == per_class for v in found.values()):
                    break
    return found


@pytest.fixture(scope="session")
def mednist_images() -> dict[str, list[bytes]]:
    """JPEG bytes of the first few images of each Medical MNIST class (skips when the data is absent)."""
    path = mednist_archive()
    if path is None:
        pytest.skip("MedNIST.tar.gz not found in $MEDIMG_DATA_DIR")
    return first_images(path, n_classes=6)


@pytest.fixture(scope="session")
def scans(mednist_images) -> dict[str, bytes]:
    """Per class, one real image that the installed model labels correctly, confidently and in-distribution."""
    from medimg_core import load_classifier, read_image

    clf = load_classifier("modality")
    chosen = {}
    for label, candidates in mednist_images.items():
        for data in candidates:
            pred = clf.predict(read_image(data))
            if pred.label == label and pred.confidence >= 0.8 and pred.in_distribution:
                chosen[label] = data
                break
    if not {"Hand", "CXR"} <= set(chosen):
        pytest.skip(f"the installed model labels none of the first {PER_CLASS} Hand/CXR images confidently")
    return chosen


@pytest.fixture(scope="session")
def samples() -> SimpleNamespace:
    """Image makers for tests: noise_png(seed), checkerboard_png(cells), hand_like_png(), png_of(array), broken (bytes)."""
    return SimpleNamespace(noise_png=noise_png, checkerboard_png=checkerboard_png, hand_like_png=hand_like_png,
                           png_of=png_of, broken=BROKEN_FILE)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A compact CNN trained for three short epochs on 60 real images per class."""
    data = shared_file("MedNIST.tar.gz")
    out = tmp_path_factory.mktemp("models") / "modality.pt"
    from medimg_core.cli.main import main

    rc = main(["train", "--task", "modality", "--data", str(data), "--epochs", "3", "--max-per-class", "60",
               "--batch-size", "32", "--out", str(out), "--no-baseline"])
    assert rc == 0
    return out


@pytest.fixture(scope="session")
def tiny_search(tmp_path_factory) -> Path:
    """A search record (base and width=8, one epoch on 20 real images per class) in an otherwise empty models folder."""
    data = shared_file("MedNIST.tar.gz")
    out = tmp_path_factory.mktemp("models") / "search" / "modality.json"
    from medimg_core.cli.main import main

    rc = main(["search", "--task", "modality", "--data", str(data), "--max-per-class", "20", "--epochs", "1",
               "--batch-size", "32", "--vary", "width=8", "--no-sources", "--out", str(out)])
    assert rc == 0
    return out


@pytest.fixture(scope="session")
def brain_images() -> dict[str, list[bytes]]:
    """JPEG bytes of the first few brain MRI slices of each class (skips when the archive is absent)."""
    path = shared_file("brain-tumor-mri-training.tar.gz")
    return first_images(path, n_classes=4)


@pytest.fixture(scope="session")
def brain_mri(brain_images) -> bytes:
    """A real brain MRI slice that the modality model flags as unfamiliar and the brain model accepts."""
    from medimg_core import load_classifier, read_image

    modality, brain = load_classifier("modality"), load_classifier("brain-tumor")
    for images in brain_images.values():
        for data in images:
            image = read_image(data)
            if not modality.predict(image).in_distribution and brain.predict(image).in_distribution:
                return data
    pytest.fail("no brain MRI among the first ones is flagged by the modality model and accepted by the brain model")
