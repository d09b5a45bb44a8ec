"""Model-card pages, written from `assets/models/*.json` (and `comparisons/`, `search/`) at build time.

`hooks.py` turns every card into one page and adds an index that sets them side by side, so the
site shows exactly the numbers the app's Models page reads. Every section of a card is shown: the
known ones as tables, any other as a plain list of its values. Not for: explaining the numbers (the
hand-written pages under `models/` do that) or computing anything new.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

EMPTY = "–"  # an empty table cell
PERCENT_KEYS = {"accuracy", "sensitivity", "specificity", "recall", "precision", "flagged", "right_not_flagged",
                "validation_flag_rate", "balanced_success", "f1"}
METRICS = (("n", "images"), ("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("auc", "ROC AUC"), ("ece", "ECE"),
           ("sensitivity", "sensitivity"), ("specificity", "specificity"), ("flagged", "flagged as unfamiliar"))
FOUR_DECIMALS = {"auc", "macro_f1", "ece", "ece_before", "ece_after"}  # metrics compared across models
SHOWN = {"task", "title", "classes", "input", "model", "training", "data", "validation", "crossval", "external",
         "earlier_estimates"}
HEADINGS = {"ood": "Not recognised: the rejection rule", "rejection": "Rejection values chosen by cross-validation",
            "operating_threshold": "Operating threshold", "test": "Test (recorded by evaluate --record)"}


def is_percent(key: str, value: Any) -> bool:
    """Whether a card value is a share best read as a percentage."""
    share = isinstance(value, float) and 0.0 <= value <= 1.0
    return share and (key in PERCENT_KEYS or key.endswith(("_flagged", "accuracy")))


def fmt(key: str, value: Any) -> str:
    """A card value as a table cell: shares as percentages, floats to 4 digits, lists joined, '–' for nothing."""
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if is_percent(key, value):
            return f"{value:.2%}"
        return f"{value:.4f}" if key in FOUR_DECIMALS else f"{value:.4g}"
    if isinstance(value, Mapping):
        if set(value) == {"mean", "std"}:
            if is_percent(key, value["mean"]):
                return f"{value['mean']:.1%} ± {value['std']:.1%}"
            return f"{value['mean']:.3f} ± {value['std']:.3f}"
        return "; ".join(f"{k}: {fmt(k, v)}" for k, v in value.items())
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(fmt(key, v) for v in value)
    return text(str(value))


def text(value: str) -> str:
    """A string made safe for a table cell: no column breaks, HTML or emphasis."""
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return " ".join(value.replace("*", "\\*").replace("_", "\\_").split())


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table (empty cells shown as '–')."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell if cell not in ("", None) else EMPTY for cell in row) + " |" for row in rows]
    return lines + [""]


def key_values(section: Mapping, skip: Sequence[str] = ()) -> list[str]:
    """A two-column table of a card section's values (nested sections flattened one level)."""
    rows = []
    for key, value in section.items():
        if key in skip:
            continue
        if isinstance(value, Mapping) and value and not set(value) == {"mean", "std"}:
            rows += [[f"{key}: {k}", fmt(k, v)] for k, v in value.items()]
        else:
            rows.append([key, fmt(key, value)])
    return table(["", "value"], rows) if rows else []


def model_label(card: Mapping) -> str:
    """'resnet18, width 32', 'compact-cnn, width 16, ensemble of 5': what the model is, from its card."""
    model = card.get("model", {}) or {}
    label = str(model.get("architecture", "?"))
    if model.get("width"):
        label += f", width {model['width']}"
    if (model.get("members") or 1) > 1:
        label += f", ensemble of {model['members']}"
    return label


def metrics_table(section: Mapping) -> list[str]:
    """The headline metrics of an evaluation (validation, test, pooled out-of-fold) as one row."""
    shown = [(name, fmt(key, section[key])) for key, name in METRICS if key in section]
    return table([name for name, _ in shown], [[value for _, value in shown]]) if shown else []


def per_class_table(section: Mapping) -> list[str]:
    """Precision, recall, F1 and support per class; then the confusion matrix (rows: true class)."""
    lines = []
    per_class = section.get("per_class") or {}
    if per_class:
        lines += table(["class", "precision", "recall", "F1", "images"],
                       [[name, fmt("precision", m.get("precision")), fmt("recall", m.get("recall")),
                         fmt("f1", m.get("f1")), fmt("support", m.get("support"))] for name, m in per_class.items()])
    matrix, classes = section.get("confusion_matrix"), section.get("classes") or list(per_class)
    if matrix and len(classes) == len(matrix):
        lines += ["Confusion matrix (rows: true class, columns: predicted class):", ""]
        lines += table(["true \\ predicted", *classes], [[name, *map(str, row)] for name, row in zip(classes, matrix)])
    return lines


