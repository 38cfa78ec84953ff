"""`itsm-bot feeds import` applies /feed add's address rules, caps one file at
[feeds] import_max, and says what it skipped and why (issue 15)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from bot.cli import main
from bot.feeds import opml


def _opml(*outlines: str) -> bytes:
    body = "\n".join(outlines)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0"><head><title>t</title>'
        f"</head><body>\n{body}\n</body></opml>"
    ).encode()


def _feed(url: str, text: str = "") -> str:
    return f'<outline type="rss" text="{text or url}" xmlUrl="{url}"/>'


HOSTILE = _opml(
    '<outline text="A folder, not a feed">',
    _feed("https://itsm.tools/feed/", "ITSM.tools"),
    "</outline>",
    _feed("http://127.0.0.1/", "Loopback"),
    _feed("http://169.254.169.254/latest/meta-data/", "Metadata"),
    _feed("http://[::1]/", "IPv6 loopback"),
    _feed("http://10.0.0.5/feed", "Private"),
    _feed("http://localhost:8080/rss", "Local name"),
    _feed("http://2130706433/", "Loopback as a number"),
    _feed("http://[::ffff:127.0.0.1]/", "Mapped loopback"),
    _feed("file:///etc/passwd", "A file"),
    _feed("javascript:alert(1)", "Script"),
    '<outline type="rss" text="No address"/>',
    _feed("https://itsm.tools/feed/", "Twice"),
    _feed("https://www.bmc.com/blogs/feed/", "BMC"),
)


def _import(tmp_path: Path, data: bytes, config: str = "", *extra: str):
    source = tmp_path / "in.opml"
    source.write_bytes(data)
    args = ["feeds", "import", str(source), "--db", str(tmp_path / "bot.db"), *extra]
    if config:
        path = tmp_path / "bot.toml"
        path.write_text(config)
        args += ["--config", str(path)]
    return CliRunner().invoke(main, args, env={"ITSM_BOT_CONFIG": None})


def _stored(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        return [r[0] for r in conn.execute("SELECT url FROM feed_sources ORDER BY id")]


def test_private_and_bad_entries_are_skipped_one_line_each_with_the_reason(tmp_path):
    done = _import(tmp_path, HOSTILE, "", "--channel", "slack:T1:C1")

    assert done.exit_code == 0, done.output
    assert _stored(tmp_path) == ["https://itsm.tools/feed/", "https://www.bmc.com/blogs/feed/"]
    lines = done.output.strip().splitlines()
    skipped = [line for line in lines if line.startswith("skipped")]
    assert len(skipped) == 11, done.output
    said = "\n".join(skipped)
    for url, reason in [
        ("http://127.0.0.1/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a private address"),
        ("http://[::1]/", "loopback"),
        ("http://10.0.0.5/feed", "private"),
        ("http://localhost:8080/rss", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("file:///etc/passwd", "http"),
        ("javascript:alert(1)", "http"),
        ("https://itsm.tools/feed/", "twice"),
    ]:
        line = next((s for s in skipped if url in s), None)
        assert line is not None and reason in line, (url, said)
    assert any("No address" in s and "no xmlUrl" in s for s in skipped), said
    assert "allow_private" in said  # the way to allow private ones is named
    assert lines[-1] == (
        "2 feed(s) read, 2 new subscription(s) for slack:T1:C1; 11 entries skipped (see above)."
    )


def test_allow_private_lets_private_addresses_in(tmp_path):
    data = _opml(_feed("http://127.0.0.1/", "Loopback"), _feed("file:///etc/passwd"))

    done = _import(tmp_path, data, "[feeds]\nallow_private = true\n")

    assert done.exit_code == 0, done.output
    assert _stored(tmp_path) == ["http://127.0.0.1/"]
    assert "skipped file:///etc/passwd" in done.output


def test_a_huge_file_is_capped_at_import_max_and_the_report_stays_short(tmp_path):
    data = _opml(*(_feed(f"https://feeds.example.org/{n}.xml") for n in range(20_000)))

    done = _import(tmp_path, data, "", "--channel", "slack:T1:C1")

    assert done.exit_code == 0, done.output
    assert len(_stored(tmp_path)) == 500
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        assert conn.execute("SELECT count(*) FROM feed_subscriptions").fetchone()[0] == 500
    lines = done.output.strip().splitlines()
    assert len(lines) <= 25, len(lines)
    shown = [line for line in lines if line.startswith("skipped")]
    assert 0 < len(shown) <= 20
    assert "import_max" in shown[0] and "500" in shown[0]
    assert lines[-2] == "…and 19480 more skipped entries, not listed", done.output
    assert "19500 entries skipped" in lines[-1]
    assert lines[-1].startswith("500 feed(s) read, 500 new subscription(s)")


def test_import_max_is_a_setting(tmp_path):
    data = _opml(*(_feed(f"https://feeds.example.org/{n}.xml") for n in range(5)))

    done = _import(tmp_path, data, "[feeds]\nimport_max = 2\n")

    assert done.exit_code == 0, done.output
    assert _stored(tmp_path) == [
        "https://feeds.example.org/0.xml",
        "https://feeds.example.org/1.xml",
    ]
    assert len([line for line in done.output.splitlines() if line.startswith("skipped ")]) == 3
    bad = _import(tmp_path, data, "[feeds]\nimport_max = 0\n")
    assert bad.exit_code != 0 and "import_max" in bad.output


def test_what_the_file_says_cannot_write_to_the_terminal(tmp_path):
    # XML 1.0 allows a newline and a C1 control (U+009B is a terminal's CSI) in attributes.
    data = _opml(_feed("file:///x&#10;2 feed(s) read", "&#155;2JEscape"))

    done = _import(tmp_path, data)

    (line,) = [s for s in done.output.splitlines() if s.startswith("skipped")]
    assert "\x9b" not in done.output and "\\x9b2JEscape" in line
    assert "file:///x\\n2 feed(s) read" in line
    assert len(done.output.strip().splitlines()) == 2


def test_the_parser_reports_what_it_skipped():
    reading = opml.parse(HOSTILE)

    assert [o.url for o in reading.outlines] == [
        "https://itsm.tools/feed/",
        "https://www.bmc.com/blogs/feed/",
    ]
    assert len(reading.skipped) == 11
    assert all(s.reason for s in reading.skipped)
