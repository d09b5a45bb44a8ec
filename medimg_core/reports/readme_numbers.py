"""The README's numbers table, written from and checked against the model cards (one source for every number).

The README states each shipped model's headline numbers in one marked table, which this module renders
(`numbers_table`) and reads back (`readme_rows`); `stale_rows` lists every row that differs from the cards,
so a test and `medimg ship` catch numbers that drifted. The format (keep the markers, the three columns and
the number names as `card_numbers` spells them; any subset of rows, in any order)::

    <!-- numbers:start -->
    | model | number | value |
    | --- | --- | --- |
    | modality | Validation accuracy | 99.89% |
    | modality | CPU predict, median | 1.33 ms |
    <!-- numbers:end -->

Text only (no torch), like story.py, whose `headline_numbers` and `training_hardware` give the values.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from .story import headline_numbers, training_hardware

START, END = "<!-- numbers:start -->", "<!-- numbers:end -->"
SPEED = "CPU predict, median"
TRAINING = "Training"


def card_numbers(card: Mapping) -> dict[str, str]:
    """Every number the README may quote of a model, by name, as display text read from its card."""
    numbers = dict(headline_numbers(card))
    speed = card.get("speed") or {}
    if isinstance(speed.get("predict_ms_median"), (int, float)):
        numbers[SPEED] = f"{speed['predict_ms_median']:.2f} ms"
    training = card.get("training") or {}
    if isinstance(training.get("seconds"), (int, float)):
        hardware = training_hardware(card)
        numbers[TRAINING] = f"{training['seconds']:,.0f} s" + (f" on {hardware}" if hardware else "")
    return numbers


def numbers_table(cards: Mapping[str, Mapping]) -> str:
    """The README's marked table of every card's numbers (by task), ready to paste."""
    rows = [START, "| model | number | value |", "| --- | --- | --- |"]
    for task, card in cards.items():
        rows += [f"| {task} | {name} | {value} |" for name, value in card_numbers(card).items()]
    return "\n".join(rows + [END])


def readme_rows(text: str) -> list[tuple[str, str, str]]:
    """(model, number, value) of each row of the README's marked table; [] when the README has no such table."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return []
    rows = []
    for line in text[start + len(START):end].splitlines():
        cells = [_plain(c) for c in line.strip().strip("|").split("|")] if line.strip().startswith("|") else []
        if len(cells) != 3 or set(cells[0]) <= set("-: ") or cells[:2] == ["model", "number"]:
            continue
        rows.append((cells[0], cells[1], cells[2]))
    return rows


def stale_rows(text: str, cards: Mapping[str, Mapping]) -> list[str]:
    """One sentence per README row that is not what the cards say (an unknown model or number, or another value)."""
    problems = []
    for task, name, value in readme_rows(text):
        if task not in cards:
            problems.append(f"the README quotes {name} of {task!r}, which has no shipped model card")
            continue
        numbers = card_numbers(cards[task])
        if name not in numbers:
            problems.append(f"the README quotes {name!r} of {task}, a number its card does not give "
                            f"(it gives: {', '.join(numbers)})")
        elif numbers[name] != value:
            problems.append(f"the README says {task} {name} is {value}; its card says {numbers[name]}")
    return problems


def _plain(cell: str) -> str:
    """A table cell without Markdown emphasis or code marks."""
    return re.sub(r"[*`]", "", cell).strip()


def main() -> int:
    """`python -m medimg_core.reports.readme_numbers`: print the numbers table of the shipped models, ready for the README."""
    from ..models.checkpoint import default_model_path, read_card
    from ..tasks import TASKS

    print(numbers_table({t: read_card(default_model_path(t)) for t in TASKS if default_model_path(t).is_file()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