def evaluation_section(title: str, section: Mapping) -> list[str]:
    """A heading, what was measured, the metrics and the per-class numbers of one evaluation."""
    lines = [f"## {title}", ""]
    if section.get("what"):
        lines += [text(section["what"]), ""]
    return lines + metrics_table(section) + per_class_table(section)


def crossval_section(cv: Mapping) -> list[str]:
    """Mean ± SD over the folds, the pooled out-of-fold numbers and the baseline on the same folds."""
    lines = ["## Cross-validation", ""]
    if cv.get("method"):
        lines += [text(cv["method"]), ""]
    folds, base = cv.get("own_validation") or {}, cv.get("baseline") or {}
    if folds:
        rows = [[key, fmt(key, value), fmt(key, base.get(key)) if key in base else EMPTY]
                for key, value in folds.items()]
        lines += table(["metric", "fold models, mean ± SD", f"baseline ({text(base.get('model', ''))})"], rows)
    if cv.get("own_pooled"):
        lines += evaluation_section("Out-of-fold, all images pooled", cv["own_pooled"])[1:]
    return lines


def external_section(external: Mapping) -> list[str]:
    """Datasets held out of training: the summary and the table per dataset."""
    lines = ["## Datasets held out of training", ""]
    if external.get("method"):
        lines += [text(external["method"]), ""]
    held = external.get("held_out") or {}
    summary = {k: v for k, v in held.items() if not isinstance(v, Mapping)}
    if summary:
        lines += table(list(summary), [[fmt(k, v) for k, v in summary.items()]])
    per_dataset = held.get("per_dataset") or {}
    if per_dataset:
        columns = [c for c in ("n", "in_kind", "foreign", "right_not_flagged", "in_kind_flagged", "foreign_flagged")
                   if any(c in row for row in per_dataset.values())]
        lines += table(["dataset", *columns],
                       [[text(name), *(fmt(c, row.get(c)) for c in columns)] for name, row in per_dataset.items()])
    folds = external.get("folds") or []
    if folds:
        lines += ["Held-out groups of datasets:", ""]
        lines += [f"{i}. {text(', '.join(group))}" for i, group in enumerate(folds, 1)] + [""]
    return lines


def training_section(training: Mapping) -> list[str]:
    """The command, where and how long it ran, its settings and its epochs."""
    lines = ["## Training", ""]
    if training.get("command"):
        lines += ["```text", training["command"], "```", ""]
    lines += key_values(training, skip=("command", "config", "history", "fold_histories"))
    config = training.get("config") or {}
    if config:
        lines += ["### Settings", ""] + key_values(config)
    history = training.get("history") or []
    if history:
        columns = list(dict.fromkeys(k for row in history for k in row))
        lines += ["### Epochs", ""]
        lines += table(columns, [[fmt(c, row.get(c)) for c in columns] for row in history])
    return lines


def data_section(data: Mapping) -> list[str]:
    """The dataset, its split and the images each source gave to training and validation."""
    lines = ["## Data", ""] + key_values(data, skip=("sources",))
    sources = data.get("sources") or {}
    if sources:
        lines += ["### Images per source", ""]
        lines += table(["source", "training", "validation"],
                       [[text(name), fmt("train", parts.get("train")), fmt("validation", parts.get("validation"))]
                        for name, parts in sources.items()])
    return lines


def search_section(record: Mapping) -> list[str]:
    """The hyperparameter search of a task: its command and its runs, best first as recorded."""
    lines = ["## Hyperparameter search", "", f"The task's search record, `assets/models/search/{record.get('task', '?')}.json`"
             " (it may predate the shipped model):", ""]
    if record.get("command"):
        lines += ["```text", record["command"], "```", ""]
    lines += [f"{text(record.get('strategy', ''))}; {fmt('images', record.get('images'))} images, "
              f"{fmt('validation', record.get('validation'))} for validation.", ""]
    runs = record.get("runs") or []
    lines += table(["run", "accuracy", "macro-F1", "AUC", "best epoch", "seconds"],
                   [[text(r.get("label", "")), fmt("accuracy", r.get("accuracy")), fmt("macro_f1", r.get("macro_f1")),
                     fmt("auc", r.get("auc")), fmt("best_epoch", r.get("best_epoch")), fmt("seconds", r.get("seconds"))]
                    for r in runs])
    return lines


