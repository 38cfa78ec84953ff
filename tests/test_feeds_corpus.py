"""feedparser's own test corpus (about 2,250 feeds) through our ingestion and rendering.

The sdist is downloaded at test time (cached by version under pytest's cache); a failed
download fails the test. Invariants: nothing raises, every item has a key, dates parse or
are None, and nothing rendered for the console, Slack or Discord carries a script, an
event-handler attribute or a live mention.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import tarfile
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.console.render import render as console_render
from adapters.discord.render import render as discord_render
from adapters.slack.render import render as slack_render
from bot.feeds.parse import ParsedFeed, parse_feed
from bot.feeds.render import item_post

VERSION = "6.0.14"
UNSAFE = re.compile(r"<\s*script|<[^>]*\son[a-z]+\s*=|javascript:", re.IGNORECASE)
SLACK_LIVE = ("<!channel", "<!here", "<!everyone", "<@", "<!subteam")
DISCORD_LIVE = re.compile(r"(?<!\u200b)@(everyone|here)|<@[!&]?\d|<#\d")


@pytest.fixture(scope="module")
def corpus(request, tmp_path_factory) -> list[Path]:
    # Kept in pytest's cache between runs; a fresh download when the cache is switched off.
    cache = getattr(request.config, "cache", None)
    name = f"feedparser-corpus-{VERSION}"
    root = Path(cache.mkdir(name)) if cache else tmp_path_factory.mktemp(name)
    tests = root / f"feedparser-{VERSION}" / "tests"
    if not tests.is_dir():
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", f"feedparser=={VERSION}", "--no-deps",
             "--no-binary", ":all:", "--quiet", "-d", str(root)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"could not download the feedparser sdist: {done.stderr[-500:]}")
        with tarfile.open(root / f"feedparser-{VERSION}.tar.gz") as archive:
            members = [m for m in archive.getmembers() if "/tests/" in m.name]
            archive.extractall(root, members=members, filter="data")
    files = sorted(p for p in tests.rglob("*") if p.is_file() and p.suffix != ".py")
    assert len(files) > 2000, f"only {len(files)} corpus files found"
    return files


def _parse(path: str) -> tuple[str, ParsedFeed]:
    data = Path(path).read_bytes()
    return path, parse_feed(data, url="http://127.0.0.1/feed.xml")


def test_corpus_ingests_and_renders_safely(corpus: list[Path]):
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_parse, [str(p) for p in corpus], chunksize=50))
    items = 0
    for path, feed in results:
        for item in feed.items:
            items += 1
            assert item.key and re.fullmatch(r"[0-9a-f]{24}", item.key_hash), path
            if item.published is not None:
                assert math.isfinite(item.published), path
                datetime.fromtimestamp(item.published, UTC)
            post = item_post(item, feed.title or "source")
            _check_console(console_render(post, 1, "public"), path)
            _check_slack(repr(slack_render(post)), path)
            _check_discord(post, path)
    assert items > 1000  # the corpus really went through


def _check_console(text: str, path: str) -> None:
    assert not UNSAFE.search(text), (path, text)


def _check_slack(text: str, path: str) -> None:
    assert not UNSAFE.search(text), (path, text)
    for live in SLACK_LIVE:
        assert live not in text, (path, live, text)


def _check_discord(post, path: str) -> None:
    rendered = discord_render(post)
    assert not rendered.allowed_mentions.everyone and not rendered.allowed_mentions.users
    texts = [rendered.content or ""]
    for embed in rendered.embeds:
        data = embed.to_dict()
        texts += [data.get("title", ""), data.get("description", ""), str(data.get("footer", ""))]
    joined = "\n".join(texts)
    assert not UNSAFE.search(joined), (path, joined)
    assert not DISCORD_LIVE.search(joined), (path, joined)
