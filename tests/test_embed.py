"""Embedding map: features through the model, PCA/t-SNE, the disk cache and the shipped file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medimg_core import embed, get_task
from medimg_core.cli import main
from medimg_core.data import load_dataset
from medimg_core.embed import (align, cache_path, embedding_for, file_fingerprint, find_embedding, load_embedding,
                               model_fingerprint, project_pca, project_tsne, save_embedding, shipped_embedding_path)
from medimg_core.predict import load_classifier
from medimg_core.training import TrainConfig, train
from tests.imagegen import make_class_folders

SPEC = get_task("modality")
PER_CLASS = 12


def make_tiny_setup(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """A folder of generated <class>/<i>.png images (12 per class) and a one-epoch model trained on it."""
    data = make_class_folders(root / "data", SPEC.classes, per_class=PER_CLASS)
    out = root / "models" / "modality.pt"
    train(TrainConfig(task="modality", epochs=1, batch_size=32, max_per_class=50, baseline=False, seed=seed),
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
    assert first.origin == "computed" and len(counted) == 1
    assert cache_path("modality", model_fingerprint(clf), ds.fingerprint, ("pca",)).is_file()
    second = embedding_for(load_classifier("modality", model), load_dataset(SPEC, data), methods=("pca",))
    assert second.origin == "cache" and len(counted) == 1
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
    assert embedding_for(clf, smaller, methods=("pca",)).origin == "computed"
    assert len(counted) == 2
    other = tmp_path / "other.pt"  # the same weights in another file is the same model...
    other.write_bytes(model.read_bytes())
    assert embedding_for(load_classifier("modality", other), ds, methods=("pca",)).origin == "cache"
    _, retrained = make_tiny_setup(tmp_path / "retrained", seed=1)  # ...a retrained one is not
    emb = embedding_for(load_classifier("modality", retrained), ds, methods=("pca",))
    assert emb.origin == "computed" and len(counted) == 3
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
    assert got is not None and got.origin == "shipped" and len(got) == len(ds)
    assert find_embedding("modality", fp, ds.fingerprint, methods=("pca",)).origin == "shipped"
    assert find_embedding("modality", "another-model", methods=("pca",)) is None
    assert find_embedding("modality", fp, "another-dataset", methods=("pca",)) is None
    assert find_embedding("modality", fp, methods=("pca", "tsne")) is None  # the shipped file lacks t-SNE


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
    args = ["embed", "--task", "modality", "--data", str(data), "--model", str(model), "--methods", "pca"]
    assert main([*args, "--out", str(out)]) == 0
    first = capsys.readouterr().out
    assert f"{6 * PER_CLASS:,} images" in first and "computed and cached" in first and f"wrote {out}" in first
    assert load_embedding(out).coords.keys() == {"pca"}
    assert main(args) == 0
    assert "read from the disk cache" in capsys.readouterr().out


def test_cli_embed_with_a_missing_model_is_a_one_line_error(tmp_path, capsys):
    assert main(["embed", "--task", "modality", "--model", str(tmp_path / "none.pt")]) == 2
    assert capsys.readouterr().err.startswith("error: No model file")


def test_the_shipped_embedding_belongs_to_the_shipped_model(monkeypatch):
    """assets/embeddings/<task>.npz must be regenerated whenever assets/models/<task>.pt changes."""
    from medimg_core.checkpoint import ASSETS_DIR

    monkeypatch.delenv("MEDIMG_EMBEDDINGS_DIR")
    for task in ("modality", "pneumonia", "brain-tumor"):
        shipped, model = shipped_embedding_path(task), ASSETS_DIR / f"{task}.pt"
        if not shipped.is_file():
            continue
        assert model.is_file(), f"{shipped} is shipped without its model {model}"
        emb = load_embedding(shipped)
        assert emb.model_fingerprint == file_fingerprint(model), (
            f"{shipped} was made with another {model.name}: run python -m medimg_core embed --task {task} --out {shipped}")
        assert emb.task == task and len(emb.files) == len(emb) and set(emb.coords) == {"pca", "tsne"}
        assert shipped.stat().st_size < 2 * 2**20  # numbers only, small
