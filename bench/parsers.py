"""Benchmark: feed parsers against feedparser, on feedparser's own corpus and the farm's feeds.

For each parser: the time to parse every file (range over --runs), the files it raises on,
the files where it finds no entries although feedparser finds some, and the files where an
item's key or a displayed field (title, link, summary after clean_text, author, published,
categories, image) differs from feedparser's. Every reading goes through the bot's own item
building (`bot.feeds.parse._build`), so the comparison is of what the bot would post.

Parsers: feedparser (as the bot calls it: sanitising off), feedparser-rs, fastfeedparser
(each only when installed), and "parse_feed": the bot's parse_feed with its fast first pass
and feedparser fallback, compared with a feedparser-only parse_feed.

The corpus is the tests/ directory of feedparser's sdist: --corpus DIR (the sdist's
directory or its tests/), else it is downloaded with pip into a temporary directory. The farm
is bench/feeds.py's generator: the fetchable feeds of --farm N (default 200: 190 feeds).

Last line: parse_feed_speedup=X (farm, newest 3 cleaned) key_mismatches=K field_mismatches=F
fallback_files=B (both sets)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import astuple
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import feedparser  # noqa: E402

from bench.feeds import Plan  # noqa: E402
from bot.feeds import parse  # noqa: E402

URL = "http://127.0.0.1/feed.xml"
FIELDS = ("key", "title", "link", "summary", "author", "published", "categories", "image")
HEADER = re.compile(rb"^Header:\s+([^:]+):(.+)$", re.M)


class Doc:
    def __init__(self, name: str, body: bytes) -> None:
        self.name = name
        self.body = body
        headers = {k.strip().lower(): v.strip() for k, v in HEADER.findall(body[:4000])}
        self.content_type = headers.get(b"content-type", b"").decode("latin-1")
        self.url = headers.get(b"content-location", URL.encode()).decode("latin-1")


# --- Readers: bytes -> a result in feedparser's shape -------------------------------------


def read_feedparser(doc: Doc) -> Any:
    headers = {"content-location": doc.url}
    if doc.content_type:
        headers["content-type"] = doc.content_type
    return feedparser.parse(
        doc.body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )


def readers() -> dict[str, Callable[[Doc], Any]]:
    found: dict[str, Callable[[Doc], Any]] = {"feedparser": read_feedparser}
    try:
        import feedparser_rs

        def read_rs(doc: Doc) -> Any:
            return feedparser_rs.parse(doc.body, sanitize_html=False, resolve_relative_uris=False)

        found["feedparser-rs"] = read_rs

        def read_rs_sanitising(doc: Doc) -> Any:
            return feedparser_rs.parse(doc.body)

        found["feedparser-rs, sanitising on"] = read_rs_sanitising
    except ImportError:
        print("feedparser-rs: not installed, skipped")
    try:
        import fastfeedparser

        def read_fast(doc: Doc) -> Any:
            parsed = fastfeedparser.parse(doc.body)
            # Its dates are ISO strings without a struct_time: give them one, else every
            # dated item would count as a mismatch for want of an adapter.
            for entry in parsed.get("entries") or []:
                for name in ("published", "updated"):
                    if entry.get(name) and not entry.get(f"{name}_parsed"):
                        try:
                            when = datetime.fromisoformat(entry[name])
                            entry[f"{name}_parsed"] = when.utctimetuple()
                        except (TypeError, ValueError):
                            pass
            return parsed

        found["fastfeedparser"] = read_fast
    except ImportError:
        print("fastfeedparser: not installed, skipped")
    return found


def view(parsed: Any, doc: Doc) -> list[tuple]:
    """Every item as the bot would build it, in document order."""
    feed = parse._build(parsed, doc.url, 300, None, "")
    return [astuple(i)[:1] + astuple(i)[3:] for i in sorted(feed.items, key=lambda i: i.index)]


# --- Inputs ---------------------------------------------------------------------------------


def corpus(where: str | None) -> list[Doc]:
    if where:
        root = Path(where)
    else:
        root = Path(tempfile.mkdtemp(prefix="fpcorpus-"))
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "feedparser", "--no-deps",
             "--no-binary", ":all:", "--quiet", "-d", str(root)],
            check=True,
        )  # fmt: skip
        with tarfile.open(next(root.glob("feedparser-*.tar.gz"))) as archive:
            members = [m for m in archive.getmembers() if "/tests/" in m.name]
            archive.extractall(root, members=members, filter="data")
    tests = root if root.name == "tests" else next(root.rglob("tests"), root)
    files = sorted(p for p in tests.rglob("*") if p.is_file() and p.suffix != ".py")
    return [Doc(str(p.relative_to(tests)), p.read_bytes()) for p in files]


def farm(n: int) -> list[Doc]:
    plan = Plan(n)
    return [Doc(f"farm/{i}", plan.body(i)) for i in plan.fetchable]


# --- Measuring ------------------------------------------------------------------------------


def timed(
    fns: dict[str, Callable[[Doc], Any]], docs: list[Doc], runs: int
) -> dict[str, list[float]]:
    """Seconds per run for each function; the functions take turns within each run, so a
    machine that gets busier or quieter during the benchmark slows them alike."""
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            for doc in docs:
                try:
                    fn(doc)
                except Exception:  # counted separately
                    pass
            out[name].append(time.perf_counter() - start)
    return out


def compare(name: str, read: Callable[[Doc], Any], docs: list[Doc], base: dict[str, Any]) -> dict:
    raised, empty, keys, fields = [], [], [], Counter()
    field_files: list[str] = []
    for doc in docs:
        want = base[doc.name]
        try:
            got = read(doc)
        except Exception as exc:
            raised.append(f"{doc.name} ({type(exc).__name__})")
            continue
        if want is None:
            continue
        theirs, ours = view(want, doc), view(got, doc)
        if theirs and not ours:
            empty.append(doc.name)
            continue
        if [t[0] for t in theirs] != [o[0] for o in ours]:
            keys.append(doc.name)
        differs = False
        for t, o in zip(theirs, ours, strict=False):
            for field, a, b in zip(FIELDS[1:], t[1:], o[1:], strict=True):
                if a != b:
                    fields[field] += 1
                    differs = True
        if differs:
            field_files.append(doc.name)
    return {"raised": raised, "empty": empty, "keys": keys, "fields": fields, "ffiles": field_files}


def report(title: str, docs: list[Doc], runs: int, verbose: int) -> None:
    size = sum(len(d.body) for d in docs) / 1e6
    print(f"\n== {title}: {len(docs)} files, {size:.1f} MB")
    found = readers()
    base = {}
    for doc in docs:
        try:
            base[doc.name] = read_feedparser(doc)
        except Exception:
            base[doc.name] = None
    timings = timed(found, docs, runs)
    for name, read in found.items():
        times = timings[name]
        line = f"{name:>15}: {min(times):6.2f}-{max(times):6.2f} s over {runs} runs"
        if name.endswith("sanitising on"):
            print(line + " (timing only; the bot parses with sanitising off)")
            continue
        if name != "feedparser":
            c = compare(name, read, docs, base)
            line += (
                f"; raises on {len(c['raised'])}, no entries on {len(c['empty'])},"
                f" keys differ in {len(c['keys'])}, fields differ in {len(c['ffiles'])}"
                f" ({', '.join(f'{k} {v}' for k, v in c['fields'].most_common()) or 'none'})"
            )
            print(line)
            for label in ("raised", "empty", "keys", "ffiles"):
                if verbose and c[label]:
                    shown = c[label][:verbose]
                    print(f"{'':>17}{label}: {' '.join(shown)}{' ...' if len(c[label]) > verbose else ''}")  # fmt: skip
        else:
            print(line)


def report_parse_feed(title: str, docs: list[Doc], runs: int, verbose: int) -> dict[str, float]:
    """The bot's parse_feed (fast pass + fallback) against a feedparser-only parse_feed."""

    def ours(doc: Doc) -> parse.ParsedFeed:
        return parse.parse_feed(doc.body, doc.url, doc.content_type)

    def theirs(doc: Doc) -> parse.ParsedFeed:
        return parse._parse_feed(doc.body, doc.url, doc.content_type, 300, None, False)

    # As a first poll asks: every key, the newest 3 items cleaned (bench/feeds.py's backlog).
    few = parse.Want(unseen=False, newest=3)
    times = timed(
        {
            "ours": ours,
            "theirs": theirs,
            "few ours": lambda d: parse.parse_feed(d.body, d.url, d.content_type, 300, few),
            "few theirs": lambda d: parse._parse_feed(
                d.body, d.url, d.content_type, 300, few, False
            ),  # fmt: skip
        },
        docs,
        runs,
    )
    t_ours, t_theirs, f_ours, f_theirs = times.values()
    used: Counter[str] = Counter()
    keys: list[str] = []
    fields: Counter[str] = Counter()
    ffiles: list[str] = []
    errors: list[str] = []
    for doc in docs:
        a, b = theirs(doc), ours(doc)
        used[b.parser or "none (refused)"] += 1
        if bool(a.error) != bool(b.error):
            errors.append(doc.name)
        if a.keys != b.keys or [i.key for i in a.items] != [i.key for i in b.items]:
            keys.append(doc.name)
        differs = False
        for x, y in zip(a.items, b.items, strict=False):
            for field, u, v in zip(FIELDS[1:], astuple(x)[3:], astuple(y)[3:], strict=True):
                if u != v:
                    fields[field] += 1
                    differs = True
        if differs:
            ffiles.append(doc.name)
    print(
        f"{'parse_feed':>15}: {min(t_ours):6.2f}-{max(t_ours):6.2f} s over {runs} runs"
        f" (feedparser only: {min(t_theirs):.2f}-{max(t_theirs):.2f} s; every item cleaned);"
        f" newest 3 cleaned: {min(f_ours):.2f}-{max(f_ours):.2f} s"
        f" (feedparser only: {min(f_theirs):.2f}-{max(f_theirs):.2f} s);"
        f" parser used: {', '.join(f'{k} {v}' for k, v in used.most_common())};"
        f" keys differ in {len(keys)}, fields differ in {len(ffiles)}"
        f" ({', '.join(f'{k} {v}' for k, v in fields.most_common()) or 'none'}),"
        f" error/no-error differs in {len(errors)}"
    )
    for label, names in (("keys", keys), ("ffiles", ffiles), ("errors", errors)):
        if verbose and names:
            print(f"{'':>17}{label}: {' '.join(names[:verbose])}")
    return {
        "speedup": min(f_theirs) / max(min(f_ours), 1e-9),
        "keys": len(keys),
        "fields": len(ffiles),
        "fallback": used["feedparser"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", help="feedparser's sdist directory, its tests/ or any folder of feeds (else downloaded)")  # fmt: skip
    ap.add_argument("--farm", type=int, default=200, help="N for bench/feeds.py's Plan")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--verbose", type=int, default=0, help="list up to this many files per class")
    args = ap.parse_args()
    sets = [("feedparser corpus", corpus(args.corpus)), ("farm", farm(args.farm))]
    totals = Counter()
    for title, docs in sets:
        report(title, docs, args.runs, args.verbose)
        result = report_parse_feed(title, docs, args.runs, args.verbose)
        if title == "farm":
            totals["speedup"] = result["speedup"]
        for k in ("keys", "fields", "fallback"):
            totals[k] += result[k]
    print(
        f"\nparse_feed_speedup={totals['speedup']:.1f} key_mismatches={totals['keys']} "
        f"field_mismatches={totals['fields']} fallback_files={totals['fallback']}"
    )


if __name__ == "__main__":
    main()
