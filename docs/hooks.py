"""MkDocs hooks (`hooks:` in mkdocs.yml): the pages written from the code and the model cards at build time.

- `reference/cli.md` from the CLI's argparse parser (`gen_cli.py`);
- `models/cards/index.md` and one page per card from `assets/models/*.json`, `comparisons/*.json` and the
  search records in `search/` (`gen_cards.py`), listed in the navigation after the cards' index.

These pages exist only inside the build (never on disk, never committed), so they cannot go stale.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

from gen_cards import card_page, cards_index
from gen_cli import cli_reference

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the checkout's packages, also when the project is not installed
    sys.path.insert(0, str(ROOT))
MODELS = ROOT / "assets" / "models"
CARDS_DIR = "models/cards"


def model_cards() -> list[tuple[str, dict, bool]]:
    """(file stem, card, shipped?) of every card: the shipped ones, then the compared ones."""
    shipped = [(p.stem, json.loads(p.read_text()), True) for p in sorted(MODELS.glob("*.json"))]
    compared = [(p.stem, json.loads(p.read_text()), False) for p in sorted((MODELS / "comparisons").glob("*.json"))]
    return shipped + compared


def search_record(task: str) -> dict | None:
    """The hyperparameter search record of a task, if one was written."""
    path = MODELS / "search" / f"{task}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def generated_pages() -> dict[str, str]:
    """Path in the site -> Markdown of every generated page."""
    from medimg_core.cli.main import get_args_parser

    cards = model_cards()
    pages = {"reference/cli.md": cli_reference(get_args_parser("medimg")),
             f"{CARDS_DIR}/index.md": cards_index(cards)}
    for stem, card, shipped in cards:
        pages[f"{CARDS_DIR}/{stem}.md"] = card_page(card, stem, shipped, search_record(stem) if shipped else None)
    return pages


def on_files(files: Files, config) -> Files:
    """Add the generated pages to the site's files."""
    for path, markdown in generated_pages().items():
        files.append(File.generated(config, path, content=markdown))
    return files


def on_config(config):
    """List every card page in the navigation, right after the cards' index page (wherever mkdocs.yml puts it)."""
    index = f"{CARDS_DIR}/index.md"
    cards = [f"{CARDS_DIR}/{stem}.md" for stem, _, _ in model_cards()]
    if config.nav and not insert_after(config.nav, index, cards):
        raise PluginError(f"mkdocs.yml: the nav has no entry {index!r}, the place where the model cards are listed")
    return config


def insert_after(items: list, target: str, paths: list[str]) -> bool:
    """Insert `paths` after the nav entry of `target` in a nested nav list (in place); whether it was found."""
    for i, item in enumerate(items):
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if value == target:
            items[i + 1:i + 1] = paths
            return True
        if isinstance(value, list) and insert_after(value, target, paths):
            return True
    return False