def card_page(card: Mapping, stem: str, shipped: bool, search: Mapping | None = None) -> str:
    """The whole page of one model card."""
    status = ("the shipped model: weights in `assets/models/{0}.pt`, card in `assets/models/{0}.json`" if shipped else
              "a compared model: its card is in `assets/models/comparisons/{0}.json`; its weights are not shipped")
    model = card.get("model", {}) or {}
    lines = [f"# {stem}", "", f"**{text(card.get('title', stem))}: {text(model_label(card))}**", "",
             f"Task `{card.get('task', '?')}`; {status.format(stem)}. This page is generated from that card when",
             "the site is built ([all model cards](index.md)).", "",
             *table(["classes", "outputs", "input", "parameters", "size (MB)", "Grad-CAM layer"],
                    [[fmt("classes", card.get("classes")), fmt("outputs", model.get("outputs")),
                      " x ".join(map(str, (card.get("input") or {}).get("size", []))),
                      fmt("parameters", model.get("parameters")), fmt("size_mb", model.get("size_mb")),
                      text(str(model.get("cam_layer", "")))]])]
    if (card.get("input") or {}).get("preprocessing"):
        lines += [f"Preprocessing: {text(card['input']['preprocessing'])}.", ""]
    if card.get("validation"):
        lines += evaluation_section("Validation", card["validation"])
    if card.get("crossval"):
        lines += crossval_section(card["crossval"])
    if card.get("external"):
        lines += external_section(card["external"])
    if card.get("earlier_estimates"):
        rows = card["earlier_estimates"]
        lines += ["## How earlier estimates held up on the test split", "",
                  *table(list(rows[0]), [[text(str(r.get(k, ""))) for k in rows[0]] for r in rows])]
    for name, section in card.items():  # calibration, ood, rejection, baseline, speed, test, and any new section
        if name not in SHOWN and isinstance(section, Mapping):
            lines += [f"## {HEADINGS.get(name, name.replace('_', ' ').capitalize())}", "", *key_values(section)]
    if card.get("training"):
        lines += training_section(card["training"])
    if card.get("data"):
        lines += data_section(card["data"])
    if search:
        lines += search_section(search)
    return "\n".join(lines) + "\n"


def cards_index(cards: Sequence[tuple[str, Mapping, bool]]) -> str:
    """The index page: the cards of each task side by side, the shipped one first, with a link to each page."""
    lines = [
        "# Model cards", "",
        "Every model card in `assets/models/` (the shipped models) and `assets/models/comparisons/` (models",
        "compared with them, weights not shipped), rendered when the site is built. The numbers are the cards'",
        "own: each was measured on that model's validation split (out-of-fold for a cross-validated",
        "ensemble), so models of one task are comparable only where the card says they share a split. What",
        "the numbers mean, and the commands that produced them, are on the pages of each",
        "[shipped model](../index.md).", "",
    ]
    for task in dict.fromkeys(str(card.get("task", "?")) for _, card, _ in cards):
        rows = []
        for stem, card, shipped in sorted(cards, key=lambda c: not c[2]):
            if str(card.get("task", "?")) != task:
                continue
            v, speed = card.get("validation") or {}, card.get("speed") or {}
            name = f"[{text(stem)}]({stem}.md)" + (" (**shipped**)" if shipped else "")
            rows.append([name, text(model_label(card)), fmt("accuracy", v.get("accuracy")), fmt("auc", v.get("auc")),
                         fmt("macro_f1", v.get("macro_f1")), fmt("ece", v.get("ece")), fmt("n", v.get("n")),
                         fmt("parameters", (card.get("model") or {}).get("parameters")),
                         fmt("ms", speed.get("predict_ms_median")),
                         fmt("seconds", (card.get("training") or {}).get("seconds"))])
        lines += [f"## {task}", ""]
        lines += table(["card", "model", "accuracy", "AUC", "macro-F1", "ECE", "images", "parameters",
                        "CPU ms / image", "training s"], rows)
    return "\n".join(lines) + "\n"
