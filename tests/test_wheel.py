"""A wheel built from the repository carries the shipped models, cards, maps and examples, and predicts anywhere."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "requirements.txt", "README.md", "medimg_core", "medimg_app", "assets")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built (pip wheel --no-deps) from a copy of the sources, so the checkout gets no build/ or egg-info."""
    base = tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        source, copy = ROOT / name, base / "src" / name
        if source.is_dir():
            shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__", "previous", "*.tmp"))
        else:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, copy)
    pip(["wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(base / "dist"), str(base / "src")])
    return next((base / "dist").glob("medimg-*.whl"))


@pytest.fixture(scope="module")
def site(wheel) -> Path:
    """The wheel installed (without its dependencies, which this venv has) into a folder of its own."""
    target = wheel.parent.parent / "site"
    pip(["install", "--no-deps", "--target", str(target), str(wheel)])
    return target


def pip(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


def medimg(site: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The installed command line, run outside the checkout, with no models folder named in the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("MEDIMG_MODELS_DIR", "MEDIMG_EMBEDDINGS_DIR")}
    return subprocess.run([sys.executable, "-m", "medimg_core", *args], capture_output=True, text=True, cwd=cwd,
                          env={**env, "PYTHONPATH": str(site)}, timeout=600)


def test_the_wheel_carries_the_shipped_files_and_nothing_kept_from_before(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for task in ("modality", "pneumonia", "brain-tumor"):
        assert {f"medimg_core/assets/models/{task}.pt", f"medimg_core/assets/models/{task}.json",
                f"medimg_core/assets/embeddings/{task}.npz"} <= names
    assert "medimg_core/assets/examples/README.md" in names and "medimg_core/assets/models/search/pneumonia.json" in names
    assert sum(n.startswith("medimg_core/assets/examples/modality/") for n in names) == 12
    assert not any("/previous/" in n for n in names)


def test_the_installed_package_predicts_a_shipped_example_outside_the_checkout(site, tmp_path):
    example = next((site / "medimg_core" / "assets" / "examples" / "modality" / "CXR").glob("*.png"))
    done = medimg(site, ["predict", "--task", "modality", str(example), "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout.splitlines()[0])
    assert row["label"] == "CXR" and row["in_distribution"]


def test_the_installed_package_reads_its_own_models_folder(site, tmp_path):
    done = medimg(site, ["info"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"models: {site / 'medimg_core' / 'assets' / 'models'} (the shipped models" in done.stdout
    assert "shipped model, validation accuracy" in done.stdout
