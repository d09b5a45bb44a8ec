"""Task definitions: the built-in registry and tasks a user adds as JSON for their own folder of classes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medimg_core.tasks import BUILTIN_TASKS, ClassFacts, TaskSpec, get_task, task_from_json
from tests.imagegen import make_class_folders

ROOT = Path(__file__).resolve().parents[1]
COVID = {"name": "covid", "title": "COVID-19 vs healthy chest X-rays", "classes": ["covid", "healthy"],
         "image_size": 64, "positive_class": "covid"}


def test_the_three_built_in_tasks():
    assert list(BUILTIN_TASKS) == ["modality", "pneumonia", "brain-tumor"]
    assert BUILTIN_TASKS["brain-tumor"].image_size == 224 and BUILTIN_TASKS["pneumonia"].positive_class == "pneumonia"


def test_a_json_definition_becomes_a_task_of_image_folders(tmp_path):
    (tmp_path / "covid.json").write_text(json.dumps(COVID))
    spec = task_from_json(tmp_path / "covid.json")
    assert spec.classes == ("covid", "healthy") and spec.source.kind == "image-folders"


@pytest.mark.parametrize("change, message", [
    ({"classes": ["only"]}, "at least two distinct classes"),
    ({"positive_class": "flu"}, "positive_class must be one of"),
    ({"name": "../evil"}, "name must be lower-case"),
    ({"image_size": 4096}, "image_size must be between"),
])
def test_a_bad_definition_says_what_is_wrong(tmp_path, change, message):
    (tmp_path / "bad.json").write_text(json.dumps({**COVID, **change}))
    with pytest.raises(ValueError, match=message):
        task_from_json(tmp_path / "bad.json")


def cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medimg_core", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=600)


def test_a_users_folder_of_classes_trains_and_predicts_with_the_same_commands(tmp_path):
    tasks, models = tmp_path / "tasks", tmp_path / "models"
    tasks.mkdir()
    (tasks / "covid.json").write_text(json.dumps(COVID))
    (tasks / "broken.json").write_text("{not json")
    data = make_class_folders(tmp_path / "xrays", ("covid", "healthy"), per_class=12)
    env = {"MEDIMG_TASKS_DIR": str(tasks), "MEDIMG_MODELS_DIR": str(models)}
    done = cli(["train", "--task", "covid", "--data", str(data), "--epochs", "2", "--batch-size", "8", "--no-baseline",
                "--out", str(tmp_path / "run")], env)
    assert done.returncode == 0, done.stderr
    assert "skipped a task definition" in done.stderr and not models.exists()  # a run never ships by itself
    done = cli(["ship", str(tmp_path / "run")], env)
    assert done.returncode == 0, done.stderr
    assert (models / "covid.pt").is_file()
    card = json.loads((models / "covid.json").read_text())
    assert card["classes"] == ["covid", "healthy"] and card["operating_threshold"]["class"] == "covid"
    done = cli(["predict", "--task", "covid", str(next((data / "covid").iterdir())), "--json"], env)
    row = json.loads(done.stdout)
    assert done.returncode == 0 and row["closest"] in ("covid", "healthy") and row["label"] in (None, row["closest"])


def test_each_scan_type_class_names_its_modality_and_body_part():
    spec = get_task("modality")
    facts = {c: spec.facts(c) for c in spec.classes}
    assert facts["ChestCT"] == ClassFacts("CT", "chest", "chest CT")
    assert facts["CXR"].modality == "X-ray" and facts["Hand"].body_part == "hand"
    assert {f.modality for f in facts.values()} == {"CT", "MRI", "X-ray"}


def test_a_single_modality_task_gives_every_class_its_modality_and_body_part():
    spec = get_task("brain-tumor")
    assert spec.facts("notumor") == ClassFacts("MRI", "head", "no tumour")
    assert spec.facts("glioma").modality == "MRI"


def test_a_checkpoint_spec_saved_without_facts_gets_them_from_the_registry():
    saved = get_task("pneumonia").to_dict()
    for key in ("modality", "body_part", "class_facts"):
        saved.pop(key)
    spec = TaskSpec.from_dict(saved)
    assert spec.facts("pneumonia") == ClassFacts("X-ray", "chest", "pneumonia")


def test_a_user_task_without_facts_names_its_classes_plainly():
    spec = TaskSpec(name="mine", title="Mine", classes=("a", "b"), image_size=32, source=get_task("modality").source)
    assert spec.facts("a") == ClassFacts("", "", "a")
