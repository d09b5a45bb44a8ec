"""`medimg ship RUN`: make a run's model (or search record) the shipped one of its task, keeping the previous.

Every other command writes to run folders (runs.py); shipping is the one explicit step that changes the
shipped files. It checks that the file is a model of a known task with its card, moves the shipped model,
card and embedding map into `<models>/previous/` (named `<task>-<date of that model>`), copies the new ones
in, carries the run's embedding map along when one was made of this very model, and reports the headline
numbers before and after. The deck, the home and the Models pages read the cards, so they follow at once.
Not here: computing an embedding map (the CLI's `ship --embed` runs `embed`).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..models.checkpoint import card_path, load_checkpoint, models_dir, read_card
from ..reports.readme_numbers import card_numbers
from ..tasks import TASKS

SEARCH_RECORD = "search.json"  # a search run's record in its run folder


@dataclass
class ShipReport:
    """What `ship` changed: the shipped file, the previous one kept (None: there was none), the numbers before and
    after (name, old, new; old None for a new number), and a sentence on the embedding map."""

    task: str
    shipped: Path
    previous: Path | None
    changes: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    embedding: str = ""

    def lines(self) -> list[str]:
        """The report as lines for the command line."""
        kept = f"; the previous one is kept as {self.previous}" if self.previous else " (there was none before)"
        out = [f"shipped {self.shipped} as the {self.task} model{kept}"]
        for name, old, new in self.changes:
            out.append(f"  {name}: {new} (unchanged)" if old == new else f"  {name}: {old or '-'} -> {new or '-'}")
        return out + ([f"  {self.embedding}"] if self.embedding else [])


def find_shippable(run: Path) -> Path:
    """The file a run folder ships: its `<task>.pt` of a known task, or its search record; a .pt or .json as given."""
    run = Path(run)
    if not run.exists():
        raise FileNotFoundError(f"there is no run at {run}")
    if run.is_file():
        return run
    models = [run / f"{task}.pt" for task in TASKS if (run / f"{task}.pt").is_file()]
    if len(models) == 1:
        return models[0]
    if not models and (run / SEARCH_RECORD).is_file():
        return run / SEARCH_RECORD
    found = ", ".join(p.name for p in models) or "none"
    raise ValueError(f"{run} should hold one model <task>.pt of a known task ({', '.join(TASKS)}) or a {SEARCH_RECORD}; "
                     f"it holds: {found}")


def check_model(path: Path) -> tuple[str, dict]:
    """(task, card) of a model that can be shipped; ValueError with a sentence for anything else."""
    if path.suffix != ".pt":
        raise ValueError(f"{path} is not a model file (.pt) or a search record: give a run folder or its <task>.pt")
    _, spec, _ = load_checkpoint(path)  # a ValueError that names the file when it is no medimg checkpoint
    if spec.name not in TASKS:
        raise ValueError(f"{path} is a model of task {spec.name!r}, which is not a known task ({', '.join(TASKS)})")
    card = read_card(path)
    if not card:
        raise ValueError(f"{path} has no model card ({card_path(path).name}) beside it; a shipped model needs one")
    if card.get("task", spec.name) != spec.name:
        raise ValueError(f"{card_path(path)} is the card of task {card['task']!r}, but {path} is a {spec.name} model")
    return spec.name, card


def ship(run: Path, models: Path | None = None) -> ShipReport:
    """Make a run's model (or search record) the shipped one; returns what changed (see ShipReport)."""
    path = find_shippable(run)
    models = Path(models or models_dir())
    if path.suffix == ".json":  # a model's card stands for its model; any other JSON must be a search record
        if not path.with_suffix(".pt").is_file():
            return ship_search(path, models)
        path = path.with_suffix(".pt")
    task, card = check_model(path)
    dest = models / f"{task}.pt"
    if dest.is_file() and dest.resolve() == path.resolve():
        raise ValueError(f"{path} is already the shipped {task} model")
    old = read_card(dest)
    shipped_map = embedding_path(task, models)
    stale = [shipped_map] if shipped_map is not None and not map_of(shipped_map, path) else []
    previous = keep_previous(dest, old, [card_path(dest)], stale) if dest.is_file() else None
    install(path, dest)
    install(card_path(path), card_path(dest))
    numbers_old, numbers_new = card_numbers(old), card_numbers(card)
    changes = [(k, numbers_old.get(k), numbers_new.get(k)) for k in dict.fromkeys([*numbers_new, *numbers_old])]
    return ShipReport(task, dest, previous, changes, carry_embedding(path, task, shipped_map))


