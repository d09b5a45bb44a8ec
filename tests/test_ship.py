"""`medimg ship RUN`: a run's model becomes the shipped one, the previous one is kept, and the change is reported."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from medimg_core.cli.main import main
from medimg_core.reports.embed import file_fingerprint, read_info
from tests.cli_runs import default_run, folder_digest

OLD_DATE = "2026-01-02 03:04:05 UTC"  # the shipped model's creation time, which names its kept copy
KEPT = "modality-20260102-030405"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return default_run(tmp_path_factory)


@pytest.fixture
def shipped(run, tmp_path, monkeypatch):
    """Shipped folders of their own: models ($MEDIMG_MODELS_DIR, holding the run's model as of OLD_DATE) and maps."""
    models, maps = tmp_path / "models", tmp_path / "maps"
    models.mkdir()
    maps.mkdir()
    shutil.copy(run.run / "modality.pt", models / "modality.pt")
    card = json.loads((run.run / "modality.json").read_text())
    card["training"]["created"] = OLD_DATE
    (models / "modality.json").write_text(json.dumps(card))
    monkeypatch.setenv("MEDIMG_MODELS_DIR", str(models))
    monkeypatch.setenv("MEDIMG_EMBEDDINGS_DIR", str(maps))
    monkeypatch.setenv("MEDIMG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return models


@pytest.fixture
def new_run(run, tmp_path):
    """Another run folder: the model re-saved with another temperature (other bytes) and a card claiming 50%."""
    folder = tmp_path / "runs" / "modality" / "new"
    folder.mkdir(parents=True)
    state = torch.load(run.run / "modality.pt", weights_only=True)
    state["temperature"] *= 1.5
    torch.save(state, folder / "modality.pt")
    card = json.loads((run.run / "modality.json").read_text())
    card["validation"]["accuracy"] = 0.5
    (folder / "modality.json").write_text(json.dumps(card))
    return folder


def accuracy_of(folder) -> str:
    return f"{json.loads((folder / 'modality.json').read_text())['validation']['accuracy']:.2%}"


def test_ship_installs_the_run_and_keeps_the_previous_model_and_card(shipped, new_run, capsys):
    old_pt, old_card = (shipped / "modality.pt").read_bytes(), (shipped / "modality.json").read_bytes()
    was = accuracy_of(shipped)
    assert main(["ship", str(new_run)]) == 0
    assert (shipped / "modality.pt").read_bytes() == (new_run / "modality.pt").read_bytes()
    assert (shipped / "modality.json").read_bytes() == (new_run / "modality.json").read_bytes()
    assert (shipped / "previous" / f"{KEPT}.pt").read_bytes() == old_pt
    assert (shipped / "previous" / f"{KEPT}.json").read_bytes() == old_card
    out = capsys.readouterr().out
    assert f"the previous one is kept as {shipped / 'previous' / KEPT}.pt" in out
    assert f"Validation accuracy: {was} -> 50.00%" in out and "Parameters: " in out and "(unchanged)" in out


def test_a_shipped_model_can_be_rolled_back_from_its_kept_copy(shipped, new_run):
    old_pt = (shipped / "modality.pt").read_bytes()
    assert main(["ship", str(new_run)]) == 0
    assert main(["ship", str(shipped / "previous" / f"{KEPT}.pt")]) == 0
    assert (shipped / "modality.pt").read_bytes() == old_pt


def test_ship_carries_the_runs_map_of_this_model_and_retires_the_old_map(run, shipped, new_run, capsys):
    maps = shipped.parent / "maps"
    embed = ["embed", "--task", "modality", "--data", str(run.data), "--own-only", "--methods", "pca"]
    assert main(embed + ["--out", str(maps / "modality.npz")]) == 0  # the map of the shipped model
    assert main(embed + ["--model", str(new_run / "modality.pt"), "--out", str(new_run / "modality.npz")]) == 0
    old_map = (maps / "modality.npz").read_bytes()
    capsys.readouterr()
    assert main(["ship", str(new_run)]) == 0
    assert (maps / "modality.npz").read_bytes() == (new_run / "modality.npz").read_bytes()
    assert (shipped / "previous" / f"{KEPT}.npz").read_bytes() == old_map
    assert "made of this model" in capsys.readouterr().out


def test_without_a_map_of_the_new_model_ship_says_how_to_make_one(shipped, new_run, capsys):
    assert main(["ship", str(new_run)]) == 0
    assert "medimg embed --task modality --out" in capsys.readouterr().out


@pytest.mark.parametrize("what, says", [("text", "is not a medimg checkpoint"), ("unknown task", "not a known task"),
                                        ("empty folder", "should hold one model"), ("same file", "already the shipped")])
def test_ship_refuses_what_is_not_a_model_of_a_known_task(shipped, tmp_path, run, what, says, capsys):
    if what == "text":
        given = tmp_path / "notes.pt"
        given.write_text("# not a model\n")
    elif what == "unknown task":
        given = tmp_path / "covid.pt"
        state = torch.load(run.run / "modality.pt", weights_only=True)
        state["task"]["name"] = "covid"
        torch.save(state, given)
    elif what == "empty folder":
        given = tmp_path / "empty"
        given.mkdir()
    else:
        given = shipped / "modality.pt"
    before = folder_digest(shipped)
    assert main(["ship", str(given)]) == 2
    assert says in capsys.readouterr().err
    assert folder_digest(shipped) == before


def test_ship_makes_a_search_record_the_one_the_models_page_shows(shipped, tmp_path):
    old = {"task": "modality", "created": OLD_DATE, "runs": [{"label": "base", "accuracy": 0.8}]}
    (shipped / "search").mkdir()
    (shipped / "search" / "modality.json").write_text(json.dumps(old))
    folder = tmp_path / "runs" / "modality" / "search"
    folder.mkdir(parents=True)
    (folder / "search.json").write_text(json.dumps({"task": "modality", "runs": [{"label": "lr=0.01", "accuracy": 0.9}]}))
    assert main(["ship", str(folder)]) == 0
    assert json.loads((shipped / "search" / "modality.json").read_text())["runs"][0]["label"] == "lr=0.01"
    assert json.loads((shipped / "search" / "previous" / f"{KEPT}.json").read_text()) == old


def test_ship_with_embed_computes_and_ships_the_new_models_map(run, shipped, new_run, capsys):
    assert main(["ship", str(new_run), "--embed", "--data", str(run.data)]) == 0
    info = read_info(shipped.parent / "maps" / "modality.npz")
    assert info["model_fingerprint"] == file_fingerprint(shipped / "modality.pt")
    assert info["own_fingerprint"] == info["data_fingerprint"]  # the run trained on its own dataset only: so is its map
    assert "wrote " in capsys.readouterr().out
