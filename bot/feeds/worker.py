"""What a feed parser process runs before any work: it yields the CPU to the bot, and it
dies with the bot.

Parser processes are forked by multiprocessing's forkserver, so their parent is the
forkserver, not the bot: a parent-death signal alone would tie them to the forkserver.
So each worker also watches the bot's own process (a pidfd on Linux, else a check every
second) and ends the moment the bot is gone, even by SIGKILL. The forkserver then
follows by itself: it stops once every holder of its "alive" pipe (the bot and each
worker) is gone, and so does multiprocessing's resource tracker.

This module imports nothing of the bot: a worker unpickles its initializer by name, and
what it imports is what every worker carries.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def start(bot_pid: int) -> None:
    """A parser process's initializer (`bot_pid`: the bot's process id)."""
    with contextlib.suppress(OSError):
        os.nice(10)  # parsing yields the CPU to the bot's event loop (commands ack fast)
    die_with_parent()
    watch(bot_pid)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent (the forkserver) ends."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def watch(pid: int) -> None:
    """End this process as soon as process `pid` has ended (checked from a daemon thread)."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)  # the bot is already gone
    except (AttributeError, OSError):
        handle = None

    def wait() -> None:
        if handle is not None:
            select.select([handle], [], [])  # readable once the process has ended
        else:
            while _alive(pid):
                threading.Event().wait(1.0)
        os._exit(1)

    threading.Thread(target=wait, name="die-with-bot", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
