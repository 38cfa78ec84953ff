"""OPML import/export, through the `itsm-bot feeds` commands on a real database file."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.feeds import opml

OPML = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>mine</title></head><body>
<outline text="ITSM"><outline type="rss" text="ITSM.tools" xmlUrl="https://itsm.tools/feed/"/>
<outline type="rss" title="BMC" text="b" xmlUrl="https://www.bmc.com/blogs/feed/"/></outline>
<outline type="rss" text="bad" xmlUrl="file:///etc/passwd"/>
<outline type="rss" text="dup" xmlUrl="https://itsm.tools/feed/"/>
</body></opml>"""


def test_read_nested_outlines_skipping_bad_and_duplicate_urls():
    found = opml.read(OPML)
    assert [(o.url, o.title) for o in found] == [
        ("https://itsm.tools/feed/", "ITSM.tools"),
        ("https://www.bmc.com/blogs/feed/", "BMC"),
    ]


@pytest.mark.parametrize(
    "data, reason",
    [
        (b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaa">]><opml/>', "DTD"),
        (b'<?xml version="1.0"?><!DOCTYPE opml SYSTEM "http://example.org/x.dtd"><opml/>', "DTD"),
        (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE opml [<!ENTITY a "aaaa">]><opml/>'.encode(
                "utf-16"
            ),
            "DTD",
        ),  # fmt: skip
        (b"<opml><body>", "well-formed"),
        (b"<rss/>", "not an OPML file"),
    ],
)
def test_read_refuses_bad_files(data: bytes, reason: str):
    with pytest.raises(ValueError, match=reason):
        opml.read(data)


def test_import_then_export_round_trip(tmp_path):
    source = tmp_path / "in.opml"
    source.write_bytes(OPML)
    db = str(tmp_path / "bot.db")
    runner = CliRunner()
    done = runner.invoke(
        main, ["feeds", "import", str(source), "--channel", "slack:T1:C1", "--db", db]
    )
    assert done.exit_code == 0, done.output
    assert "2 feed(s) read, 2 new subscription(s) for slack:T1:C1" in done.output
    again = runner.invoke(main, ["feeds", "import", str(source), "--channel", "slack:T1:C1", "--db", db])  # fmt: skip
    assert "0 new subscription(s)" in again.output
    exported = runner.invoke(main, ["feeds", "export", "--db", db])
    assert exported.exit_code == 0
    back = opml.read(exported.stdout_bytes)
    assert [(o.url, o.title) for o in back] == [
        ("https://itsm.tools/feed/", "ITSM.tools"),
        ("https://www.bmc.com/blogs/feed/", "BMC"),
    ]


def test_import_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.opml"
    bad.write_bytes(b"<opml><body>")
    runner = CliRunner()
    done = runner.invoke(main, ["feeds", "import", str(bad), "--db", str(tmp_path / "x.db")])
    assert done.exit_code != 0 and "not well-formed XML" in done.output
    good = tmp_path / "good.opml"
    good.write_bytes(OPML)
    wrong = runner.invoke(main, ["feeds", "import", str(good), "--channel", "general", "--db", str(tmp_path / "x.db")])  # fmt: skip
    assert wrong.exit_code != 0 and "platform:workspace:channel" in wrong.output