def keep_previous(dest: Path, card: dict, copy: Sequence[Path] = (), move: Sequence[Path] = ()) -> Path:
    """Keep a shipped file in <models>/previous/<stem>-<its date>, with copies of `copy` (its card) and `move`
    moved there (its embedding map, which no longer fits); returns the kept file's path."""
    folder = dest.parent / "previous"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = model_date(dest, card)
    name = f"{dest.stem}-{stamp}"
    n = 1
    while any(p.stem == name for p in folder.iterdir()):
        n += 1
        name = f"{dest.stem}-{stamp}-{n}"
    kept = folder / f"{name}{dest.suffix}"
    shutil.copy2(dest, kept)
    for extra in copy:
        if extra.is_file():
            shutil.copy2(extra, folder / f"{name}{extra.suffix}")
    for extra in move:
        if extra.is_file():
            shutil.move(extra, folder / f"{name}{extra.suffix}")
    return kept


def model_date(path: Path, card: dict) -> str:
    """When a shipped file was made, as YYYYMMDD-HHMMSS: its card's creation time, else the file's."""
    created = (card.get("training") or {}).get("created") or card.get("created") or ""
    try:
        return time.strftime("%Y%m%d-%H%M%S", time.strptime(created[:19], "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        return time.strftime("%Y%m%d-%H%M%S", time.localtime(path.stat().st_mtime))


def install(src: Path, dest: Path) -> None:
    """Copy a file into place atomically (a reader never sees half of it)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copy2(src, tmp)
    os.replace(tmp, dest)


def embedding_path(task: str, models: Path) -> Path | None:
    """The shipped embedding map that goes with a models folder: the app's (embed.shipped_embedding_path) when the
    folder is the shipped one or $MEDIMG_EMBEDDINGS_DIR names the maps' folder; None for another models folder."""
    from ..models.checkpoint import ASSETS_DIR
    from ..reports.embed import shipped_embedding_path

    if os.environ.get("MEDIMG_EMBEDDINGS_DIR") or Path(models).resolve() == ASSETS_DIR.resolve():
        return shipped_embedding_path(task)
    return None


def carry_embedding(model: Path, task: str, shipped_map: Path | None) -> str:
    """Ship the run's embedding map when it was made of this model (`<run>/<task>.npz`), else say how to make one."""
    if shipped_map is None:
        return "embedding map: this models folder has no maps folder beside it ($MEDIMG_EMBEDDINGS_DIR); none changed"
    if map_of(shipped_map, model):
        return f"embedding map: {shipped_map} is of this very model and stays"
    made = model.with_suffix(".npz")
    if map_of(made, model):
        install(made, shipped_map)
        return f"embedding map: shipped {made} (made of this model) as {shipped_map}"
    return (f"embedding map: none of this model is shipped yet (the explorer computes one when the data is there); "
            f"make it with: medimg embed --task {task} --out {shipped_map}  (or ship with --embed)")


def map_of(npz: Path, model: Path) -> bool:
    """Whether an embedding map file exists and was made of this model file (same bytes, embed.file_fingerprint)."""
    from ..reports.embed import file_fingerprint, read_info

    return npz.is_file() and read_info(npz).get("model_fingerprint") == file_fingerprint(model)


def ship_search(path: Path, models: Path) -> ShipReport:
    """Make a search record the one the Models page shows for its task (the previous one kept in previous/)."""
    try:
        record = json.loads(path.read_text())
        task, runs = record["task"], record["runs"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a search record of medimg search ({type(err).__name__}: {err})") from None
    if task not in TASKS:
        raise ValueError(f"{path} is a search record of task {task!r}, which is not a known task ({', '.join(TASKS)})")
    dest = models / "search" / f"{task}.json"
    old = json.loads(dest.read_text()) if dest.is_file() else {}
    previous = keep_previous(dest, old) if dest.is_file() else None
    install(path, dest)

    def best(rec: dict) -> str | None:
        top = (rec.get("runs") or [None])[0]
        return f"{top['label']}, accuracy {top['accuracy']:.2%}" if top else None

    changes = [("runs", str(len(old.get("runs", []))) if old else None, str(len(runs))), ("best", best(old), best(record))]
    return ShipReport(task, dest, previous, changes)
