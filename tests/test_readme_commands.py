"""Every command the README and the documentation site show works as written after the quick start.

Each line of the ```bash blocks of README.md and of every page under docs/ is checked without running
it: its program is one that setup provides, `medimg` sub-commands and flags are accepted by the real
parser (`medimg_core.cli.main.get_args_parser`), `python -m` modules exist and take the flags given, `make`
targets exist, `mkdocs` sub-commands take the flags given. The cheap ones (`medimg info`, `--help`,
`medimg predict` on shipped files) are run as written, in the checkout, with the venv's bin folder
first on PATH as `source .venv/bin/activate` puts it. Not for: what the commands compute (their own
tests do that), or building the site (tests/test_docs_site.py).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from medimg_core.cli.main import COMMANDS as SUBCOMMANDS
from medimg_core.cli.main import get_args_parser
from medimg_core.tasks import TASKS, task_from_json

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOC_PAGES = sorted((ROOT / "docs").rglob("*.md"))  # the documentation site's hand-written pages
BIN = Path(sysconfig.get_path("scripts"))  # the venv's bin folder: `make test` runs .venv/bin/python
SHIPPED_TASKS = sorted(p.stem for p in (ROOT / "assets" / "models").glob("*.pt"))
EXAMPLES = ROOT / "assets" / "examples"
SETUP_HINT = "run `make setup` (it installs the project: pip install -e . --no-deps)"


def fenced_blocks(text: str, language: str) -> list[str]:
    """The contents of a Markdown page's ```<language> blocks."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def block_commands(block: str) -> list[str]:
    """One string per command line of a shell block (continuations joined, comments kept)."""
    lines = block.replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def bash_commands(text: str) -> list[str]:
    """Every command line of the ```bash blocks."""
    return [command for block in fenced_blocks(text, "bash") for command in block_commands(block)]


def inline_commands(text: str) -> list[str]:
    """The code spans in a page's prose that are commands (`medimg ...`, `python -m ...`)."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    spans = re.findall(r"`([^`\n]+)`", prose)
    return [s for s in spans if re.match(r"(\w+=\S+ )*(medimg|python -m) ", s)]


def words(command: str) -> tuple[dict[str, str], list[str]]:
    """(leading VAR=value assignments, the program and its arguments) of a shell command line."""
    tokens = shlex.split(command, comments=True)
    env = {}
    while tokens and re.fullmatch(r"[A-Za-z_]\w*=.*", tokens[0]):
        name, value = tokens.pop(0).split("=", 1)
        env[name] = value
    return env, tokens


def command_id(command: str) -> str:
    """The test id of a command: its words, without the comment."""
    return " ".join(words(command)[1])


def page_name(path: Path) -> str:
    """A page as the reader finds it: README.md, docs/guide/predict.md."""
    return str(path.relative_to(ROOT))


TEXT = README.read_text()
PAGES = {page_name(path): path.read_text() for path in [README, *DOC_PAGES]}
COMMANDS = bash_commands(TEXT)
PAGE_COMMANDS = [(page, command) for page, text in PAGES.items() for command in bash_commands(text)]


def page_command_id(page_command: tuple[str, str]) -> str:
    """The test id of a page's command: the page, then the command's assignments and words."""
    page, command = page_command
    env, _ = words(command)
    return f"{page}: " + " ".join([*(f"{k}={v}" for k, v in env.items()), command_id(command)])


def distinct(commands: list[str]) -> list[str]:
    """The commands without repeats (the same words shown on several pages, with other comments, run once)."""
    return list({command_id(c): c for c in commands}.values())


def run_env() -> dict[str, str]:
    """The environment of an activated venv: its bin folder first on PATH; the default models folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("MEDIMG_MODELS_DIR", "PYTHONPATH")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(BIN.parent)
    return env


