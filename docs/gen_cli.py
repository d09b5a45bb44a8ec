"""The command-line reference page, written from the real argparse parser at build time.

`hooks.py` calls `cli_reference(get_args_parser("medimg"))` on every `mkdocs build` / `mkdocs serve`,
so the page can never drift from the parser: nothing here is copied from the help by hand, and the
page is never committed. Not for: describing what the commands compute (the guide pages do that).
"""
from __future__ import annotations

import argparse
import re

USAGE_WIDTH = 100  # columns of the usage blocks, fixed so the page does not depend on the terminal
MARKDOWN_SPECIALS = re.compile(r"([\\*_\[\]|])")
EMPTY = "–"  # an empty table cell


def escape(text: str) -> str:
    """Plain help text made safe inside a Markdown table cell (no HTML, emphasis or column breaks)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return MARKDOWN_SPECIALS.sub(r"\\\1", " ".join(text.split()))


def sentence(text: str) -> str:
    """'fetch a dataset' -> 'Fetch a dataset.'"""
    return text[:1].upper() + text[1:] + ("." if text and not text.endswith(".") else "")


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of every sub-command, in the parser's order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def usage(parser: argparse.ArgumentParser) -> str:
    """The parser's usage lines at a fixed width, without the 'usage: ' prefix."""
    formatter = argparse.HelpFormatter(parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip()


def argument_name(action: argparse.Action) -> str:
    """`--task TASK`, `--json`, or the positional's metavar (`files ...`), as a code span."""
    if not action.option_strings:
        name = action.metavar or action.dest
        return f"`{name} ...`" if action.nargs in ("+", "*") else f"`{name}`"
    flags = ", ".join(action.option_strings)
    if action.nargs == 0:
        return f"`{flags}`"
    metavar = action.metavar or action.dest.upper()
    return f"`{flags} {metavar} ...`" if action.nargs in ("+", "*") else f"`{flags} {metavar}`"


def argument_notes(action: argparse.Action) -> str:
    """Required, choices and default of an argument, as one short Markdown line."""
    notes = []
    if action.required and action.option_strings:
        notes.append("**required**")
    if action.choices:
        notes.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    default = action.default
    if action.nargs != 0 and default not in (None, argparse.SUPPRESS, [], ""):
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        notes.append(f"default `{shown}`")
    return "; ".join(notes)


def arguments_table(parser: argparse.ArgumentParser) -> list[str]:
    """One Markdown table row per argument of a sub-command (help excluded)."""
    rows = ["| argument | what it does | accepted values |", "| --- | --- | --- |"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        help_text, notes = escape(action.help or ""), argument_notes(action)
        rows.append(f"| {argument_name(action)} | {help_text or EMPTY} | {notes or EMPTY} |")
    return rows if len(rows) > 2 else ["This command takes no arguments."]


def cli_reference(parser: argparse.ArgumentParser) -> str:
    """The whole reference page: an index of the sub-commands, then each one's usage and arguments."""
    commands = subcommands(parser)
    lines = [
        "# Command-line reference",
        "",
        "This page is generated from the argument parser (`get_args_parser()` of the CLI) every time",
        "the site is built, so it always matches the installed code. `medimg` and `python -m medimg_core`",
        "are the same command line; run `medimg COMMAND --help` for the same text in a terminal.",
        "",
        f"{escape(parser.description or '')}",
        "",
        "| command | what it does |",
        "| --- | --- |",
        *[f"| [`{name}`](#{name}) | {escape(help_text)} |" for name, help_text, _ in commands],
    ]
    for name, help_text, sub in commands:
        lines += ["", f"## {name}", "", sentence(escape(help_text)),
                  "", "```text", usage(sub), "```", "", *arguments_table(sub)]
    return "\n".join(lines) + "\n"
