"""The fast first pass (feedparser-rs) against feedparser: the same keys and displayed fields.

parse_feed reads with feedparser-rs first and falls back to feedparser; the reference here is
parse_feed with the first pass switched off. A changed key would repost an item, so every
comparison covers keys, the order of keys, and every displayed field of every item.
"""

from __future__ import annotations

import http.server
import random
import threading
from dataclasses import astuple
from pathlib import Path

import feedparser_rs
import pytest

from bench.feeds import Plan
from bot.feeds import parse
from bot.feeds.parse import FIRST_PASS, ParsedFeed, parse_feed

pytestmark = pytest.mark.filterwarnings(
    "ignore:To avoid breaking existing software:DeprecationWarning"
)
CORPUS = Path(__file__).parent / "data" / "feedparser-corpus"
URL = "http://127.0.0.1/feed.xml"


def _headers(body: bytes) -> tuple[str, str]:
    """The Content-Type and Content-Location a corpus file asks to be served with."""
    found = dict(
        (k.strip().lower(), v.strip())
        for k, v in (
            line[len(b"Header:") :].split(b":", 1)
            for line in body[:4000].splitlines()
            if line.startswith(b"Header:") and b":" in line[len(b"Header:") :]
        )
    )
    ctype = found.get(b"content-type", b"").decode("latin-1")
    return ctype, found.get(b"content-location", URL.encode()).decode("latin-1")


def _both(body: bytes, url: str = URL, content_type: str = "") -> tuple[ParsedFeed, ParsedFeed]:
    reference = parse._parse_feed(body, url, content_type, 300, None, first_pass=False)
    return reference, parse_feed(body, url, content_type)


def _assert_same(reference: ParsedFeed, ours: ParsedFeed, name: str) -> None:
    assert reference.parser in ("feedparser", ""), name
    assert ours.keys == reference.keys, name
    assert [astuple(i) for i in ours.items] == [astuple(i) for i in reference.items], name
    assert (ours.title, ours.link, ours.ttl) == (reference.title, reference.link, reference.ttl)
    assert bool(ours.error) == bool(reference.error), (name, ours.error, reference.error)


def _corpus() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "LICENSE")


def test_corpus_subset_reads_the_same_whichever_parser():
    files = _corpus()
    assert 200 < len(files) < 500
    used = {"feedparser": 0, FIRST_PASS: 0}
    for path in files:
        body = path.read_bytes()
        content_type, url = _headers(body)
        reference, ours = _both(body, url, content_type)
        _assert_same(reference, ours, str(path))
        if ours.parser:
            used[ours.parser] += 1
    # Both paths really ran: the fast pass on the well-formed feeds it reads like feedparser,
    # feedparser on the rest (ill-formed, hash-keyed items, xml:base, CDF, ...).
    assert used[FIRST_PASS] >= 50 and used["feedparser"] >= 150, used


def test_farm_feeds_read_by_the_fast_pass_identically():
    plan = Plan(40)
    for i in plan.fetchable:
        reference, ours = _both(plan.body(i), f"http://127.0.0.1:8000/feed/{i}.xml", "application/rss+xml")  # fmt: skip
        _assert_same(reference, ours, f"farm {i}")
        assert ours.parser == FIRST_PASS and len(ours.items) >= 5


