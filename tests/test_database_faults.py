"""A database file the bot cannot use, or one another bot is using, stops `itsm-bot` at start
with one line naming the file, and the process really ends (it used to print a traceback
and hang on aiosqlite's worker thread, so a supervisor never saw it die).

These run the real console script in a subprocess. Tests may run as root, for whom file
modes stop nothing; the child then runs without the two capabilities that bypass them
(CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so a root-owned file with mode 000 is as
unreadable to it as to anyone.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import queue
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.errors import StartupError

REPO = Path(__file__).resolve().parents[1]
EXITS_WITHIN = 60  # generous: "it exits", on a busy machine; never a timing assertion
UP = "What I can do"  # the demo's answer to /help: it is past start-up and serving
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


# --- Running the console script ------------------------------------------------------------


def _drop_file_privileges() -> None:
    """In the child, before exec: give up what lets root ignore file modes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _preexec() -> Callable[[], None] | None:
    return _drop_file_privileges if os.geteuid() == 0 else None


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot", *args]


def itsm_bot(*args: str, stdin: str = "/help\n", env: dict[str, str] | None = None) -> Any:
    """Run `itsm-bot ARGS` to the end; fail (not hang) if it does not exit."""
    try:
        return subprocess.run(
            _command(*args),
            input=stdin,
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**_env(), **(env or {})},
            preexec_fn=_preexec(),
            timeout=EXITS_WITHIN,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"itsm-bot {' '.join(args)} did not exit: {exc.stderr!r}")


@functools.cache
def file_modes_apply() -> bool:
    """Whether a child started as above is stopped by a mode-000 file (false as a root that
    cannot drop capabilities, e.g. without CAP_SETPCAP)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        secret = Path(tmp) / "secret"
        secret.write_text("x")
        secret.chmod(0)
        probe = [sys.executable, "-c", f"open({str(secret)!r}).read()"]
        try:
            done = subprocess.run(probe, capture_output=True, preexec_fn=_preexec(), timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
        return done.returncode != 0 and b"PermissionError" in done.stderr


def needs_file_modes() -> None:
    if not file_modes_apply():
        pytest.skip(
            "running as root without the right to drop CAP_DAC_OVERRIDE: modes stop nothing"
        )


# --- The bad files -----------------------------------------------------------------------


def _good_database(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    return path


def text_file(tmp: Path) -> Path:
    path = tmp / "notes.db"
    path.write_text("these are my meeting notes, not a database\n")
    return path


def random_bytes(tmp: Path) -> Path:
    path = tmp / "noise.db"
    path.write_bytes(os.urandom(16384))
    return path


def read_only_file(tmp: Path) -> Path:
    needs_file_modes()
    path = _good_database(tmp / "ro.db")
    path.chmod(0o444)
    return path


def in_read_only_directory(tmp: Path) -> Path:
    needs_file_modes()
    folder = tmp / "locked"
    folder.mkdir()
    path = _good_database(folder / "bot.db")
    folder.chmod(0o555)
    return path


def unreadable_file(tmp: Path) -> Path:
    needs_file_modes()
    path = _good_database(tmp / "secret.db")
    path.chmod(0)
    return path


def directory_in_its_place(tmp: Path) -> Path:
    """Unusable for root too: a directory where the file should be."""
    path = tmp / "folder.db"
    path.mkdir()
    return path


def wal_not_creatable(tmp: Path) -> Path:
    """A good database whose -wal cannot be made (a directory has its name); root too."""
    path = _good_database(tmp / "nowal.db")
    (tmp / "nowal.db-wal").mkdir()
    return path


BAD_FILES = {
    "text file": (text_file, "file is not a database"),
    "random bytes": (random_bytes, "file is not a database"),
    "read-only file": (read_only_file, "read-only"),
    "read-only directory": (in_read_only_directory, "is not writable"),
    "unreadable file": (unreadable_file, "not readable"),
    "directory in its place": (directory_in_its_place, "is a directory"),
    "wal not creatable": (wal_not_creatable, "nowal.db-wal"),
}


@pytest.fixture
def tmp(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, given back its write permission afterwards so pytest can clean it."""
    yield tmp_path
    for folder, dirs, files in os.walk(tmp_path):
        for name in dirs + files:
            target = Path(folder) / name
            if not target.is_symlink():
                target.chmod(target.stat().st_mode | stat.S_IRWXU)


def assert_refused_in_one_line(done: Any, path: Path, reason: str) -> None:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(path) in lines[0] and "cannot use the database" in lines[0], lines[0]
    assert reason in lines[0], lines[0]


def run_config(tmp: Path, db: Path) -> Path:
    config = tmp / "run.toml"
    config.write_text(f"[bot]\ndatabase = {json.dumps(str(db))}\n")  # a TOML string too
    return config


