"""Near-duplicates: perceptual hashes, groups, the split that keeps a group on one side, the command."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medimg_core import get_task
from medimg_core.cli.main import main
from medimg_core.data.datasets import Dataset, fingerprint
from medimg_core.data.splits import split_train_val
from medimg_core.reports.duplicate_report import find_duplicates, official_parts
from medimg_core.data.duplicates import hamming, hash_groups, near_duplicate_groups, near_pairs, perceptual_hashes

BRAIN = get_task("brain-tumor")


def phantom(seed: int, size: int = 128) -> np.ndarray:
    """A head-like ellipse with four bright or dark blobs at random places (uint8), drawn in code."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    image = np.where(((xx - 0.5) / 0.38) ** 2 + ((yy - 0.5) / 0.45) ** 2 < 1, 90.0, 0.0)
    for _ in range(4):
        cx, cy, r, value = rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.75), rng.uniform(0.06, 0.16), rng.choice([-80, 150])
        image[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] += value
    return np.clip(image, 0, 255).astype(np.uint8)


def noised(image: np.ndarray, seed: int = 1) -> np.ndarray:
    """The image with mild Gaussian noise (sigma 8 grey levels): other pixels, same picture."""
    return np.clip(image + np.random.default_rng(seed).normal(0, 8, image.shape), 0, 255).astype(np.uint8)