def test_truncated_farm_feed_falls_back_and_keeps_its_complete_items():
    plan = Plan(40)
    body = plan.body(plan.fetchable[0])
    reference, ours = _both(body[: len(body) // 2])
    _assert_same(reference, ours, "truncated")
    assert ours.parser == "feedparser" and ours.items


REALISTIC = {
    "wordpress": b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>ITSM &#8211; Blog</title><link>https://blog.example.org</link><ttl>30</ttl>
<item><title>Change &amp; release: a &#8220;guide&#8221;</title>
<link>https://blog.example.org/2026/11/change-release/</link>
<dc:creator><![CDATA[Ann Other]]></dc:creator><pubDate>Mon, 23 Nov 2026 08:00:00 +0000</pubDate>
<category><![CDATA[ITIL]]></category><category><![CDATA[Change]]></category>
<guid isPermaLink="false">https://blog.example.org/?p=123</guid>
<description><![CDATA[<p>Short &hellip; text</p>]]></description>
<content:encoded><![CDATA[<p>Long <b>text</b> with <a href="/x">a link</a>.</p>]]></content:encoded>
<media:content url="https://blog.example.org/i.jpg" medium="image"/></item>
<item><title>Second</title><link>/2026/11/second/</link><guid>https://blog.example.org/?p=124</guid>
<pubDate>Sun, 22 Nov 2026 08:00:00 GMT</pubDate><author>ed@example.org (Ed)</author>
<enclosure url="https://blog.example.org/e.png" type="image/png" length="10"/></item>
</channel></rss>""",
    "atom-authors": """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title type="html">Caf\u00e9 &lt;ops&gt;</title>
<link rel="alternate" href="https://ops.example.org/"/><id>tag:ops.example.org,2026:feed</id>
<updated>2026-11-23T09:00:00Z</updated><author><name>The Team</name></author>
<entry><title>Own author</title><id>tag:ops.example.org,2026:1</id>
<link href="https://ops.example.org/1"/><published>2026-11-20T10:00:00+01:00</published>
<updated>2026-11-21T10:00:00Z</updated><author><name>Bo</name></author>
<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>One</p></div></content></entry>
<entry><title>Inherits</title><id>2</id><link href="/2"/><updated>2026-11-22T10:00:00Z</updated>
<summary>Two</summary><category term="Problem"/></entry>
</feed>""".encode(),
    "youtube": b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" xmlns:media="http://search.yahoo.com/mrss/"
 xmlns="http://www.w3.org/2005/Atom"><title>Channel</title><id>yt:channel:x</id>
<entry><id>yt:video:abc</id><yt:videoId>abc</yt:videoId><title>Video</title>
<link rel="alternate" href="https://www.youtube.com/watch?v=abc"/>
<author><name>Channel</name></author><published>2026-11-01T00:00:00+00:00</published>
<media:group><media:title>Video</media:title>
<media:thumbnail url="https://i.ytimg.com/vi/abc/hqdefault.jpg" width="480" height="360"/>
<media:description>About ITSM</media:description></media:group></entry></feed>""",
    "relative-guids": b"""<rss version="2.0"><channel><title>t</title>
<item><title>a</title><guid>item-1</guid><pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate></item>
<item><title>b</title><guid>http:///odd.example.org//x?</guid><link>news/b.html</link>
<pubDate>Tue, 24 Nov 2026 08:00:00 GMT</pubDate></item></channel></rss>""",
    "latin-1 by header": "<rss version='2.0'><channel><title>Caf\u00e9</title><item><title>\u00c9t\u00e9</title><guid>g</guid><pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate></item></channel></rss>".encode(
        "latin-1"
    ),  # fmt: skip
}
CONTENT_TYPES = {"latin-1 by header": "application/rss+xml; charset=ISO-8859-1"}


@pytest.mark.parametrize("name", sorted(REALISTIC))
def test_real_shaped_feeds_take_the_fast_pass_and_read_the_same(name):
    url = "https://blog.example.org/feed/"
    reference, ours = _both(REALISTIC[name], url, CONTENT_TYPES.get(name, "application/xml"))
    _assert_same(reference, ours, name)
    assert ours.parser == FIRST_PASS and ours.items


def test_keys_and_fields_from_the_fast_pass_are_feedparsers():
    url = "https://blog.example.org/feed/"
    feed = parse_feed(REALISTIC["relative-guids"], url)
    assert feed.parser == FIRST_PASS
    keys = sorted(i.key for i in feed.items)
    # feedparser resolves a guid that may be a permalink against the feed's URL, and tidies
    # extra slashes; the fast pass must give the same keys.
    assert keys == ["http://odd.example.org//x?", "https://blog.example.org/feed/item-1"]
    atom = parse_feed(REALISTIC["atom-authors"], "https://ops.example.org/feed")
    authors = {i.title: i.author for i in atom.items}
    assert atom.parser == FIRST_PASS and authors == {"Own author": "Bo", "Inherits": ""}
    latin = parse_feed(REALISTIC["latin-1 by header"], url, CONTENT_TYPES["latin-1 by header"])
    assert latin.title == "Café" and latin.items[0].title == "Été"


def test_guid_not_a_permalink_is_left_as_is():
    body = REALISTIC["relative-guids"].replace(b"<guid>item-1", b'<guid isPermaLink="false">item-1')  # fmt: skip
    reference, ours = _both(body, "https://blog.example.org/feed/")
    _assert_same(reference, ours, "isPermaLink")
    # Which guid the attribute belongs to is feedparser's business: it reads this feed.
    assert ours.parser == "feedparser" and "item-1" in {i.key for i in ours.items}


def test_fallback_reads_a_file_the_fast_parser_refuses():
    body = (CORPUS / "wellformed" / "cdf" / "item_title.xml").read_bytes()
    fast = feedparser_rs.parse(body, sanitize_html=False, resolve_relative_uris=False)
    assert not fast.entries  # feedparser-rs does not read CDF
    feed = parse_feed(body, URL)
    assert feed.parser == "feedparser" and [i.title for i in feed.items] == ["Example item"]


def test_fallback_reads_an_ill_formed_file():
    body = (CORPUS / "illformed" / "rss_incomplete_cdata.xml").read_bytes()
    fast = feedparser_rs.parse(body, sanitize_html=False, resolve_relative_uris=False)
    assert fast.bozo
    reference, ours = _both(body)
    _assert_same(reference, ours, "incomplete cdata")
    assert ours.parser == "feedparser" and ours.warning


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\xff garbage \xfe",
        b"<html><body>hello</body></html>",
        b"",
        b"<?xml version='1.0'?><nofeed><a>x</a></nofeed>",
        b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1"}]}',
    ],
)
def test_malformed_feed_gives_a_clear_error(body):
    feed = parse_feed(body, URL)
    assert feed.error.startswith("not a feed") and not feed.items and not feed.keys
    assert feed.parser == "feedparser"


