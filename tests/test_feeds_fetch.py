"""The fetcher against a local feed server: every way a feed server can answer."""

from __future__ import annotations

import pytest

from bot.fetch import Fetcher, check_address, check_url
from tests.fakes import feed_server as fake_feeds
from tests.fakes.feed_server import FeedServer, entries, rss

feed_server = fake_feeds.feed_server  # the fixture

BODY = rss(entries(3))


@pytest.fixture
async def fetcher():
    f = Fetcher(timeout=0.5, max_bytes=200_000, allow_private=True)
    yield f
    await f.close()


async def test_plain_fetch_then_304_with_validators(feed_server: FeedServer, fetcher: Fetcher):
    url = feed_server.set("a.xml", body=BODY)
    first = await fetcher.fetch(url)
    assert first.ok and first.body == BODY and first.etag
    second = await fetcher.fetch(url, first.etag, first.last_modified)
    assert second.not_modified and second.body == b""
    sent = feed_server.hits("a.xml")[1].headers
    assert sent["If-None-Match"] == first.etag
    assert sent["If-Modified-Since"] == first.last_modified
    by_date = await fetcher.fetch(url, None, first.last_modified)
    assert by_date.not_modified


async def test_gzip_body_is_decompressed(feed_server: FeedServer, fetcher: Fetcher):
    url = feed_server.set("gz.xml", body=BODY, gzip=True)
    result = await fetcher.fetch(url)
    assert result.ok and result.body == BODY


async def test_timeout_on_a_hanging_server(feed_server: FeedServer, fetcher: Fetcher):
    url = feed_server.set("hang.xml", body=BODY, hang=True)
    result = await fetcher.fetch(url)
    assert not result.ok and "within 0.5 s" in result.error


async def test_slow_but_in_time_is_fine(feed_server: FeedServer, fetcher: Fetcher):
    url = feed_server.set("slow.xml", body=BODY, delay=0.1)
    assert (await fetcher.fetch(url)).ok


@pytest.mark.parametrize("status", [404, 500, 503])
async def test_error_statuses(feed_server: FeedServer, fetcher: Fetcher, status: int):
    url = feed_server.set("e.xml", status=status, headers={"Retry-After": "120"})
    result = await fetcher.fetch(url)
    assert not result.ok and result.status == status and f"HTTP {status}" in result.error
    assert result.retry_after == 120


async def test_oversized_body_refused_streamed_and_declared(
    feed_server: FeedServer, fetcher: Fetcher
):
    streamed = await fetcher.fetch(feed_server.set("huge.xml", huge=5_000_000))
    assert not streamed.ok and "larger than 200,000 bytes" in streamed.error
    declared = await fetcher.fetch(feed_server.set("big.xml", body=b"x" * 300_000))
    assert not declared.ok and "larger than" in declared.error


async def test_gzip_bomb_is_capped_after_decompression(feed_server: FeedServer, fetcher: Fetcher):
    url = feed_server.set("bomb.xml", body=b" " * 10_000_000, gzip=True)
    result = await fetcher.fetch(url)
    assert not result.ok and "larger than" in result.error


async def test_truncated_body(feed_server: FeedServer, fetcher: Fetcher):
    result = await fetcher.fetch(feed_server.set("cut.xml", body=BODY, truncate=True))
    assert not result.ok and "truncated" in result.error


async def test_permanent_redirect_reports_new_address(feed_server: FeedServer, fetcher: Fetcher):
    new = feed_server.set("new.xml", body=BODY)
    old = feed_server.set("old.xml", status=301, location="/new.xml")
    result = await fetcher.fetch(old)
    assert result.ok and result.moved_to == new and result.url == new


async def test_temporary_redirect_keeps_address(feed_server: FeedServer, fetcher: Fetcher):
    feed_server.set("tmp-target.xml", body=BODY)
    feed_server.set("perm.xml", status=308, location="/tmp-hop.xml")
    feed_server.set("tmp-hop.xml", status=302, location="/tmp-target.xml")
    result = await fetcher.fetch(feed_server.url("perm.xml"))
    assert result.ok and result.moved_to is None


async def test_redirect_loop_stops(feed_server: FeedServer, fetcher: Fetcher):
    feed_server.set("loop.xml", status=302, location="/loop.xml")
    result = await fetcher.fetch(feed_server.url("loop.xml"))
    assert not result.ok and "redirects" in result.error


async def test_redirect_to_another_scheme_refused(feed_server: FeedServer, fetcher: Fetcher):
    feed_server.set("ftp.xml", status=302, location="ftp://example.org/feed")
    result = await fetcher.fetch(feed_server.url("ftp.xml"))
    assert not result.ok and "http" in result.error


async def test_private_addresses_refused_unless_allowed(feed_server: FeedServer):
    url = feed_server.set("a.xml", body=BODY)
    strict = Fetcher(timeout=1)
    try:
        literal = await strict.fetch(url)
        assert not literal.ok and "loopback" in literal.error and "refused" in literal.error
        by_name = await strict.fetch(url.replace("127.0.0.1", "localhost"))
        assert not by_name.ok and "refused" in by_name.error
        assert (await strict.fetch(url, allow_private=True)).ok  # the per-feed allowance
    finally:
        await strict.close()
    assert feed_server.hits("a.xml") and len(feed_server.hits("a.xml")) == 1


async def test_resolver_refuses_names_of_private_hosts():
    from bot.fetch import BlockedAddress, GuardedResolver

    resolver = GuardedResolver()
    try:
        with pytest.raises(BlockedAddress):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.10", "172.16.5.4", "169.254.169.254", "::1",
     "fe80::1", "0.0.0.0", "::ffff:127.0.0.1", "100.64.0.1", "240.0.0.1"],
)  # fmt: skip
def test_non_public_addresses_are_blocked(address: str):
    from bot.fetch import BlockedAddress

    with pytest.raises(BlockedAddress):
        check_address(address)


def test_public_address_and_names_pass():
    check_address("93.184.216.34")
    check_address("example.org")  # names are checked once resolved


@pytest.mark.parametrize("url", ["ftp://x.org/f", "file:///etc/passwd", "javascript:alert(1)", "http://"])  # fmt: skip
def test_only_http_urls(url: str):
    with pytest.raises(ValueError):
        check_url(url)
