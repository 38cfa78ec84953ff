"""Idle memory of the real `itsm-bot run` process tree on one platform, against the local fakes.

For each platform (Slack in Socket Mode against `tests/fakes/fake_slack.py`, Discord against
`tests/fakes/fake_discord.py`), `--runs` times: start the fake on 127.0.0.1, write a temporary
configuration with its own SQLite file, start `python -m bot run --config CFG` as a real
process in a session of its own, wait for its "connected to <platform>" line, leave it idle
`--idle` seconds, then add up the resident memory (VmRSS) of the bot and of every process
it started (a forkserver, parse workers, a resource tracker: none is expected while idle).
Prints min/median/max of the tree's RSS, the processes it held in the last run (each with
its RSS split into anonymous memory and mapped files), and whether the other platform's
library was imported (one more run, with PYTHONPROFILEIMPORTTIME).
Target (issue #16): ≤ 60 MB, the other platform's library never imported.

    python bench/idle_memory.py [--runs 3] [--idle 5] [--only slack|discord] [--top N]

With `--top N` the traced run also prints the N imports that took longest (self + children,
as `python -X importtime` reports them): a hint of where memory goes, not a measure of it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.fake_discord import FakeDiscord  # noqa: E402
from tests.fakes.fake_slack import FakeSlack  # noqa: E402
from tests.process import REPO, child_env, write_config  # noqa: E402

TIMEOUT = 90.0
LIBRARIES = {"slack": ("slack_bolt", "slack_sdk"), "discord": ("discord",)}
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)([\w.]+)\s*$")


def platform_env(platform: str, fake: Any) -> dict[str, str]:
    if platform == "slack":
        return {
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_APP_TOKEN": "xapp-bench",
            "SLACK_API_URL": fake.base_url,
        }
    return {
        "DISCORD_TOKEN": "bench-token",
        "DISCORD_API_URL": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
    }


# --- The process tree ------------------------------------------------------------------


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # ended while we looked
    return parents


def tree(root: int) -> list[int]:
    """`root` and every process descended from it."""
    parents = _parents()
    family = [root]
    for pid in family:  # grows while walked: children of children
        family += [p for p, parent in parents.items() if parent == pid]
    return family


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and its two parts: RssAnon (the heap: Python objects, C libraries' allocations)
    and RssFile (pages of the interpreter and shared libraries, shared with other processes
    that map them, and given back under memory pressure). Empty if the process ended."""
    wanted = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
    found: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, *value = line.split()
            if key in wanted:
                found[wanted[key]] = int(value[0])
    except OSError:
        pass  # ended while we looked
    return found


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:100]


# --- One run ---------------------------------------------------------------------------


async def wait_line(path: Path, needle: str, proc: asyncio.subprocess.Process) -> None:
    while needle not in path.read_text(errors="replace"):
        if proc.returncode is not None:
            raise RuntimeError(f"the bot exited ({proc.returncode}):\n{path.read_text()}")
        await asyncio.sleep(0.05)


async def run_once(platform: str, idle: float, trace: bool = False) -> dict[str, Any]:
    fake: Any = await (FakeSlack() if platform == "slack" else FakeDiscord()).start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
            directory = Path(tmp)
            config = write_config(directory, directory / "bot.db")
            env = platform_env(platform, fake) | {"ITSM_BOT_LOG_LEVEL": "WARNING"}
            if trace:
                env["PYTHONPROFILEIMPORTTIME"] = "1"
            log_path = directory / "stderr.log"
            log_path.touch()
            with log_path.open("wb") as log:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", "run", "--config", str(config),
                    cwd=REPO, env=child_env(env), stdin=asyncio.subprocess.DEVNULL,
                    stdout=log, stderr=log, start_new_session=True,
                )  # fmt: skip
            try:
                async with asyncio.timeout(TIMEOUT):
                    await wait_line(log_path, f"connected to {platform}", proc)
                await asyncio.sleep(idle)
                processes = {pid: (memory_kb(pid), command_line(pid)) for pid in tree(proc.pid)}
                proc.terminate()
                async with asyncio.timeout(TIMEOUT):
                    await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            text = log_path.read_text(errors="replace")
    finally:
        await fake.close()
    return {
        "rss": sum(kb.get("rss", 0) for kb, _ in processes.values()) / 1024,
        "processes": processes,
        "log": text,
    }


# --- What the traced run says ----------------------------------------------------------


def imports(log: str) -> list[tuple[int, int, str]]:
    """(cumulative µs, depth, module) of every import the trace lists."""
    found = []
    for line in log.splitlines():
        if m := IMPORT_LINE.match(line):
            found.append((int(m.group(2)), len(m.group(3)) // 2, m.group(4)))
    return found


def other_library(log: str, platform: str) -> list[str]:
    other = "discord" if platform == "slack" else "slack"
    roots = LIBRARIES[other]
    return sorted(name for _, _, name in imports(log) if name.split(".")[0] in roots)


def top_imports(log: str, count: int) -> list[str]:
    """The `count` costliest imports made by our own code or at top level (depth ≤ 1 or a
    module of bot/ or adapters/ pulling in a library)."""
    found = imports(log)
    ours = ("bot", "adapters")
    picked = []
    for index, (total, depth, name) in enumerate(found):
        # PYTHONPROFILEIMPORTTIME lists children before their parent; the parent of a run
        # of deeper lines is the next line with a smaller depth.
        parent = next((n for _, d, n in found[index + 1 :] if d < depth), "")
        if name.split(".")[0] not in ours and parent.split(".")[0] in ours + ("",):
            picked.append((total, f"{name} (from {parent or 'top'})"))
    picked.sort(reverse=True)
    return [f"{total / 1000:8.1f} ms  {what}" for total, what in picked[:count]]


# --- Printing --------------------------------------------------------------------------


def summary(values: list[float]) -> str:
    return (
        f"min {min(values):.1f} / median {statistics.median(values):.1f} / "
        f"max {max(values):.1f} MB ({len(values)} runs)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before reading RSS")
    parser.add_argument("--only", choices=["slack", "discord"], default=None)
    parser.add_argument("--top", type=int, default=0, help="list the N costliest imports")
    args = parser.parse_args()
    print(f"{REPO}: {args.runs} runs each, {args.idle:g} s idle; load {os.getloadavg()[0]:.1f}")
    for platform in ("slack", "discord"):
        if args.only not in (None, platform):
            continue
        started = time.monotonic()
        results = [await run_once(platform, args.idle) for _ in range(args.runs)]
        print(f"run {platform:<8} idle tree RSS {summary([r['rss'] for r in results])}")
        for pid, (kb, cmd) in results[-1]["processes"].items():
            parts = f"anon {kb.get('anon', 0) / 1024:.1f} + files {kb.get('file', 0) / 1024:.1f}"
            print(f"    {kb.get('rss', 0) / 1024:6.1f} MB ({parts})  pid {pid}: {cmd}")
        traced = await run_once(platform, args.idle, trace=True)
        others = other_library(traced["log"], platform)
        other = "discord" if platform == "slack" else "slack"
        print(
            f"run {platform:<8} {other} library imported: "
            + (f"yes ({len(others)} modules, e.g. {', '.join(others[:3])})" if others else "no")
        )
        for line in top_imports(traced["log"], args.top):
            print(f"    {line}")
        print(f"    ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    asyncio.run(main())
