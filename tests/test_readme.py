"""The README's two Quick-start commands are real: CI runs the test one verbatim."""

from __future__ import annotations

import re

from tests.conftest import PROJECT


def quick_start_commands() -> list[str]:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [line for b in blocks for line in b.splitlines() if line.strip() and not line.startswith("#")]


def test_quick_start_has_exactly_two_commands():
    cmds = quick_start_commands()
    assert len(cmds) == 2, cmds
    assert cmds[0].endswith("govfacts run") and "pytest" in cmds[1]
    for c in cmds:
        assert "-c requirements.lock" in c and "python3.11 -m venv .venv" in c


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (PROJECT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert quick_start_commands()[1] in ci


def test_every_cli_command_has_help():
    from typer.testing import CliRunner

    from govfacts.cli import app

    runner = CliRunner()
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert (command.callback.__doc__ or "").strip(), f"{name} has no docstring"


# -- the README's command table against the CLI itself (typer's click commands) -------------------------------------

_CELL = re.compile(r"(?<!\\)\|")  # a table cell border (`\|` inside a cell is a literal bar)
_OPTION = re.compile(r"(?<![\w-])--?[a-z][a-z0-9-]*")  # --max-rows, -o (not the "-" of "sql -", not a word's hyphen)
_GOVFACTS = re.compile(r"govfacts ([a-z]+)((?:[^`\n&;]|\\\|)*)")  # `govfacts CMD ...` up to the end of the code or a pipe to another command


def cli_options() -> dict[str, set[str]]:
    """command -> every option it takes (long and short names, --x and --no-x), as `govfacts CMD --help` lists them."""
    import typer

    from govfacts.cli import app

    group = typer.main.get_command(app)
    return {name: {o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")} | {"--help"}
            for name, cmd in group.commands.items()}


def readme_text() -> str:
    return (PROJECT / "README.md").read_text(encoding="utf-8")


def command_rows() -> dict[str, str]:
    """command -> its row of the README's command table (both cells)."""
    section = readme_text().split("## Commands", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in _CELL.split(line)[1:-1]]
        m = re.match(r"`govfacts ([a-z]+)", cells[0]) if cells else None
        if m:
            rows[m.group(1)] = " ".join(cells)
    return rows


def common_options() -> str:
    """The paragraph under the table naming the options several commands share."""
    section = readme_text().split("## Commands", 1)[1].split("\n#", 1)[0]
    return section.split("**Common options.**", 1)[1].split("\n\n", 1)[0]


def options_in(text: str) -> set[str]:
    return {o for code in re.findall(r"`([^`]*)`", text) for o in _OPTION.findall(code)}


def test_every_command_of_the_cli_has_a_row_in_the_readme_and_every_row_a_command():
    commands, rows = set(cli_options()), set(command_rows())
    assert commands - rows == set(), f"commands missing from the README's command table: {sorted(commands - rows)}"
    assert rows - commands == set(), f"rows for commands the CLI does not have: {sorted(rows - commands)}"


def test_every_option_of_every_command_is_in_the_readme():
    """Each option appears in its command's row, or in the common-options paragraph (which names the commands)."""
    rows, common = command_rows(), options_in(common_options())
    missing = {name: sorted(o for o in opts if o.startswith("--") and o != "--help" and o not in options_in(rows.get(name, ""))
                            and o not in common)
               for name, opts in cli_options().items()}
    missing = {k: v for k, v in missing.items() if v}
    assert missing == {}, f"options the README does not document: {missing}"


def test_no_option_the_readme_gives_a_command_is_unknown_to_it():
    """Options in a command's row, in the common paragraph, and in every `govfacts CMD ...` written anywhere in the README."""
    known = cli_options()
    every = set().union(*known.values()) | {"--version"}
    wrong = {name: sorted(options_in(row) - known[name]) for name, row in command_rows().items() if name in known}
    wrong["(common options)"] = sorted(options_in(common_options()) - every)
    for cmd, rest in _GOVFACTS.findall(readme_text()):
        if cmd in known:
            unknown = set(_OPTION.findall(rest)) - known[cmd]
            if unknown:
                wrong.setdefault(f"govfacts {cmd} (in the text)", []).extend(sorted(unknown))
    wrong = {k: v for k, v in wrong.items() if v}
    assert wrong == {}, f"options the README gives that the CLI does not take: {wrong}"
