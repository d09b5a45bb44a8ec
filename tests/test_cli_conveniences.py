"""What people expect of a command line: --version, defaults in --help, output formats, a summary, plain text."""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medimg_core import read_image
from medimg_core.cli.main import main
from medimg_core.cli.parser import get_args_parser
from medimg_core.io.examples import EXAMPLES_DIR
from medimg_core.inference.predict import load_classifier
from tests.cli_runs import default_run

ROOT = Path(__file__).resolve().parents[1]
CXR = EXAMPLES_DIR / "modality" / "CXR"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Every sub-command's parser, by name."""
    action = next(a for a in get_args_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.split()[-1][0].isdigit()


@pytest.mark.parametrize("command", list(subcommands()))
def test_every_option_has_help_and_its_help_shows_its_default(command):
    parser = subcommands()[command]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{command} {action.option_strings or action.dest} has no help text"
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, True, [], argparse.SUPPRESS):
            shown = " ".join(map(str, action.default)) if isinstance(action.default, list) else action.default
            assert "default" in action.help or f"(default: {shown})" in text, action.option_strings


def test_train_help_states_the_defaults_people_ask_for():
    text = " ".join(subcommands()["train"].format_help().split())
    for option, default in (("--epochs", "8"), ("--lr", "0.003"), ("--batch-size", "128"), ("--dropout", "0.2"),
                            ("--seed", "0")):
        assert option in text and f"(default: {default})" in text


def test_predict_keeps_a_line_per_file_and_says_its_summary_on_stderr(capsys):
    assert main(["predict", "--task", "modality", str(CXR)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.strip().splitlines()) == 2
    assert captured.err.strip().splitlines()[-1].startswith("summary: 2 files: 2 labelled (CXR 2)")


def test_predict_csv_has_a_header_a_row_per_file_and_the_summary_on_stderr(capsys):
    assert main(["predict", "--task", "modality", str(CXR), str(CXR / "missing.png"), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert len(rows) == 3 and {"file", "label", "closest", "error", "p_CXR"} <= set(rows[0])
    assert rows[-1]["error"] and not rows[-1]["label"] and float(rows[0]["p_CXR"]) > 0.5
    assert "summary: 3 files: " in captured.err and "1 unreadable" in captured.err


def test_json_is_the_same_as_format_json(capsys):
    assert main(["predict", "--task", "modality", str(CXR), "--json"]) == 0
    alias = capsys.readouterr().out
    assert main(["predict", "--task", "modality", str(CXR), "--format", "json"]) == 0
    assert capsys.readouterr().out == alias and len([json.loads(line) for line in alias.splitlines()]) == 2


def test_predict_tta_gives_the_classifiers_mirror_averaged_probabilities(capsys):
    example = next(CXR.glob("*.png"))
    assert main(["predict", "--task", "modality", str(example), "--tta", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    expected = load_classifier("modality").predict(read_image(example), tta=True).probabilities
    assert row["probabilities"] == pytest.approx(expected)


def test_evaluate_prints_text_and_no_json_unless_asked(tmp_path_factory, capsys):
    run = default_run(tmp_path_factory)
    assert main(["evaluate", "--task", "modality", "--data", str(run.data), "--split", "test",
                 "--model", str(run.run / "modality.pt")]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and not any(line.lstrip().startswith("{") for line in out.splitlines())


def test_info_names_the_data_and_models_folders(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MEDIMG_DATA_DIR", str(tmp_path))
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"data: {tmp_path} (from $MEDIMG_DATA_DIR" in out and "the tests read ../shared/data" in out
    assert out.startswith("models: ")


def test_a_malformed_task_file_shows_one_clear_line(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    done = subprocess.run([sys.executable, "-m", "medimg_core", "info"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "MEDIMG_TASKS_DIR": str(tmp_path)}, timeout=300)
    assert done.returncode == 0
    assert done.stderr.strip().splitlines() == [
        f"medimg: skipped a task definition: {tmp_path / 'broken.json'} is not a valid task definition "
        "(JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"]


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_bf16_training_is_warned_about_only_where_the_cpu_emulates_it(precision, capsys):
    import torch

    from medimg_core.cli.main import train_config
    from medimg_core.training.fit import bf16_is_emulated

    args = get_args_parser().parse_args(["train", "--task", "modality", "--device", "cpu", "--precision", precision])
    train_config(args)
    warned = "has no bf16 instructions" in capsys.readouterr().err
    assert warned == (precision == "bf16" and bf16_is_emulated(torch.device("cpu")))
