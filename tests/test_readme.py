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
