"""Start-up time and idle memory of the real `itsm-bot` processes, against the local fakes.

- `demo`: `python -m bot demo < /dev/null`, timed from the spawn to its first line of output,
  with the CPU time the process had used by then (and, for information, to the first
  seeded post and to its exit);
- `run` on Slack (Socket Mode, `tests/fakes/fake_slack.py`) and on Discord
  (`tests/fakes/fake_discord.py`), one platform at a time: timed from the spawn to the
  fake seeing the bot arrive ("reached": Slack's Socket Mode connection accepted, Discord's
  READY and GUILD_CREATE sent) and to the bot's own "connected to <platform>" line (for
  Discord this includes discord.py's wait of `guild_ready_timeout`, 0.5 s, for more
  guilds after the last one); the fakes answer at once, so both are the bot's own share
  of connecting; with the CPU time used by "connected"; then, after `--idle` seconds
  connected and doing nothing, the resident memory of the process (VmRSS in
  /proc/PID/status). One more run, with
  PYTHONPROFILEIMPORTTIME (every module imported listed on stderr; not timed), says
  whether the other platform's library was imported.

Prints, for each, the median of `--runs` runs and their range.

    python bench/startup.py [--runs 5] [--idle 5] [--only demo|slack|discord] [--pycache]
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.fake_discord import FakeDiscord  # noqa: E402
from tests.fakes.fake_slack import FakeSlack  # noqa: E402
from tests.process import REPO, child_env, write_config  # noqa: E402

TIMEOUT = 90.0
EXTRA_ENV: dict[str, str] = {}  # for every child (--pycache)
# A module of the other platform's library, as PYTHONPROFILEIMPORTTIME names it.
LIBRARIES = {"slack": ("slack_bolt", "slack_sdk"), "discord": ("discord",)}
IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)\s*$")


def imported_modules(log: str) -> set[str]:
    return {m.group(1) for line in log.splitlines() if (m := IMPORTED.match(line))}


def other_library_imported(log: str, platform: str) -> list[str]:
    other = "discord" if platform == "slack" else "slack"
    roots = LIBRARIES[other]
    return sorted(m for m in imported_modules(log) if m.split(".")[0] in roots)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far: on a shared machine, a
    steadier measure than the wall clock of how much work start-up is."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


# --- demo ------------------------------------------------------------------------------


async def demo_once() -> dict[str, float]:
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "demo",
        cwd=REPO, env=child_env({"ITSM_BOT_LOG_LEVEL": "WARNING", **EXTRA_ENV}),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    found: dict[str, float] = {}
    try:
        async with asyncio.timeout(TIMEOUT):
            while line := await proc.stdout.readline():
                now = time.monotonic() - started
                if "first line" not in found:
                    found["first line"] = now
                    found["first line cpu"] = cpu_seconds(proc.pid)
                if line.startswith(b"#1 "):
                    found.setdefault("first post", now)
            await proc.wait()
            found["exit"] = time.monotonic() - started
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0 or "first post" not in found:
        raise RuntimeError(f"the demo failed ({proc.returncode}): {found}")
    return found


# --- run -------------------------------------------------------------------------------


async def wait_line(path: Path, needle: str, proc: asyncio.subprocess.Process) -> None:
    while True:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        if proc.returncode is not None:
            raise RuntimeError(f"the bot exited ({proc.returncode}):\n{path.read_text()}")
        await asyncio.sleep(0.01)


async def run_once(platform: str, idle: float, trace: bool = False) -> dict[str, Any]:
    fake: Any = await (FakeSlack() if platform == "slack" else FakeDiscord()).start()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        directory = Path(tmp)
        config = write_config(directory, directory / "bot.db")
        if platform == "slack":
            env = {
                "SLACK_BOT_TOKEN": "xoxb-bench",
                "SLACK_APP_TOKEN": "xapp-bench",
                "SLACK_API_URL": fake.base_url,
            }
        else:
            env = {
                "DISCORD_TOKEN": "bench-token",
                "DISCORD_API_URL": fake.api_base,
                "DISCORD_GATEWAY_URL": fake.gateway_url,
            }
        env |= {"ITSM_BOT_LOG_LEVEL": "WARNING", **EXTRA_ENV}
        if trace:  # lists every module imported, at some cost in time: not timed then
            env["PYTHONPROFILEIMPORTTIME"] = "1"
        log_path = directory / "stderr.log"
        with log_path.open("wb") as log:
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", "--config", str(config),
                cwd=REPO, env=child_env(env), stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        waiter = asyncio.ensure_future(proc.wait())

        async def reached() -> float:
            if platform == "slack":
                await fake.wait_connected(1, TIMEOUT)
            else:
                await fake.wait_ready(TIMEOUT)
            return time.monotonic() - started

        reach = asyncio.ensure_future(reached())
        try:
            async with asyncio.timeout(TIMEOUT):
                await wait_line(log_path, f"connected to {platform}", proc)
            connected = time.monotonic() - started
            cpu = cpu_seconds(proc.pid)
            reached_at = await reach
            await asyncio.sleep(idle)
            rss = rss_mb(proc.pid)
            proc.terminate()
            async with asyncio.timeout(TIMEOUT):
                await waiter
        finally:
            reach.cancel()
            if proc.returncode is None:
                proc.kill()
                await waiter
            await fake.close()
        text = log_path.read_text(errors="replace")
        other = other_library_imported(text, platform)
        return {
            "reached": reached_at,
            "connected": connected,
            "cpu": cpu,
            "rss": rss,
            "other": other,
        }


# --- printing --------------------------------------------------------------------------


def summary(values: Sequence[float], unit: str, digits: int = 2) -> str:
    return (
        f"median {statistics.median(values):.{digits}f} {unit} "
        f"(range {min(values):.{digits}f}-{max(values):.{digits}f}, {len(values)} runs)"
    )


async def repeat(runs: int, once: Callable[[], Any]) -> list[Any]:
    return [await once() for _ in range(runs)]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before RSS")
    parser.add_argument("--only", choices=["demo", "slack", "discord"], default=None)
    parser.add_argument(
        "--pycache",
        action="store_true",
        help="let the children keep byte-code (in a temporary folder, not the tree), even "
        "where PYTHONDONTWRITEBYTECODE is set; one untimed warm-up run each first",
    )
    args = parser.parse_args()
    cache = tempfile.TemporaryDirectory(prefix="bench-pycache-")
    if args.pycache:
        EXTRA_ENV.update(PYTHONDONTWRITEBYTECODE="", PYTHONPYCACHEPREFIX=cache.name)
    bytecode = (
        "kept" if args.pycache or not os.environ.get("PYTHONDONTWRITEBYTECODE") else "not kept"
    )
    print(f"{REPO}: {args.runs} runs each; byte-code {bytecode}; load {os.getloadavg()[0]:.1f}")
    if args.only in (None, "demo"):
        if args.pycache:
            await demo_once()
        demos = await repeat(args.runs, demo_once)
        for key in ("first line", "first line cpu", "first post", "exit"):
            print(f"demo {key:<14} {summary([d[key] for d in demos], 's')}")
    for platform in ("slack", "discord"):
        if args.only not in (None, platform):
            continue
        if args.pycache:
            await run_once(platform, 0)
        results = await repeat(args.runs, lambda p=platform: run_once(p, args.idle))
        print(f"run {platform:<8} reached     {summary([r['reached'] for r in results], 's')}")
        print(f"run {platform:<8} connected   {summary([r['connected'] for r in results], 's')}")
        print(f"run {platform:<8} cpu by then {summary([r['cpu'] for r in results], 's')}")
        print(
            f"run {platform:<8} idle RSS    "
            f"{summary([r['rss'] for r in results], 'MB', 1)} after {args.idle:g} s idle"
        )
        others = (await run_once(platform, args.idle, trace=True))["other"]
        other = "discord" if platform == "slack" else "slack"
        print(
            f"run {platform:<8} {other} library imported: "
            + (f"yes ({len(others)} modules, e.g. {', '.join(others[:3])})" if others else "no")
        )


if __name__ == "__main__":
    asyncio.run(main())
