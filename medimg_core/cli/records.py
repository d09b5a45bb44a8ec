"""The command line's steps that change a card or the shipped set: `evaluate --record` and `ship`'s README check.

`main.py` parses and dispatches; here are the checks that keep records honest: a test section is written
only for data independent of the training (overlap.py), and a shipped model's card only in a copy
(runs.writable_model), which `medimg ship` then makes the shipped one (ship.py).
"""
from __future__ import annotations

import sys

from ..tasks import TASKS


def record_evaluation(args, clf, result: dict, overlap, data: str) -> None:
    """`evaluate --record`: the numbers into the card's test section, refused (nothing written) unless the data is
    independent of the training; a shipped model's card is changed only in a copy (see runs.writable_model)."""
    from ..models.checkpoint import card_path, record_test
    from ..training.runs import ship_hint, writable_model

    if not overlap.independent:
        raise ValueError(f"not recorded: {overlap.sentence()}. --record writes only numbers on images the model never "
                         "trained or validated on (an official test split, or images from elsewhere); nothing was changed")
    target = writable_model(clf.path, clf.spec.name, args.out, "test")
    record_test(target, result, data, args.command_line, overlap.sentence())
    where = f"; {ship_hint(target.parent)}" if target != clf.path else ""
    print(f"recorded the test numbers in {card_path(target)}{where}", file=sys.stderr if args.json else sys.stdout)


def readme_note() -> str:
    """Whether the checkout's README still states the shipped cards' numbers (its marked numbers table)."""
    from ..models.checkpoint import default_model_path, read_card
    from ..reports.readme_numbers import stale_rows
    from ..io.shipped import CHECKOUT_ASSETS

    readme = CHECKOUT_ASSETS.parent / "README.md"
    if not readme.is_file():
        return "README: none beside the shipped models to check"
    cards = {t: read_card(default_model_path(t)) for t in TASKS if default_model_path(t).is_file()}
    stale = stale_rows(readme.read_text(), cards)
    if not stale:
        return "README: its numbers table agrees with the cards"
    return ("README: update its numbers table (python -m medimg_core.reports.readme_numbers prints it from the cards):\n"
            + "\n".join(f"  {line}" for line in stale))