def rescaled(image: np.ndarray) -> np.ndarray:
    """The image brought down to three quarters of its size and back (a re-exported copy)."""
    size = image.shape[0]
    small = Image.fromarray(image).resize((size * 3 // 4,) * 2, Image.Resampling.BILINEAR)
    return np.asarray(small.resize((size, size), Image.Resampling.BILINEAR))


def test_a_noised_or_rescaled_copy_is_near_and_unrelated_images_are_far():
    original = phantom(0)
    hashes = perceptual_hashes(np.stack([original, noised(original), rescaled(original)]))
    assert hamming(hashes[0], hashes[1]) <= 4 and hamming(hashes[0], hashes[2]) <= 4
    others = perceptual_hashes(np.stack([phantom(s) for s in range(1, 30)]))
    assert hamming(hashes[0], others).min() > 4  # none of 29 other phantoms is within the default distance


def test_the_hash_is_imagehash_phash():
    import imagehash

    image = phantom(3)
    assert f"{int(perceptual_hashes(image[None])[0]):016x}" == str(imagehash.phash(Image.fromarray(image)))


def test_hashes_of_many_images_at_once_are_imagehash_phash_bit_for_bit():
    import imagehash

    rng = np.random.default_rng(0)
    flat = [np.zeros((128, 128), np.uint8), np.full((128, 128), 128, np.uint8)]  # DCT rounding decides their bits
    images = [phantom(s) for s in range(20)] + flat + [rng.integers(0, 256, (128, 128), dtype=np.uint8),
                                                       np.tile(np.arange(0, 256, 2, dtype=np.uint8), (128, 1))]
    expected = [str(imagehash.phash(Image.fromarray(im))) for im in images]
    assert [f"{int(h):016x}" for h in perceptual_hashes(np.stack(images), chunk=7)] == expected
    sizes = [phantom(0, size=97), phantom(1, size=64)]  # a list of images of any sizes
    assert [f"{int(h):016x}" for h in perceptual_hashes(sizes)] == [str(imagehash.phash(Image.fromarray(im)))
                                                                     for im in sizes]


def test_groups_join_copies_and_leave_the_others_alone():
    a, b, c = phantom(0), phantom(1), phantom(2)
    groups = near_duplicate_groups(np.stack([a, b, noised(a), c, rescaled(b), a]))
    assert groups[0] == groups[2] == groups[5] and groups[1] == groups[4]
    assert len({groups[0], groups[1], groups[3]}) == 3


def test_pairs_are_listed_once_with_their_distance():
    hashes = np.array([0b0, 0b11, 0b1111, 0b111 << 40], np.uint64)
    i, j, d = near_pairs(hashes, 2)
    assert sorted(zip(i.tolist(), j.tolist(), d.tolist())) == [(0, 1, 2), (1, 2, 2)]
    with pytest.raises(ValueError, match="between 0 and 64"):
        near_pairs(hashes, 65)


def clustered_hashes(n: int, seed: int) -> np.ndarray:
    """n 64-bit hashes drawn from n // 4 originals, each with up to three bits flipped (copies and near copies)."""
    rng = np.random.default_rng(seed)
    originals = rng.integers(0, 2**63, max(1, n // 4), dtype=np.uint64)
    hashes = originals[rng.integers(0, len(originals), n)]
    for _ in range(3):
        hashes ^= (np.uint64(1) << rng.integers(0, 64, n).astype(np.uint64)) * (rng.random(n) < 0.4).astype(np.uint64)
    return hashes


@pytest.mark.parametrize("max_distance", [0, 1, 4, 9, 64])
def test_near_pairs_finds_exactly_the_pairs_a_comparison_of_all_pairs_finds(max_distance):
    hashes = clustered_hashes(300, seed=max_distance)
    distances = hamming(hashes[:, None], hashes[None, :])
    i, j = np.nonzero(np.triu(distances <= max_distance, 1))
    found = near_pairs(hashes, max_distance, block=37)  # a small block: candidates come in many pieces
    assert [a.tolist() for a in found] == [i.tolist(), j.tolist(), distances[i, j].tolist()]


def test_hash_groups_join_many_copies_and_chains_and_number_them_in_order():
    chain = [0b0, 0b111, 0b111111]  # 3 bits apart, then 3 more: one group through the middle one
    far = 0xFFFF_FFFF_FFFF_0000  # 48 bits from every other
    hashes = np.array([far] + chain + [0b0] * 2000 + [far], np.uint64)
    groups = hash_groups(hashes, 3)
    assert groups[0] == groups[-1] == 0 and set(groups[1:-1]) == {1}


def dataset(images: list[np.ndarray], labels: list[int], files: list[str] | None = None) -> Dataset:
    """A brain-tumour Dataset of the given images (no official split)."""
    stack, labs = np.stack(images), np.array(labels, np.int64)
    files = files or [f"{BRAIN.classes[lab]}/{i}.png" for i, lab in enumerate(labels)]
    return Dataset(stack, labs, files, np.full(len(labs), "", "<U5"), BRAIN.classes, fingerprint(stack, labs))


def test_the_split_keeps_a_near_duplicate_group_on_one_side():
    labels = [i % 4 for i in range(40)]
    images = [phantom(i) for i in range(40)]
    images[4], images[8] = noised(images[0]), rescaled(images[0])  # three copies of one glioma image
    ds = dataset(images, labels)
    straddled = 0
    for seed in range(12):
        train, val = split_train_val(ds, 0.3, seed, max_distance=4)
        assert set(train).isdisjoint(val) and len(train) + len(val) == len(ds)
        assert len({0, 4, 8} & set(val)) in (0, 3)
        exact_train, exact_val = split_train_val(ds, 0.3, seed)  # exact duplicates only: the copies may part
        straddled += len({0, 4, 8} & set(exact_val)) in (1, 2)
    assert straddled > 0


def test_a_group_of_several_labels_stays_whole():
    images, labels = [phantom(i) for i in range(20)], [i % 4 for i in range(20)]
    images[1] = noised(images[0])  # the same picture labelled glioma and meningioma
    ds = dataset(images, labels)
    for seed in range(12):
        _, val = split_train_val(ds, 0.5, seed, max_distance=4)
        assert (0 in val) == (1 in val)


def test_official_parts_come_from_the_split_or_the_folder_names():
    files = ["x/Training/glioma/a.jpg", "x/Testing/glioma/b.jpg", "glioma/c.jpg", "p.npz:val/3"]
    assert official_parts(files, np.array(["", "", "", "val"])).tolist() == ["train", "test", "", "val"]


def test_the_report_counts_groups_across_parts_and_labels():
    a, b = phantom(0), phantom(1)
    images = [a, a, noised(b), b, phantom(2), rescaled(b)]
    files = ["Training/glioma/0.png", "Training/glioma/1.png", "Training/notumor/2.png", "Testing/glioma/3.png",
             "Testing/pituitary/4.png", "Testing/glioma/5.png"]
    report = find_duplicates(dataset(images, [0, 0, 2, 0, 3, 0], files))
    assert (report.exact_groups, report.exact_images) == (1, 2)
    assert (report.near_groups, report.near_images) == (2, 5) and report.largest_group == 3
    assert report.mixed_label_groups == 1 and report.cross_part_groups == 1
    assert report.parts == {"test": 3, "train": 3}
    assert report.examples[0]["distance"] >= 0 and report.model_split is None


def test_the_command_prints_the_counts_of_a_folder(tmp_path, capsys):
    a, b = phantom(0), phantom(1)
    for part, name, image in [("Training", "glioma/0.png", a), ("Training", "glioma/1.png", a),
                              ("Testing", "glioma/2.png", noised(a)), ("Training", "notumor/3.png", b),
                              ("Testing", "pituitary/4.png", phantom(2)), ("Testing", "meningioma/5.png", phantom(3))]:
        (tmp_path / "data" / part / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "data" / part / name)
    args = ["duplicates", "--task", "brain-tumor", "--data", str(tmp_path / "data"), "--model", str(tmp_path / "none.pt")]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "6 images" in text and "exact duplicates: 1 groups, 2 images" in text
    assert "near-duplicates:  1 groups, 3 images" in text and "1 near-duplicate groups span official parts" in text
    assert main(args + ["--json", "--max-distance", "0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "brain-tumor" and result["max_distance"] == 0 and result["parts"] == {"test": 3, "train": 3}
    assert (result["exact_groups"], result["near_groups"]) == (1, 1)


def test_a_new_brain_tumour_run_keeps_near_duplicates_together_and_says_so(tmp_path, capsys):
    for c, name in enumerate(BRAIN.classes):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(phantom(10 * c + i)).save(tmp_path / "data" / name / f"{i}.png")
    Image.fromarray(noised(phantom(0))).save(tmp_path / "data" / "glioma" / "copy.png")  # a near copy of glioma/0.png
    out = tmp_path / "brain-tumor.pt"
    assert main(["train", "--task", "brain-tumor", "--data", str(tmp_path / "data"), "--epochs", "1", "--batch-size", "16",
                 "--val-fraction", "0.3", "--no-sources", "--no-baseline", "--out", str(out)]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["data"]["near_duplicates"] == {"max_distance": 4, "groups": 1, "images": 2}
    assert "near-duplicates (pHash within 4 of 64 bits) kept on one side" in card["data"]["split"]
    capsys.readouterr()
    assert main(["evaluate", "--task", "brain-tumor", "--data", str(tmp_path / "data"), "--model", str(out),
                 "--split", "val", "--json"]) == 0  # the card's split is rebuilt with the same groups
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == card["data"]["validation"]