def test_refused_dtd_reaches_neither_parser():
    bomb = b"""<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><rss version="2.0"><channel><title>&b;</title>
<item><guid>g</guid></item></channel></rss>"""
    feed = parse_feed(bomb, URL)
    assert "expansion" in feed.error and feed.parser == ""


def test_a_body_that_is_a_url_is_not_fetched():
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.end_headers()
            self.wfile.write(b'<rss version="2.0"><channel><item><guid>x</guid></item></channel></rss>')  # fmt: skip

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
        for body in (target.encode(), b"  " + target.encode() + b"\n"):
            feed = parse_feed(body, URL)
            assert feed.error and not feed.items
    finally:
        server.shutdown()
        thread.join()
    assert hits == []


# --- Generated items: the pieces real feeds combine, in random combinations -----------------

RSS_PIECES = {
    "title": [
        "<title>T &amp; &#8217; x</title>",
        "<title><![CDATA[<b>Bold</b> & co]]></title>",
        "",
        "<title>  spaced\n title </title>",
    ],  # fmt: skip
    "guid": [
        "",
        "<guid>g1</guid>",
        "<guid>HTTP://Example.org/A?</guid>",
        "<guid>  https://e.org/a&amp;b  </guid>",
        "<guid><![CDATA[https://e.org/c?x=1&y=2]]></guid>",
        '<guid isPermaLink="false">42</guid>',
        "<guid>https://e.org/p;</guid>",
        "<guid>https://e.org/a#</guid>",
        "<guid>tag:e.org,2026:1</guid>",
        "<guid>/rel/1</guid>",
        "<guid>../up</guid>",
    ],  # fmt: skip
    "link": [
        "",
        "<link>https://e.org/x</link>",
        "<link> /x?a=1&amp;b=2 </link>",
        "<link>HTTPS://E.ORG/Y#</link>",
        "<link>https:///e.org/z</link>",
        "<link><![CDATA[https://e.org/q]]></link>",
        "<link>javascript:alert(1)</link>",
        "<link>https://[bad</link>",
    ],  # fmt: skip
    "date": [
        "<pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate>",
        "<pubDate>2026-11-23T08:00:00Z</pubDate>",
        "<dc:date>2026-11-23T08:00:00+02:00</dc:date>",
        "<pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate><dc:date>2025-01-01T00:00:00Z</dc:date>",
        "<pubDate>garbage</pubDate>",
        "",
    ],  # fmt: skip
    "extra": [
        "<author>ed@example.org (Ed)</author>",
        "<author>a@b.c (Al)</author>",
        "<dc:creator>Zed</dc:creator>",
        '<category>A</category><category domain="x">B</category>',
        '<enclosure url="https://e.org/i.jpg" type="image/jpeg"/>',
        '<media:thumbnail url="https://e.org/t.png"/>',
        "<description>&lt;p&gt;hi&lt;/p&gt;</description><content:encoded><![CDATA[<p>long</p>]]></content:encoded>",
        "<content:encoded><![CDATA[<p>only content</p>]]></content:encoded>",
    ],  # fmt: skip
}
ATOM_PIECES = {
    "title": [
        "<title>Plain &amp; x</title>",
        '<title type="html">&lt;b&gt;B&lt;/b&gt;</title>',
        '<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><b>X</b></div></title>',
        "",
    ],  # fmt: skip
    "guid": [
        "",
        "<id>urn:uuid:1</id>",
        "<id>tag:e.org,2026:1</id>",
        "<id>https://e.org/a?</id>",
        "<id>e2</id>",
        "<id> HTTP://E.org/b </id>",
    ],  # fmt: skip
    "link": [
        "",
        '<link href="https://e.org/x"/>',
        '<link rel="alternate" type="text/html" href="/y"/>',
        '<link rel="enclosure" type="image/png" href="https://e.org/i.png"/>',
        '<link rel="self" href="https://e.org/self"/><link href="https://e.org/alt"/>',
        '<link href="https:///e.org/z"/>',
        '<link rel="related" href="https://e.org/r"/>',
    ],  # fmt: skip
    "date": [
        "",
        "<updated>2026-11-23T08:00:00Z</updated>",
        "<published>2026-11-20T08:00:00+02:00</published>",
        "<published>2026-11-20T08:00:00Z</published><updated>2026-11-23T08:00:00Z</updated>",
        "<issued>2026-11-20T08:00:00Z</issued>",
        "<updated>bad</updated>",
    ],  # fmt: skip
    "extra": [
        "<author><name>Ann</name><email>a@e.org</email></author>",
        "<author><name>Bo</name></author><author><name>Cy</name></author>",
        '<category term="ITIL"/>',
        '<category term="c" label="Label"/>',
        "<summary>Sum</summary>",
        '<content type="html">&lt;p&gt;C&lt;/p&gt;</content>',
        '<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>X</p></div></content>',
        '<media:thumbnail url="https://e.org/t.png"/>',
        '<media:content url="https://e.org/m.jpg" medium="image"/>',
        "<contributor><name>Dee</name></contributor>",
    ],  # fmt: skip
}
NS = 'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/" xmlns:content="http://purl.org/rss/1.0/modules/content/"'  # fmt: skip


