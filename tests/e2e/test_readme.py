"""The README's promises, run as written.

Every ``bash`` block of README.md runs, in order, in one shell against a ``cidadao up --demo 20000`` the test
starts, but for the ports and the data home, which the test picks (free ports, a data home of its own); a block
after a ``<!-- readme: skip (why) -->`` line is not run and must say why. The ``Usage`` synopsis (after
``<!-- readme: synopsis ... -->``) and every ``cidadao ...`` command quoted in the prose are checked against the
command's own parser: each subcommand and option they name exists.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from cidadao.cli import app
from tests.helpers import CliProcess, run_cli

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
_MARK = re.compile(r"^<!-- readme: (skip|synopsis) \((.+)\) -->$")


@dataclass(frozen=True)
class Block:
    line: int  # where the block starts in README.md
    mark: str  # "run", "skip" or "synopsis"
    reason: str
    text: str


def readme_blocks(text: str) -> list[Block]:
    """The fenced ``bash`` blocks (indented ones too, as in a list), with the mark on the line before each."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped == "```bash":
            indent = len(lines[i]) - len(lines[i].lstrip())
            before = lines[i - 1].strip() if i else ""
            mark = _MARK.match(before)
            body: list[str] = []
            start = i + 1
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i][indent:])
                i += 1
            kind, reason = (mark.group(1), mark.group(2)) if mark else ("run", "")
            blocks.append(Block(start, kind, reason, "\n".join(body)))
        elif stripped.startswith("<!-- readme:"):
            assert _MARK.match(stripped), f"README.md:{i + 1}: a mark is `<!-- readme: skip|synopsis (why) -->`"
        i += 1
    return blocks


def prose_commands(text: str) -> list[str]:
    """Every `cidadao ...` quoted inline outside the fenced blocks."""
    outside = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return re.findall(r"`(cidadao [^`]+)`", outside)


def _parser_check(root: Any, line: str) -> None:
    """The subcommand path and every ``--option`` of a synopsis line exist (``root``: the command's click
    group, as typer builds it with the click it carries)."""
    words = shlex.split(line.split("  #", 1)[0].replace("(", " ").replace(")", " ").replace("|", " "))
    assert words and words[0] == "cidadao", line
    command, used = root, ["cidadao"]
    rest = words[1:]
    while hasattr(command, "commands") and rest and rest[0] in command.commands:
        used.append(rest[0])
        command = command.commands[rest.pop(0)]
    if hasattr(command, "commands"):  # a group named alone (`cidadao fetch`) is fine; followed, by a subcommand
        assert not rest, f"{line!r}: {' '.join(used)} has no subcommand {rest[0]}"
        return
    options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    for word in rest:
        if word == "--":  # what follows is another command's (cidadao submit -- investigate --all)
            break
        name = word.strip("[]").split("=", 1)[0]
        if name.startswith("--"):
            assert name in options, f"{line!r}: {' '.join(used)} has no option {name} ({sorted(options)})"


def test_every_command_the_readme_names_exists_with_its_options() -> None:
    text = README.read_text()
    blocks = readme_blocks(text)
    assert all(b.reason for b in blocks if b.mark != "run"), "a skipped block says why"
    root = typer.main.get_command(app)
    synopsis = [b for b in blocks if b.mark == "synopsis"]
    assert synopsis, "README.md has its Usage synopsis"
    lines = [x for b in synopsis for x in b.text.splitlines() if x.startswith("cidadao ")]
    lines += prose_commands(text)
    lines += [x for b in blocks if b.mark == "run" for x in b.text.splitlines() if x.startswith("cidadao ")]
    assert len(lines) > 40
    for line in lines:
        _parser_check(root, line)


def test_the_parser_check_catches_a_wrong_command() -> None:
    root = typer.main.get_command(app)
    with pytest.raises(AssertionError, match="has no option --colour"):
        _parser_check(root, "cidadao investigate --orgao 26000 --colour red")
    with pytest.raises(AssertionError, match="has no subcommand rotate"):
        _parser_check(root, "cidadao keys rotate --name x")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.mark.e2e
@pytest.mark.slow
def test_the_readme_runs_as_written_against_cidadao_up_demo_20000(tmp_path: Path) -> None:
    runnable = [b for b in readme_blocks(README.read_text()) if b.mark == "run"]
    script = "\n".join(b.text for b in runnable)
    assert "curl" in script and "cidadao submit" in script and "/investigations" in script
    api, dashboard, metrics, ray_metrics = _free_ports(4)
    script = script.replace("127.0.0.1:8000", f"127.0.0.1:{api}").replace("127.0.0.1:8265", f"127.0.0.1:{dashboard}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIDADAO_", "RAY_ADDRESS"))}
    env.update(CIDADAO_DATA_HOME=str(tmp_path / "home"), CIDADAO_PORT=str(api),
               CIDADAO_RAY_DASHBOARD_PORT=str(dashboard), CIDADAO_METRICS_PORT=str(metrics),
               CIDADAO_RAY_METRICS_PORT=str(ray_metrics))  # fmt: skip
    work = tmp_path / "work"  # the second terminal: `. .venv/bin/activate` finds the environment the tests run in
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)

    up = CliProcess("up", "--demo", "20000", env=env)
    try:
        up.wait_for_line("ready; press Ctrl-C", timeout=600)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env, capture_output=True,
                              text=True, timeout=1200, check=False)  # fmt: skip
        shown = f"exit {done.returncode}\nstdout: {done.stdout[-6000:]}\nstderr: {done.stderr[-4000:]}"
        assert done.returncode == 0, shown
        out = done.stdout
        assert "event: completed" in out, shown  # the investigation of 26000 in 2024, followed to its end
        result = json.loads((work / "result.json").read_text())
        first = result["flags"][0]
        assert isinstance(first["contract_id"], int) and f'"id":{first["contract_id"]},' in out, shown
        assert "Traceback" not in done.stderr, shown
    finally:
        up.proc.send_signal(signal.SIGINT)
        stopped = up.finish(timeout=180)
        run_cli("down", env=env, timeout=120)  # the stores, even when up did not stop them
    assert up.proc.returncode == 0 and "Traceback" not in stopped, stopped[-3000:]
    # Ray's session (its logs) left /tmp for the data home
    kept = Path(re.search(r"stopped: agents, ray \(its logs: (.+)\)", stopped).group(1))  # type: ignore[union-attr]
    assert kept.parent == tmp_path / "home" / "logs" / "ray" and (kept / "logs").is_dir()
    assert not (Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / kept.name).exists()