def run(command: str | list[str], cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a command line through bash (as a reader would type it) or an argv list."""
    argv = ["bash", "-c", command] if isinstance(command, str) else command
    return subprocess.run(argv, cwd=cwd, env=run_env(), capture_output=True, text=True, timeout=timeout)


def medimg_script() -> Path:
    """The installed `medimg` console script; skips with the reason when the project is not installed."""
    try:
        importlib.metadata.distribution("medimg")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"the project is not installed in {sys.prefix}: {SETUP_HINT}")
    script = BIN / "medimg"
    assert script.is_file(), f"the medimg distribution is installed but {script} is missing: {SETUP_HINT}"
    return script


@pytest.fixture
def readme_tasks(tmp_path, monkeypatch):
    """The user tasks the README and the docs define (```json blocks with classes), registered as the CLI would."""
    blocks = [block for text in PAGES.values() for block in fenced_blocks(text, "json")]
    for i, block in enumerate(blocks):
        definition = json.loads(block)
        if isinstance(definition, dict) and "classes" in definition:
            path = tmp_path / f"task{i}.json"
            path.write_text(block)
            spec = task_from_json(path)
            monkeypatch.setitem(TASKS, spec.name, spec)


def test_quick_start_is_two_commands():
    first = fenced_blocks(TEXT, "bash")[0]
    assert [words(c)[1] for c in block_commands(first)] == [["make", "app"], ["make", "test"]]


def test_readme_shows_the_cli():
    shown = {tuple(words(c)[1][:2]) for c in COMMANDS}
    assert ("medimg", "info") in shown and ("medimg", "predict") in shown, COMMANDS


def test_docs_pages_show_commands():
    """The site's pages are found and carry commands, so the checks below cover them (not an empty list)."""
    assert DOC_PAGES, f"no documentation pages under {ROOT / 'docs'}"
    assert len(PAGE_COMMANDS) > len(COMMANDS), "no page under docs/ has a ```bash block"


@pytest.mark.parametrize("page_command", PAGE_COMMANDS, ids=page_command_id)
def test_command_is_accepted(page_command, readme_tasks):
    page, command = page_command
    env, argv = words(command)
    program, args = argv[0], argv[1:]
    if program == "make":
        assert shutil.which("make"), "make is not installed"
        targets = [a for a in args if "=" not in a]
        makefile = (ROOT / "Makefile").read_text()
        for target in targets:  # a rule, not just a file of that name (`make tests` would pass on tests/)
            assert re.search(rf"^{re.escape(target)}\s*:", makefile, flags=re.M), (
                f"{page}: `{command}`: no rule {target} in the Makefile")
        done = run(["make", "-n", *args, *(f"{k}={v}" for k, v in env.items())], timeout=60)
        assert done.returncode == 0, f"{page}: `{command}`: make -n says {done.stderr.strip()}"
    elif program == "medimg":
        parser = get_args_parser("medimg")
        try:
            parser.parse_args(args)
        except SystemExit as stop:
            if stop.code != 0:  # 0: --help, printed and accepted
                pytest.fail(f"{page}: `{command}` is refused by the medimg parser (exit {stop.code}); "
                            "see the usage above")
    elif program == "python":
        assert args[:1] == ["-m"], f"{page}: `{command}`: only `python -m <module>` lines are expected"
        module = args[1]
        assert importlib.util.find_spec(module) is not None, f"{page}: `{command}`: no module {module}"
        # --help after the README's flags: the module's own parser reads them (a bad choice is an
        # error) and stops before doing any work; its help must name every flag the README gives.
        done = run(["python", "-m", module, *args[2:], "--help"], timeout=120)
        assert done.returncode == 0, f"{page}: `{command} --help` failed:\n{done.stderr[-2000:]}"
        unknown = [a for a in args[2:] if a.startswith("-") and a.split("=")[0] not in done.stdout]
        assert not unknown, f"{page}: `{command}`: {module} has no option {', '.join(unknown)}"
    elif program == "mkdocs":
        script = BIN / "mkdocs"
        if not script.is_file():
            pytest.skip(f"mkdocs is not installed in {sys.prefix}: run `make setup-dev` (requirements-dev.txt)")
        done = run([str(script), *args, "--help"], timeout=60)
        assert done.returncode == 0, f"{page}: `{command} --help` failed:\n{done.stderr[-2000:]}"
        unknown = [a for a in args if a.startswith("-") and a.split("=")[0] not in done.stdout]
        assert not unknown, f"{page}: `{command}`: mkdocs {args[0]} has no option {', '.join(unknown)}"
    elif Path(program).name == "pip":  # an install line of the setup instructions: its files and options exist
        assert args[:1] == ["install"], f"{page}: `{command}`: only `pip install` lines are expected"
        files = [args[i + 1] for i, a in enumerate(args) if a == "-r"]
        assert all((ROOT / f).is_file() for f in files), f"{page}: `{command}`: no such requirements file"
        unknown = {a for a in args[1:] if a.startswith("-")} - {"-r", "-e", "--no-deps", "--index-url", "--quiet"}
        assert not unknown, f"{page}: `{command}`: options this test does not know: {', '.join(sorted(unknown))}"
    else:
        pytest.fail(f"{page}: `{command}` runs {program!r}, which the quick start does not install; "
                    "use medimg, python (the venv's), make or mkdocs, or teach this test about it")


def runs_as_written(command: str) -> bool:
    """Commands cheap enough to run: `medimg info`, any `--help`, `medimg predict` on files that exist."""
    _, argv = words(command)
    if argv[:1] != ["medimg"]:
        return False
    if argv[1:2] == ["info"] or "--help" in argv or "-h" in argv:
        return True
    if argv[1:2] == ["predict"]:
        try:
            args = get_args_parser("medimg").parse_args(argv[1:])
        except SystemExit:  # refused: test_command_is_accepted reports it
            return False
        return all((ROOT / f).exists() for f in args.files)
    return False


@pytest.mark.parametrize("command", distinct([c for _, c in PAGE_COMMANDS if runs_as_written(c)]), ids=command_id)
def test_command_runs_as_written(command):
    medimg_script()
    done = run(command)
    assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{done.stderr[-2000:]}"
    if words(command)[1][:2] == ["medimg", "info"]:
        for task in SHIPPED_TASKS:
            assert re.search(rf"^{re.escape(task)}: .*?\n  shipped model, validation accuracy", done.stdout,
                             flags=re.M | re.S), f"`medimg info` does not list the shipped {task} model:\n{done.stdout}"


@pytest.mark.parametrize("page", list(PAGES))
def test_inline_commands_name_real_commands(page):
    """Commands quoted in the prose (often with placeholders such as T or ...) name real sub-commands and modules."""
    wrong = []
    for span in inline_commands(PAGES[page]):
        _, argv = words(span)
        if argv[0] == "medimg" and argv[1] not in SUBCOMMANDS:
            wrong.append(f"{page}: `{span}`: no sub-command {argv[1]!r}")
        if argv[0] == "python" and importlib.util.find_spec(argv[2]) is None:
            wrong.append(f"{page}: `{span}`: no module {argv[2]!r}")
    assert not wrong, "\n".join(wrong)


def test_console_script_is_installed(tmp_path):
    """`make setup` installs the project editable: `medimg` is in the venv and finds this checkout's models."""
    script = medimg_script()
    entry = {e.name: e.value for e in importlib.metadata.entry_points(group="console_scripts")}
    assert entry.get("medimg") == "medimg_core.cli.main:main"
    done = run([str(script), "info"], cwd=tmp_path)  # from elsewhere: nothing found through the working folder
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"models: {ROOT / 'assets' / 'models'} "), (
        f"the installed medimg does not read this checkout's models (a non-editable install?):\n{done.stdout}")
    help_text = run([str(script), "--help"], cwd=tmp_path)
    assert help_text.returncode == 0 and help_text.stdout.startswith("usage: medimg "), help_text.stdout


def test_predict_on_a_shipped_example(tmp_path):
    images = sorted(p for p in EXAMPLES.rglob("*") if p.is_file() and not p.name.startswith(".")
                    and p.suffix.lower() not in (".json", ".md", ".txt", ".csv")) if EXAMPLES.is_dir() else []
    if not images:
        pytest.skip(f"no example images shipped under {EXAMPLES.relative_to(ROOT)}/ yet")
    image = images[0]
    folder = image.relative_to(EXAMPLES).parts[0]
    task = folder if folder in TASKS else "modality"
    done = run([str(medimg_script()), "predict", "--task", task, "--json", str(image)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 1 and rows[0]["error"] is None, done.stdout
