"""Every project command the README and docs show works as written, at ``--help`` level: the program (and its
sub-command) exists and starts, and every flag the line uses is one it takes. Commands are read from the
docs' shell blocks and from inline code that starts with ``python``."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess

import pytest

from tests.kit import PYTHON, ROOT

pytestmark = pytest.mark.slow

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SUBCOMMANDS = {"status", "register", "show", "params", "localnet", "test"}
"""Words after a program that name one of its sub-commands (the rest are arguments)."""


def _commands() -> list[tuple[str, str]]:
    """(document, command line) of every project command shown."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        lines = []
        for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, re.S):
            lines += block.replace("\\\n", " ").splitlines()
        lines += re.findall(r"`(python3? [^`\n]+)`", text)
        for line in lines:
            line = re.split(r"\s+#", line.strip(), maxsplit=1)[0].strip()
            # a wrapper's ``-- command`` (scripts/autoupdate.py) is a command of its own, checked on its own
            for part in (p for chained in line.split("&&") for p in chained.split(" -- ")):
                part = part.strip()
                if re.match(r"(\.venv/bin/)?python3? (neurons/|scripts/|-m resi)", part):
                    found.append((doc.name, part))
    return sorted(set(found))


COMMANDS = _commands()


def _program(words: list[str]) -> list[str]:
    """The program and sub-command of a command line (its interpreter replaced by the project's)."""
    words = words[1:]
    program = words[:2] if words[0] == "-m" else words[:1]
    rest = words[len(program) :]
    if rest and rest[0] in SUBCOMMANDS:
        program.append(rest[0])
    return [PYTHON, *program]


def test_the_docs_show_commands_of_every_kind():
    shown = " ".join(command for _, command in COMMANDS)
    for needed in (
        "neurons/miner.py",
        "neurons/validator.py",
        "scripts/dev.py",
        "-m resi.localnet",
        "-m resi.api.server",
        "-m resi.chain.local",
        "-m resi.scraping",
        "status",
    ):
        assert needed in shown, needed


def _runs_as_written(doc: str, command: str) -> None:
    words = shlex.split(command.replace("[", " ").replace("]", " ").replace("...", ""))
    program = _program(words)
    out = subprocess.run([*program, "--help"], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip(), (doc, command, out.stderr[-1500:])
    for flag in re.findall(r"(?<![\w.-])(--[a-z][\w.-]*)", command):
        assert flag in out.stdout, f"{doc}: `{command}` uses {flag}, which `{' '.join(program[1:])}` does not take"


@pytest.mark.parametrize("doc,command", COMMANDS, ids=[f"{d}: {c[:60]}" for d, c in COMMANDS])
def test_a_documented_command_runs_as_written(doc, command):
    _runs_as_written(doc, command)


@pytest.mark.parametrize("config", sorted((ROOT / "pm2").glob("*.config.js")), ids=lambda p: p.name)
def test_every_pm2_app_runs_as_written(config):
    """What pm2 would start (its interpreter, script and args, read with node) takes every flag it is given;
    a neuron the app wraps (after ``--``) likewise."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the pm2 files cannot be read")
    read = f"for (const a of require({json.dumps(str(config))}).apps) console.log(JSON.stringify(a))"
    apps = [
        json.loads(line)
        for line in subprocess.run([node, "-e", read], capture_output=True, text=True, check=True).stdout.splitlines()
    ]
    assert apps
    for app in apps:
        assert app["interpreter"] == ".venv/bin/python" and (ROOT / app["script"]).exists()
        for part in f"python {app['script']} {app['args']}".split(" -- "):
            _runs_as_written(config.name, part if part.startswith("python") else re.sub(r"^\S+", "python", part))
