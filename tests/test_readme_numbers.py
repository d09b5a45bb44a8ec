"""The README's numbers are the model cards' numbers: its marked table is read back and compared with the cards.

The README keeps one table between `<!-- numbers:start -->` and `<!-- numbers:end -->` with the columns
`| model | number | value |`; `python -m medimg_core.reports.readme_numbers` prints it from the shipped cards.
"""
from __future__ import annotations

import json
from pathlib import Path

from medimg_core.models.checkpoint import ASSETS_DIR
from medimg_core.reports.readme_numbers import END, START, card_numbers, numbers_table, readme_rows, stale_rows
from medimg_core.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
CARDS = {t: json.loads((ASSETS_DIR / f"{t}.json").read_text()) for t in TASKS if (ASSETS_DIR / f"{t}.json").is_file()}


def test_the_table_written_from_the_cards_reads_back_as_the_cards_numbers():
    text = "# Title\n\nSome prose with 99.99% in it.\n\n" + numbers_table(CARDS) + "\n\nMore prose.\n"
    rows = readme_rows(text)
    assert {task for task, _, _ in rows} == set(CARDS)
    assert all(card_numbers(CARDS[task])[name] == value for task, name, value in rows)
    assert stale_rows(text, CARDS) == []


def test_a_number_that_drifted_is_named_with_the_cards_value():
    card = CARDS["modality"]
    right = card_numbers(card)["Validation accuracy"]
    text = f"{START}\n| model | number | value |\n| --- | --- | --- |\n| `modality` | Validation accuracy | **76.67%** |\n{END}"
    assert stale_rows(text, CARDS) == [f"the README says modality Validation accuracy is 76.67%; its card says {right}"]


def test_rows_of_unknown_models_or_numbers_are_named():
    text = f"{START}\n| model | number | value |\n| --- | --- | --- |\n| covid | Validation accuracy | 90% |\n" \
           f"| modality | Speed | fast |\n{END}"
    problems = stale_rows(text, CARDS)
    assert "'covid', which has no shipped model card" in problems[0] and "'Speed' of modality" in problems[1]


def test_the_readme_states_each_shipped_models_numbers_as_its_card_does():
    text = (ROOT / "README.md").read_text()
    rows = readme_rows(text)
    assert rows, (f"README.md has no numbers table between {START} and {END}; paste the one that "
                  "`python -m medimg_core.reports.readme_numbers` prints (any subset of its rows)")
    assert {task for task, _, _ in rows} == set(CARDS), "every shipped model needs at least one row"
    assert stale_rows(text, CARDS) == []
