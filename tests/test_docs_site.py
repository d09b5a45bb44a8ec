"""The documentation site builds with `mkdocs build --strict`, and its generated pages say what the code says.

The CLI reference (docs/gen_cli.py) is written from the real argparse parser and the model-card pages
(docs/gen_cards.py) from the real cards in assets/models/, both at build time (docs/hooks.py), so
neither is committed and neither can go stale. The README stays short and points at the site.
Not for: the commands shown on the pages (tests/test_readme_commands.py checks those), or whether the
numbers in the README's marked table match the cards (checked against the cards by the numbers test).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from medimg_core.cli.main import get_args_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
SHIPPED_CARDS = sorted((ROOT / "assets" / "models").glob("*.json"))
COMPARED_CARDS = sorted((ROOT / "assets" / "models" / "comparisons").glob("*.json"))


def docs_module(name: str) -> ModuleType:
    """One of the site's generator modules (docs/<name>.py), loaded from its file as mkdocs loads the hook."""
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_cli = docs_module("gen_cli")
gen_cards = docs_module("gen_cards")


def subcommand_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """name -> parser of every sub-command of the real CLI."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# --- the README ---------------------------------------------------------------------------------


def test_readme_is_at_most_200_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move the detail to a page under docs/"


def test_readme_has_a_marked_numbers_table_with_every_shipped_model():
    text = README.read_text()
    start, end = text.find("<!-- numbers:start -->"), text.find("<!-- numbers:end -->")
    assert 0 <= start < end, "README.md has no table between <!-- numbers:start --> and <!-- numbers:end -->"
    table = text[start:end]
    missing = [p.stem for p in SHIPPED_CARDS if f"| {p.stem} |" not in table]
    assert not missing, f"the README's numbers table has no row for the shipped model(s) {missing}"


def test_readme_screenshot_is_a_small_png_in_the_docs():
    image = DOCS / "images" / "predict-page.png"
    assert "](docs/images/predict-page.png)" in README.read_text()
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.stat().st_size < 300_000, f"{image} is {image.stat().st_size:,} bytes; keep README images small"


# --- the CLI reference, from the parser ---------------------------------------------------------


def test_cli_reference_has_a_section_for_every_subcommand():
    page = gen_cli.cli_reference(get_args_parser("medimg"))
    for name in subcommand_parsers(get_args_parser("medimg")):
        assert f"\n## {name}\n" in page, f"the CLI reference has no section for `medimg {name}`"


def test_cli_reference_names_every_option_of_every_subcommand():
    page = gen_cli.cli_reference(get_args_parser("medimg"))
    for name, sub in subcommand_parsers(get_args_parser("medimg")).items():
        section = page.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        for action in sub._actions:
            for flag in [] if isinstance(action, argparse._HelpAction) else action.option_strings:
                assert flag in section, f"the CLI reference of `medimg {name}` does not name {flag}"


def test_cli_reference_shows_help_text_safely_in_markdown():
    parser = argparse.ArgumentParser(prog="tool")
    sub = parser.add_subparsers(dest="command").add_parser("run", help="run it")
    sub.add_argument("--out", help="default: runs/<task>/<date> | drawn n**power times", default="runs")
    page = gen_cli.cli_reference(parser)
    assert "runs/&lt;task&gt;/&lt;date&gt; \\| drawn n\\*\\*power times" in page
    assert "default `runs`" in page


def test_cli_reference_shows_a_dash_in_empty_cells():
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_subparsers(dest="command").add_parser("run").add_argument("--fast", action="store_true")
    assert "| `--fast` | – | – |" in gen_cli.cli_reference(parser)


# --- the model cards, from assets/models --------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED_CARDS + COMPARED_CARDS, ids=lambda p: p.stem)
def test_card_page_shows_the_cards_validation_numbers(path):
    card = json.loads(path.read_text())
    page = gen_cards.card_page(card, path.stem, shipped=path.parent.name == "models")
    validation = card.get("validation") or {}
    for key in ("accuracy", "macro_f1", "auc"):
        if isinstance(validation.get(key), float):
            assert gen_cards.fmt(key, validation[key]) in page, f"{path.name}: the page does not show validation {key}"
    if (card.get("training") or {}).get("command"):
        assert card["training"]["command"] in page


def test_card_page_shows_a_section_it_does_not_know():
    card = {"task": "demo", "title": "Demo", "validation": {"n": 10, "accuracy": 0.9},
            "audit": {"images": 1200, "flagged": 0.125, "note": "a <new> section"}}
    page = gen_cards.card_page(card, "demo", shipped=True)
    assert "## Audit" in page
    assert "| images | 1,200 |" in page and "| flagged | 12.50% |" in page and "a &lt;new&gt; section" in page


def test_cards_index_lists_every_card_with_a_link():
    cards = [(p.stem, json.loads(p.read_text()), p.parent.name == "models") for p in SHIPPED_CARDS + COMPARED_CARDS]
    page = gen_cards.cards_index(cards)
    for stem, _, _ in cards:
        assert f"]({stem}.md)" in page, f"the cards index does not link {stem}"


def test_missing_card_values_show_a_dash():
    assert gen_cards.fmt("auc", None) == "–"
    assert gen_cards.table(["a", "b"], [["1", ""]])[2] == "| 1 | – |"


def test_generated_pages_are_not_committed():
    """The CLI reference and the card pages exist only inside a build, so they cannot go stale on disk."""
    assert not (DOCS / "reference").exists(), "docs/reference/ is written at build time; do not keep a copy"
    assert not (DOCS / "models" / "cards").exists(), "docs/models/cards/ is written at build time; do not keep a copy"


# --- the whole site -----------------------------------------------------------------------------


def test_mkdocs_build_strict(tmp_path):
    """`mkdocs build --strict`: every page renders, every link and anchor resolves, the hooks run."""
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip(f"mkdocs and mkdocs-material are not installed in {sys.prefix}: "
                    "run `make setup-dev` (requirements-dev.txt)")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "WARNING" not in done.stderr, done.stderr[-3000:]
    reference = (site / "reference" / "cli" / "index.html").read_text()
    for name in subcommand_parsers(get_args_parser("medimg")):
        assert f'id="{name}"' in reference, f"the built CLI reference has no section {name}"
    for path in SHIPPED_CARDS + COMPARED_CARDS:
        assert (site / "models" / "cards" / path.stem / "index.html").is_file(), f"no built page for {path.name}"
