"""Embedding map: features through the model, PCA/t-SNE, the disk cache and the shipped file."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medimg_core import get_task
from medimg_core.reports import embed
from medimg_core.cli.main import main
from medimg_core.data.datasets import load_dataset
from medimg_core.reports.embed import (align, cache_path, data_key, embedding_for, file_fingerprint, find_embedding,
                               load_embedding, model_fingerprint, project_pca, project_tsne, save_embedding,
                               shipped_embedding_path)
from medimg_core.inference.predict import load_classifier
from medimg_core.data.sources import task_pool
from medimg_core.training.train import TrainConfig, train
from tests.imagegen import make_class_folders
from tests.test_sources import ROWS, make_supplement

SPEC = get_task("modality")
PER_CLASS = 12


def make_tiny_setup(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """A folder of generated <class>/<i>.png images (12 per class) and a one-epoch model trained on it."""
    data = make_class_folders(root / "data", SPEC.classes, per_class=PER_CLASS)
    out = root / "models" / "modality.pt"
    train(TrainConfig(task="modality", epochs=1, batch_size=32, max_per_class=50, baseline=False, seed=seed, sources=False),
          data_path=data, out=out, progress=False)
    return data, out


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """(data folder, model path), trained once per test session (tests/test_app_explorer.py uses it too)."""
    return make_tiny_setup(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    """Every test gets its own disk cache and shipped-embeddings folder."""
    monkeypatch.setenv("MEDIMG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MEDIMG_EMBEDDINGS_DIR", str(tmp_path / "shipped"))


@pytest.fixture
def supplement(tmp_path, monkeypatch):
    """A generated scan-kinds archive in an otherwise empty data folder (no brain tumour set: a note only)."""
    folder = tmp_path / "data-folder"
    folder.mkdir()
    monkeypatch.setenv("MEDIMG_DATA_DIR", str(folder))
    return make_supplement(folder / "scan-kinds.tar.gz")


@pytest.fixture
def pool(tiny, supplement):
    """The tiny own dataset plus the generated supplement and 5 synthetic pictures: a task pool."""
    return task_pool(SPEC, tiny[0], max_foreign_per_dataset=5)[0]


@pytest.fixture
def counted(monkeypatch):
    """Counts calls of compute_embedding (what a cache hit must avoid)."""
    calls = []
    real = embed.compute_embedding

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(embed, "compute_embedding", spy)
    return calls


def test_compute_embedding_describes_every_image(tiny):
    data, model = tiny
    clf, ds = load_classifier("modality", model), load_dataset(SPEC, data)
    seen = []
    emb = embed.compute_embedding(clf, ds, progress=lambda f, m: seen.append(f))
    n = len(ds)
    assert len(emb) == n == 6 * PER_CLASS
    assert set(emb.coords) == {"pca", "tsne"}
    assert all(c.shape == (n, 2) and np.isfinite(c).all() for c in emb.coords.values())
    assert emb.features.shape == (n, clf.model.head.in_features)
    assert emb.preds.shape == emb.labels.shape == emb.confidence.shape == emb.ood.shape == (n,)
    assert ((emb.confidence >= 1 / 6 - 1e-6) & (emb.confidence <= 1)).all()
    assert set(emb.split.tolist()) <= {"train", "val"} and (emb.split == "val").sum() == clf.card["data"]["validation"]
    assert emb.files == ds.files and emb.model_fingerprint == file_fingerprint(model) and emb.data_fingerprint == ds.fingerprint
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert emb.meta["feature_dim"] == emb.features.shape[1] and {"model", "pca", "tsne"} <= set(emb.meta["seconds"])


def test_a_second_call_is_served_from_the_disk_cache(tiny, counted):
    data, model = tiny
    clf, ds = load_classifier("modality", model), load_dataset(SPEC, data)
    first = embedding_for(clf, ds, methods=("pca",))
    assert first.loaded_from == "computed" and len(counted) == 1
    assert cache_path("modality", model_fingerprint(clf), ds.fingerprint, ("pca",)).is_file()
    second = embedding_for(load_classifier("modality", model), load_dataset(SPEC, data), methods=("pca",))
    assert second.loaded_from == "cache" and len(counted) == 1
    np.testing.assert_allclose(second.coords["pca"], first.coords["pca"], rtol=1e-3, atol=1e-3)  # float16 on disk
    np.testing.assert_array_equal(second.preds, first.preds)
    assert second.files == first.files
    embedding_for(clf, ds, methods=("pca",), use_cache=False)
    assert len(counted) == 2


def test_another_dataset_or_model_is_not_served_the_cached_map(tiny, tmp_path, counted):
    data, model = tiny
    clf, ds = load_classifier("modality", model), load_dataset(SPEC, data)
    embedding_for(clf, ds, methods=("pca",))
    smaller = ds.subset(np.arange(0, len(ds), 2))
    assert embedding_for(clf, smaller, methods=("pca",)).loaded_from == "computed"
    assert len(counted) == 2
    other = tmp_path / "other.pt"  # the same weights in another file is the same model...
    other.write_bytes(model.read_bytes())
    assert embedding_for(load_classifier("modality", other), ds, methods=("pca",)).loaded_from == "cache"
    _, retrained = make_tiny_setup(tmp_path / "retrained", seed=1)  # ...a retrained one is not
    emb = embedding_for(load_classifier("modality", retrained), ds, methods=("pca",))
    assert emb.loaded_from == "computed" and len(counted) == 3
    assert emb.model_fingerprint != model_fingerprint(clf)


def test_the_shippable_file_is_small_numbers_only_and_round_trips(tiny, tmp_path):
    data, model = tiny
    clf, ds = load_classifier("modality", model), load_dataset(SPEC, data)
    emb = embed.compute_embedding(clf, ds, methods=("pca",))
    path = save_embedding(emb, tmp_path / "modality.npz")
    with np.load(path) as z:
        assert "features" not in z.files
        assert z["coords_pca"].dtype == np.float16 and z["labels"].dtype == np.int8 and z["preds"].dtype == np.int8
        assert z["confidence"].dtype == np.float16 and z["ood"].dtype == bool
        assert all(z[k].ndim <= 1 or z[k].shape[1:] == (2,) for k in z.files)  # vectors and N x 2 only: no pixels
    assert path.stat().st_size < 20 * len(ds) + 4096
    back = load_embedding(path)
    assert back.files == ds.files and back.classes == SPEC.classes and back.features is None
    np.testing.assert_array_equal(back.labels, ds.labels)
    np.testing.assert_array_equal(back.split, emb.split)
    np.testing.assert_array_equal(back.ood, emb.ood)
    assert back.model_fingerprint == emb.model_fingerprint and back.meta["n"] == len(ds)


def test_find_embedding_uses_the_shipped_file_only_for_its_model(tiny, tmp_path):
    data, model = tiny
    clf, ds = load_classifier("modality", model), load_dataset(SPEC, data)
    fp = model_fingerprint(clf)
    assert find_embedding("modality", fp) is None
    save_embedding(embed.compute_embedding(clf, ds, methods=("pca",)), shipped_embedding_path("modality"))
    got = find_embedding("modality", fp, methods=("pca",))
    assert got is not None and got.loaded_from == "shipped" and len(got) == len(ds)
    assert find_embedding("modality", fp, ds.fingerprint, methods=("pca",)).loaded_from == "shipped"
    assert find_embedding("modality", "another-model", methods=("pca",)) is None
    assert find_embedding("modality", fp, "another-dataset", methods=("pca",)) is None
    assert find_embedding("modality", fp, methods=("pca", "tsne")) is None  # the shipped file lacks t-SNE


def test_a_pool_map_keeps_each_points_dataset_and_other_labels_through_save_and_load(tiny, pool, tmp_path):
    emb = embed.compute_embedding(load_classifier("modality", tiny[1]), pool, methods=("pca",))
    back = load_embedding(save_embedding(emb, tmp_path / "pool.npz"))
    k = len(SPEC.classes)
    assert len(back) == len(pool) == 6 * PER_CLASS + len(ROWS) + 5
    np.testing.assert_array_equal(back.origin, pool.origin)
    np.testing.assert_array_equal(back.labels, pool.labels)
    assert back.foreign.sum() == 7 + 5 and set(back.origin[back.foreign]) == {"knees", "brains", "synthetic"}
    assert (back.labels[back.foreign] == k).all() and back.names[k] == "other"
    assert back.own == "mednist" and back.mine.sum() == 6 * PER_CLASS
    assert back.own_fingerprint == load_dataset(SPEC, tiny[0]).fingerprint != back.data_fingerprint == pool.fingerprint
    with np.load(tmp_path / "pool.npz") as z:
        assert z["origin"].dtype == np.int8 and z["origin_names"].dtype == np.uint8  # an index into a list of names


def test_a_foreign_point_is_wrong_only_when_the_model_does_not_flag_it(tiny, pool):
    emb = embed.compute_embedding(load_classifier("modality", tiny[1]), pool, methods=("pca",))
    k = len(SPEC.classes)
    np.testing.assert_array_equal(emb.answers[emb.foreign], np.where(emb.ood[emb.foreign], k, emb.preds[emb.foreign]))
    np.testing.assert_array_equal(emb.wrong[emb.foreign], ~emb.ood[emb.foreign])
    np.testing.assert_array_equal(emb.wrong[~emb.foreign], (emb.preds != emb.labels)[~emb.foreign])


def test_a_shipped_pool_map_is_found_for_the_own_dataset(tiny, pool):
    clf, own = load_classifier("modality", tiny[1]), load_dataset(SPEC, tiny[0])
    save_embedding(embed.compute_embedding(clf, pool, methods=("pca",)), shipped_embedding_path("modality"))
    got = find_embedding("modality", model_fingerprint(clf), own.fingerprint, methods=("pca",))
    assert got is not None and got.loaded_from == "shipped" and len(got) == len(pool)
    assert find_embedding("modality", model_fingerprint(clf), pool.fingerprint, methods=("pca",)) is not None
    assert find_embedding("modality", model_fingerprint(clf), "another-dataset", methods=("pca",)) is None


def test_a_cached_pool_map_comes_before_a_cached_map_of_the_own_dataset(tiny, pool):
    clf, own = load_classifier("modality", tiny[1]), load_dataset(SPEC, tiny[0])
    embedding_for(clf, own, methods=("pca",))
    assert len(find_embedding("modality", model_fingerprint(clf), own.fingerprint, methods=("pca",))) == len(own)
    embedding_for(clf, pool, methods=("pca",))
    got = find_embedding("modality", model_fingerprint(clf), own.fingerprint, methods=("pca",))
    assert got.loaded_from == "cache" and len(got) == len(pool)


def test_a_pool_is_cached_under_its_datasets_too(pool):
    renamed = pool.subset(np.arange(len(pool)))
    renamed.origin = np.where(renamed.origin == "hospital-a", "hospital-z", renamed.origin)
    assert renamed.fingerprint == pool.fingerprint and data_key(renamed) != data_key(pool)
    own = pool.subset(np.flatnonzero(pool.origin == "mednist"))
    assert data_key(own) == own.fingerprint  # one dataset: keyed as before


def test_a_version_1_map_reads_with_every_point_of_the_own_dataset(tiny, tmp_path):
    clf, ds = load_classifier("modality", tiny[1]), load_dataset(SPEC, tiny[0])
    with np.load(save_embedding(embed.compute_embedding(clf, ds, methods=("pca",)), tmp_path / "v2.npz")) as z:
        arrays = {k: z[k] for k in z.files if k not in ("origin", "origin_names")}
    info = json.loads(str(arrays["info"]))
    arrays["info"] = np.array(json.dumps({k: v for k, v in info.items() if not k.startswith("own")} | {"version": 1}))
    np.savez_compressed(tmp_path / "v1.npz", **arrays)
    old = load_embedding(tmp_path / "v1.npz")
    assert old.own == "mednist" and old.mine.all() and old.own_fingerprint == ds.fingerprint


def test_projections_have_the_right_shapes():
    rng = np.random.default_rng(0)
    feats = np.concatenate([rng.normal(0, 1, (60, 64)), rng.normal(6, 1, (60, 64))]).astype(np.float32)
    pca = project_pca(feats)
    assert pca.shape == (120, 2) and pca.dtype == np.float32
    tsne = project_tsne(feats, n_jobs=1)
    assert tsne.shape == (120, 2) and np.isfinite(tsne).all()
    # two well separated blobs stay apart: every point is nearer its own blob's centre
    centres = np.stack([tsne[:60].mean(0), tsne[60:].mean(0)])
    nearest = np.linalg.norm(tsne[:, None] - centres[None], axis=2).argmin(1)
    assert (nearest == np.repeat([0, 1], 60)).all()
    assert project_tsne(feats[:3]).shape == (3, 2)


def test_align_maps_file_names_to_dataset_rows():
    np.testing.assert_array_equal(align(["a", "b"], ["a", "b"]), [0, 1])
    np.testing.assert_array_equal(align(["b", "x", "a"], ["a", "b", "c"]), [1, -1, 0])


def test_cli_embed_computes_caches_and_writes_the_shippable_file(tiny, tmp_path, capsys):
    data, model = tiny
    out = tmp_path / "assets" / "modality.npz"
    args = ["embed", "--task", "modality", "--data", str(data), "--model", str(model), "--methods", "pca", "--own-only"]
    assert main([*args, "--out", str(out)]) == 0
    first = capsys.readouterr().out
    assert f"{6 * PER_CLASS:,} images" in first and "computed and cached" in first and f"wrote {out}" in first
    assert load_embedding(out).coords.keys() == {"pca"}
    assert main(args) == 0
    assert "read from the disk cache" in capsys.readouterr().out


def test_cli_embed_maps_the_tasks_whole_pool_unless_own_only(tiny, supplement, tmp_path, capsys):
    data, model = tiny
    args = ["embed", "--task", "modality", "--data", str(data), "--model", str(model), "--methods", "pca"]
    assert main([*args, "--out", str(tmp_path / "pool.npz")]) == 0
    out = capsys.readouterr().out
    emb = load_embedding(tmp_path / "pool.npz")
    assert len(emb) > 6 * PER_CLASS and {"hospital-a", "knees", "synthetic"} <= set(emb.origin)
    assert "other datasets" in out and "of other kinds" in out
    assert (emb.split[~emb.mine] == "unused").all()  # the tiny model trained on its own dataset only
    assert main([*args, "--own-only", "--out", str(tmp_path / "own.npz")]) == 0
    assert len(load_embedding(tmp_path / "own.npz")) == 6 * PER_CLASS


def test_cli_embed_with_a_missing_model_is_a_one_line_error(tmp_path, capsys):
    assert main(["embed", "--task", "modality", "--model", str(tmp_path / "none.pt")]) == 2
    assert capsys.readouterr().err.startswith("error: No model file")


def test_the_shipped_embedding_belongs_to_the_shipped_model(monkeypatch):
    """assets/embeddings/<task>.npz must be regenerated whenever assets/models/<task>.pt changes."""
    from medimg_core.models.checkpoint import ASSETS_DIR

    monkeypatch.delenv("MEDIMG_EMBEDDINGS_DIR")
    for task in ("modality", "pneumonia", "brain-tumor"):
        shipped, model = shipped_embedding_path(task), ASSETS_DIR / f"{task}.pt"
        if not shipped.is_file():
            continue
        assert model.is_file(), f"{shipped} is shipped without its model {model}"
        emb = load_embedding(shipped)
        assert emb.model_fingerprint == file_fingerprint(model), (
            f"{shipped} was made with another {model.name}: run medimg embed --task {task} --out {shipped}")
        assert emb.task == task and len(emb.files) == len(emb) and set(emb.coords) == {"pca", "tsne"}
        assert shipped.stat().st_size < 2 * 2**20  # numbers only, small
