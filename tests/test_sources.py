"""Multi-source data: a supplement with a manifest, foreign images, per-source weights and splits by dataset."""
from __future__ import annotations

import csv
import io
import tarfile

import numpy as np
import pytest

from medimg_core import get_task
from medimg_core.data.datasets import DataError, download, read_source
from medimg_core.data.sources import dataset_folds, pool_parts, pool_split, task_pool
from medimg_core.tasks import OTHER, get_source
from medimg_core.training.fit import TrainConfig, sample_weights
from medimg_core.training.train import card_parts, training_data
from tests.imagegen import make_class_folders, png_bytes

MODALITY = get_task("modality")
# (folder, dataset, note) of each image in the generated supplement
ROWS = ([("ChestCT", "hospital-a", "")] * 3 + [("ChestCT", "hospital-b", "")] * 2 + [("Hand", "hospital-b", "")] * 2
        + [("AbdomenCT", "hospital-c", "")] * 3 + [("BreastMRI", "hospital-d", "")] * 2
        + [(OTHER, "knees", "kind=knee MRI (sagittal)")] * 3 + [(OTHER, "brains", "kind=brain MRI (axial T1)")] * 4)


def make_supplement(path, rows=ROWS):
    """A scan-kinds-like archive: scan-kinds/<class>/<file>.png and scan-kinds/manifest.csv."""
    rng = np.random.default_rng(1)
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["file", "class", "dataset", "note"])
    with tarfile.open(path, "w:gz") as tar:
        for i, (folder, dataset, note) in enumerate(rows):
            name = f"{folder}/{dataset}_{i}.png"
            writer.writerow([name, folder, dataset, note])
            data = png_bytes(rng.integers(0, 255, (40, 30 + i), dtype=np.uint8))
            info = tarfile.TarInfo(f"scan-kinds/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        manifest = table.getvalue().encode()
        info = tarfile.TarInfo("scan-kinds/manifest.csv")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    return path


@pytest.fixture(autouse=True)
def empty_data_folder(tmp_path, monkeypatch):
    """No downloaded sources but those a test passes explicitly; caches in the test's own folder."""
    monkeypatch.setenv("MEDIMG_DATA_DIR", str(tmp_path / "nothing-downloaded"))
    monkeypatch.setenv("MEDIMG_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def pool_data(tmp_path):
    """A generated own dataset (6 classes x 8 images) and a generated supplement archive."""
    own = make_class_folders(tmp_path / "MedNIST", MODALITY.classes, per_class=8)
    return own, make_supplement(tmp_path / "scan-kinds.tar.gz")


def test_the_manifest_names_each_images_dataset_and_kind(pool_data):
    raw = read_source(pool_data[1], 32, "scan-kinds")
    assert len(raw.files) == len(ROWS) and raw.images.shape[1:] == (32, 32)
    by_file = dict(zip(raw.files, zip(raw.origins, raw.kinds)))
    assert by_file["scan-kinds/ChestCT/hospital-a_0.png"] == ("hospital-a", "ChestCT")
    assert by_file["scan-kinds/other/brains_16.png"] == ("brains", "brain MRI")


def test_the_pool_labels_supplement_scans_by_class_and_other_kinds_as_other(pool_data):
    own, supplement = pool_data
    ds, notes = task_pool(MODALITY, own, paths={"scan-kinds": supplement}, max_foreign_per_dataset=5)
    k = MODALITY.num_classes
    chest = (ds.origin == "hospital-a") | ((ds.origin == "hospital-b") & (ds.labels == MODALITY.classes.index("ChestCT")))
    assert (ds.labels[chest] == MODALITY.classes.index("ChestCT")).all() and chest.sum() == 5
    assert (ds.labels[ds.origin == "knees"] == k).all() and (ds.labels[ds.origin == "brains"] == k).all()
    assert (ds.origin == "mednist").sum() == 48 and (ds.labels[ds.origin == "mednist"] < k).all()
    assert (ds.origin == "synthetic").sum() == 5  # generated pictures, capped like any foreign dataset
    assert any("brain-tumor-mri" in note for note in notes)  # a missing source is a note, not an error


def test_images_of_the_tasks_own_kind_are_never_foreign(pool_data):
    own, supplement = pool_data
    brain = get_task("brain-tumor")
    brain_own = make_class_folders(own.parent / "brain" / "Training", brain.classes, per_class=3, size=32)
    ds, _ = task_pool(brain, brain_own.parent, paths={"scan-kinds": supplement, "mednist": own}, max_foreign_per_dataset=50)
    assert "brains" not in ds.origin.tolist()  # brain MRIs of another dataset: the brain task's kind, unlabelled
    assert (ds.labels[ds.origin == "knees"] == brain.num_classes).all()
    assert (ds.labels[ds.origin == "mednist"] == brain.num_classes).all()


def test_dataset_folds_hold_out_every_dataset_exactly_once_and_never_the_own_one(pool_data):
    own, supplement = pool_data
    ds, _ = task_pool(MODALITY, own, paths={"scan-kinds": supplement}, max_foreign_per_dataset=5)
    folds = dataset_folds(ds, "mednist", n_folds=3, seed=0)
    names = [name for fold in folds for name in fold]
    assert sorted(names) == sorted(set(ds.origin.tolist()) - {"mednist"}) and len(names) == len(set(names))
    assert dataset_folds(ds, "mednist", n_folds=3, seed=0) == folds  # reproducible


def test_a_held_out_dataset_is_never_on_both_sides(pool_data):
    own, supplement = pool_data
    ds, _ = task_pool(MODALITY, own, paths={"scan-kinds": supplement}, max_foreign_per_dataset=5)
    _, train, val = pool_split(ds, "mednist", None, 0.25, 0, held_out=["hospital-b", "knees"])
    assert set(ds.origin[val].tolist()) == {"mednist", "hospital-b", "knees"}
    assert not {"hospital-b", "knees"} & set(ds.origin[train].tolist())
    mine = ds.origin == "mednist"
    assert len(set(train) & set(val)) == 0 and mine[train].sum() + mine[val].sum() == mine.sum()


def test_holding_out_an_unknown_dataset_is_a_clear_error(pool_data):
    own, supplement = pool_data
    ds, _ = task_pool(MODALITY, own, paths={"scan-kinds": supplement}, max_foreign_per_dataset=5)
    with pytest.raises(DataError, match="cannot hold out nowhere"):
        pool_split(ds, "mednist", None, 0.25, 0, held_out=["nowhere"])


def test_small_datasets_are_drawn_more_often_per_image_than_large_ones():
    origins = np.array(["big"] * 100 + ["small"] * 4)
    weights = sample_weights(origins, np.zeros(104, np.int64), power=0.5).numpy()
    share = weights[100:].sum() / weights.sum()
    assert share == pytest.approx(2 / (2 + 10))  # groups of 100 and 4 get shares sqrt(100) : sqrt(4)


def test_the_supplement_downloads_from_a_local_copy(pool_data, tmp_path):
    path = download(get_source("scan-kinds"), pool_data[1], folder=tmp_path / "data")
    assert path.name == "scan-kinds.tar.gz" and path.stat().st_size == pool_data[1].stat().st_size


def test_a_second_archive_beside_the_supplement_is_read_as_part_of_it(pool_data, tmp_path):
    own, supplement = pool_data
    alone, _ = task_pool(MODALITY, own, paths={"scan-kinds": supplement}, max_foreign_per_dataset=5)
    make_supplement(supplement.parent / "scan-kinds-2.tar.gz", rows=[("BreastMRI", "hospital-e", "")] * 3)
    both, _ = task_pool(MODALITY, own, paths={"scan-kinds": supplement}, max_foreign_per_dataset=5)
    assert len(both) == len(alone) + 3
    assert (both.origin == "hospital-e").sum() == 3
    assert set(both.labels[both.origin == "hospital-e"]) == {MODALITY.classes.index("BreastMRI")}


def test_a_pool_rebuilt_with_the_parts_its_card_named_leaves_out_an_archive_added_since(pool_data):
    own, supplement = pool_data
    cfg, paths = TrainConfig(task="modality", max_foreign_per_dataset=5), {"scan-kinds": supplement}
    before, _ = training_data(MODALITY, cfg, own, paths)
    make_supplement(supplement.parent / "scan-kinds-2.tar.gz", rows=[("BreastMRI", "hospital-e", "")] * 3)
    assert pool_parts(MODALITY, paths) == ["scan-kinds-2.tar.gz"]
    rebuilt, _ = training_data(MODALITY, cfg, own, paths, parts=card_parts({"data": {"parts": []}}))
    assert rebuilt.fingerprint == before.fingerprint


def test_a_card_from_before_parts_were_recorded_reads_none_of_them():
    assert card_parts({"data": {"fingerprint": "abc"}}) == []


def test_the_supplement_downloads_with_its_second_archive_beside_it(pool_data, tmp_path):
    second = make_supplement(pool_data[1].parent / "scan-kinds-2.tar.gz", rows=[("BreastMRI", "hospital-e", "")] * 2)
    path = download(get_source("scan-kinds"), pool_data[1], folder=tmp_path / "data")
    assert (path.parent / "scan-kinds-2.tar.gz").read_bytes() == second.read_bytes()


def test_a_run_without_a_source_leaves_its_images_out_of_the_pool(pool_data):
    own, supplement = pool_data
    cfg = TrainConfig(task="modality", without=["scan-kinds"])
    ds, _ = training_data(MODALITY, cfg, own, {"scan-kinds": supplement})
    assert not {"hospital-a", "hospital-b", "knees", "brains"} & set(ds.origin.tolist())
    assert not any(f.startswith("scan-kinds/") for f in ds.files)


def test_leaving_out_a_source_the_task_does_not_have_is_refused(pool_data):
    with pytest.raises(ValueError, match="not a source of modality"):
        training_data(MODALITY, TrainConfig(task="modality", without=["chest-xray-pneumonia"]), pool_data[0])


def test_the_supplement_has_no_public_download_and_says_so(tmp_path):
    with pytest.raises(DataError, match="download scan-kinds --from PATH"):
        download(get_source("scan-kinds"), folder=tmp_path)


def test_the_real_supplement_reads_with_every_dataset_named(tmp_path):
    from tests.conftest import shared_file

    raw = read_source(shared_file("scan-kinds.tar.gz"), 32, "scan-kinds")
    assert len(raw.files) == 963 and "" not in raw.origins.tolist() and len(set(raw.origins.tolist())) >= 40
    others = raw.folders == OTHER
    assert (raw.kinds[others] != OTHER).mean() > 0.95 and "brain MRI" in raw.kinds.tolist()