# Tokens that would reach nothing: the database must fail before any platform is tried.
NOWHERE = {
    "DISCORD_TOKEN": "not-a-token",
    "DISCORD_API_URL": "http://127.0.0.1:9/api/v10",
    "DISCORD_GATEWAY_URL": "ws://127.0.0.1:9/",
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_demo_on_a_bad_database_says_so_in_one_line_and_exits(tmp: Path, case: str) -> None:
    make, reason = BAD_FILES[case]
    path = make(tmp)
    before = path.read_bytes() if path.is_file() and os.access(path, os.R_OK) else None
    done = itsm_bot("demo", "--db", str(path))
    assert_refused_in_one_line(done, path, reason)
    if before is not None and case in ("text file", "random bytes"):
        assert path.read_bytes() == before  # a file that is not ours is left alone


@pytest.mark.parametrize("case", BAD_FILES)
def test_run_on_a_bad_database_says_so_in_one_line_and_exits(tmp: Path, case: str) -> None:
    make, reason = BAD_FILES[case]
    path = make(tmp)
    config = run_config(tmp, path)
    done = itsm_bot("run", "--config", str(config), env=NOWHERE)
    assert_refused_in_one_line(done, path, reason)


# --- A start-up refusal from a platform, after the whole App is up --------------------------


class RefusingSurface:
    """Stands for an adapter whose token check fails at start."""

    async def start(self) -> None:
        raise StartupError("DISCORD_TOKEN was refused by Discord: set a valid bot token")

    async def stop(self) -> None:
        """Nothing was started."""


def create(app: Any, settings: Any, env: Any) -> RefusingSurface:
    """This module as the Discord adapter of a subprocess (see the test below)."""
    return RefusingSurface()


def test_a_platform_refusing_at_start_is_one_line_and_the_process_exits(tmp: Path) -> None:
    config = run_config(tmp, tmp / "fine.db")
    script = (
        "import sys\n"
        "from bot import cli\n"
        "cli.ADAPTERS['discord'] = ('tests.test_database_faults', *cli.ADAPTERS['discord'][1:])\n"
        f"sys.argv = ['itsm-bot', 'run', '--config', {str(config)!r}]\n"
        "cli.main()\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**_env(), **NOWHERE},
            timeout=EXITS_WITHIN,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"run did not exit after the refusal: {exc.stderr!r}")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert (
        done.stderr.strip() == "Error: DISCORD_TOKEN was refused by Discord: set a valid bot token"
    )


# --- Two processes on one file -------------------------------------------------------------


class Demo:
    """`itsm-bot demo --db FILE` kept up by a stdin we hold open; its output read as it comes.

    It runs in a process group of its own: a SIGKILL of the bot alone leaves its feed
    parser processes behind (they hold its output pipe), and the group is how they go too.
    """

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            _command("demo", "--db", str(db)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
            env=_env(),
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_up(self) -> None:
        """Ask for /help and wait for the answer: start-up (and the lock) is behind it."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("/help\n")
        self.proc.stdin.flush()
        while True:
            try:
                line = self.lines.get(timeout=EXITS_WITHIN)
            except queue.Empty:
                pytest.fail(f"the demo never answered /help: {self.seen!r}")
            if line is None:
                pytest.fail(f"the demo ended before answering /help: {self.seen!r}")
            self.seen.append(line)
            if UP in line:
                return

    def finish(self) -> int:
        """Close its stdin (the end of its script) and wait for it to exit."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=EXITS_WITHIN)

    def kill(self) -> None:
        """SIGKILL the bot's own process, nothing else: no code of ours runs on the way out."""
        self.proc.kill()
        self.proc.wait(timeout=EXITS_WITHIN)

    def close(self) -> None:
        """End whatever is left of its group, then let go of the pipes."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=EXITS_WITHIN)
        self._reader.join(timeout=EXITS_WITHIN)  # EOF once no process holds the pipe
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None and not self._reader.is_alive():
                stream.close()


@contextmanager
def demo_holding(db: Path) -> Iterator[Demo]:
    holder = Demo(db)
    try:
        holder.wait_up()
        yield holder
    finally:
        holder.close()


def test_a_second_process_on_the_same_file_is_refused_naming_the_first(tmp: Path) -> None:
    db = tmp / "shared.db"
    with demo_holding(db) as first:
        second = itsm_bot("demo", "--db", str(db))
        assert second.returncode != 0 and "Traceback" not in second.stderr, second.stderr
        [line] = second.stderr.strip().splitlines()
        assert str(db) in line and f"pid {first.proc.pid}" in line, line
        assert UP not in second.stdout  # it served nothing
        assert first.finish() == 0  # the first one was not disturbed
    again = itsm_bot("demo", "--db", str(db))  # and once it has gone, the file is free
    assert again.returncode == 0 and UP in again.stdout, again.stderr


def test_a_killed_holder_leaves_no_lock_behind(tmp: Path) -> None:
    db = tmp / "killed.db"
    with demo_holding(db) as holder:
        holder.kill()
    assert Path(f"{db}.lock").exists()  # the file stays; the lock died with the process
    after = itsm_bot("demo", "--db", str(db))
    assert after.returncode == 0 and UP in after.stdout, after.stderr