def _generated(kind: str, rng: random.Random) -> bytes:
    pieces = RSS_PIECES if kind == "rss" else ATOM_PIECES
    tag = "item" if kind == "rss" else "entry"
    items = "".join(
        f"<{tag}>{''.join(rng.choice(pieces[p]) for p in ('title', 'guid', 'link', 'date'))}"
        f"{''.join(rng.sample(pieces['extra'], rng.randint(0, 3)))}</{tag}>"
        for _ in range(rng.randint(1, 3))
    )
    if kind == "rss":
        return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" {NS}><channel><title>c</title><link>https://e.org/</link>{items}</channel></rss>'.encode()  # fmt: skip
    author = rng.choice(["", "<author><name>Feed Author</name></author>"])
    return f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" {NS}><title>F</title><id>urn:f</id>{author}{items}</feed>'.encode()  # fmt: skip


@pytest.mark.parametrize("kind", ["rss", "atom"])
def test_generated_feeds_read_the_same_whichever_parser(kind):
    rng = random.Random(20261123)
    fast = 0
    for n in range(400):
        body = _generated(kind, rng)
        url = rng.choice(["https://e.org/feed/", ""])
        reference, ours = _both(body, url, f"application/{kind}+xml")
        _assert_same(reference, ours, f"{kind} {n}: {body!r}")
        fast += ours.parser == FIRST_PASS
    assert fast > 100  # most combinations are read by the fast pass, the rest fall back
