"""Parsing and normalising items: keys, clean summaries, images, order, refused bodies."""

from __future__ import annotations

from bot.feeds.filters import make_filter
from bot.feeds.parse import clean_text, discover, parse_feed, trim
from tests.fakes.feed_server import Entry, entries, rss

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom &amp; co</title>
<entry><title type="html">&lt;b&gt;Bold&lt;/b&gt; news</title><id>urn:a:1</id>
<link href="/posts/1"/><updated>2026-11-20T10:00:00Z</updated>
<author><name>Ann</name></author>
<content type="html">&lt;p&gt;First.&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;p&gt;Second.&lt;/p&gt;</content>
<media:thumbnail xmlns:media="http://search.yahoo.com/mrss/" url="https://example.org/t.png"/>
</entry></feed>"""


def test_keys_guid_then_link_then_hash():
    body = rss([
        Entry("with guid", guid="g-1", link="https://example.org/1"),
        Entry("with link", link="https://example.org/2"),
        Entry("bare", date="Mon, 23 Nov 2026 08:00:00 +0000"),
    ])  # fmt: skip
    items = sorted(parse_feed(body).items, key=lambda i: i.index)
    assert [i.key for i in items][:2] == ["g-1", "https://example.org/2"]
    assert items[2].key.startswith("h:") and len({i.key_hash for i in items}) == 3
    again = sorted(parse_feed(body).items, key=lambda i: i.index)
    assert [i.key_hash for i in again] == [i.key_hash for i in items]  # stable


def test_repeated_guid_inside_one_feed_is_one_item():
    body = rss([Entry("a", guid="same"), Entry("b", guid="same")])
    assert len(parse_feed(body).items) == 1


def test_atom_item_normalised():
    feed = parse_feed(ATOM, url="https://example.org/feed.atom")
    item = feed.items[0]
    assert feed.title == "Atom & co"
    assert item.title == "Bold news"
    assert item.link == "https://example.org/posts/1"
    assert item.summary == "First. Second."
    assert item.author == "Ann"
    assert item.image == "https://example.org/t.png"
    assert item.published == 1795168800.0


def test_enclosure_image_and_categories():
    body = rss(
        [Entry("x", guid="x", image="https://example.org/i.png", categories=("ITIL", "BRM"))]
    )
    item = parse_feed(body).items[0]
    assert item.image == "https://example.org/i.png" and item.categories == ("ITIL", "BRM")


def test_chronological_is_oldest_first():
    items = parse_feed(rss(entries(4))).chronological()
    assert [i.title for i in items] == ["item 1", "item 2", "item 3", "item 4"]
    undated = parse_feed(rss([Entry("new", guid="n", date=""), Entry("old", guid="o", date="")]))
    assert [i.title for i in undated.chronological()] == ["old", "new"]


def test_clean_text_strips_tags_decodes_entities_collapses_space():
    html = '<p>Fish &amp; chips</p>\n\n<p onclick="x()">caf&eacute;  <img src=x onerror=alert(1)>ok</p>'
    assert clean_text(html) == "Fish & chips café ok"
    assert clean_text("<style>p{}</style><script>bad()</script>text") == "text"
    assert "<script" not in clean_text("&lt;script&gt;alert(1)&lt;/script&gt;")


def test_trim_at_a_sentence():
    text = "First sentence here. " * 30
    cut = trim(text, 100)
    assert cut.endswith(".") and len(cut) <= 100
    words = trim("word " * 100, 50)
    assert words.endswith("…") and len(words) <= 51


def test_xml_bomb_refused_without_parsing():
    bomb = b"""<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]><rss version="2.0"><channel><title>&c;</title></channel></rss>"""
    assert "expansion" in parse_feed(bomb).error
    external = b"""<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>&x;</title></channel></rss>"""
    assert "external" in parse_feed(external).error


def test_xml_bomb_refused_in_any_unicode_encoding():
    bomb = """<?xml version="1.0" encoding="{}"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><rss version="2.0"><channel><title>&b;</title>
<item><title>&b;</title><guid>g</guid></item></channel></rss>"""
    for encoding in ("utf-16", "utf-16-be", "utf-32"):
        body = bomb.format(encoding.upper()).encode(encoding)
        assert "expansion" in parse_feed(body).error, encoding


def test_not_a_feed():
    assert parse_feed(b"<html><body>hello</body></html>").error.startswith("not a feed")
    assert parse_feed(b"\x00\xff garbage").error


def test_truncated_xml_still_yields_complete_items():
    body = rss(entries(5))
    feed = parse_feed(body[: int(len(body) * 0.7)])
    assert feed.items and all(i.key for i in feed.items)


def test_discover_alternate_links():
    page = b"""<html><head><link rel="stylesheet" href="/s.css">
<link rel="alternate" type="application/rss+xml" href="/feed/">
<link rel="alternate" type="application/atom+xml" href="https://example.org/atom">
<link rel="alternate" type="text/html" href="/other"></head></html>"""
    assert discover(page, "https://example.org/blog/") == [
        "https://example.org/feed/",
        "https://example.org/atom",
    ]


def test_filters_words_and_regex():
    items = parse_feed(rss([
        Entry("Major incident review", guid="1", categories=("ITIL",)),
        Entry("Change advisory boards", guid="2", summary="About CAB meetings"),
        Entry("Incidental music", guid="3"),
    ])).items  # fmt: skip
    items.sort(key=lambda i: i.index)
    titles = lambda f: [i.title for i in items if f.matches(i)]  # noqa: E731
    assert titles(make_filter("incident", "")) == ["Major incident review"]
    assert titles(make_filter("itil, cab", "")) == ["Major incident review", "Change advisory boards"]  # fmt: skip
    assert titles(make_filter("/^(major|change)/", "")) == ["Major incident review", "Change advisory boards"]  # fmt: skip
    assert titles(make_filter("", "review")) == ["Change advisory boards", "Incidental music"]


def test_want_fills_only_what_is_needed():
    from bot.feeds.parse import Want

    body = rss(entries(6))
    everything = parse_feed(body)
    assert everything.keys == [i.key_hash for i in everything.items] and len(everything.keys) == 6
    newest = parse_feed(body, want=Want(newest=2, unseen=False))
    assert newest.keys == everything.keys
    assert [i.title for i in newest.items] == ["item 5", "item 6"]
    seen = frozenset(i.key_hash for i in everything.items if i.title != "item 3")
    unseen = parse_feed(body, want=Want(seen=seen, unseen=True, newest=0))
    assert [i.title for i in unseen.items] == ["item 3"]
