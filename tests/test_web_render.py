"""Posts and the core's markup as HTML: escaped first, only the core's own markup made live."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.model import Button, Field, Post, inert, link, time_tag
from bot.web.render import post_html, text_html


def test_text_from_outside_is_escaped_and_cannot_become_a_tag():
    html = str(text_html(inert("<script>alert(1)</script> & <img src=x onerror=alert(1)>")))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in html


def test_bold_spans_code_and_code_shows_what_was_typed():
    html = str(text_html("**`start`: I can't read `some_day` **oops**"))
    assert html.startswith("<strong><code>start</code>: I can&#39;t read <code>some_day</code> </strong>")  # fmt: skip
    code = str(text_html("`**not bold** [x](https://a.org)`"))
    assert (
        code.startswith("<code>**not bold** [x]") and "<a " not in code and "<strong>" not in code
    )


def test_links_open_what_they_say_and_a_disguised_label_shows_the_real_address():
    assert '<a href="https://itsm.tools/a"' in str(
        text_html(link("Read it", "https://itsm.tools/a"))
    )
    disguised = str(text_html("[https://bank.example](https://evil.example/x)"))
    assert "<a " not in disguised and "https://evil.example/x" in disguised


def test_times_are_shown_in_the_zone_with_a_machine_readable_moment():
    moment = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    html = str(text_html(f"Starts {time_tag(moment, 't')}", zone="Europe/Oslo"))
    assert '<time datetime="2026-12-05T09:00:00+00:00">10:00</time>' in html


def test_a_post_keeps_title_link_fields_and_button_labels_escaped():
    post = Post(
        title=inert("<b>Title</b>"), url="https://itsm.tools/p", text="Body",
        fields=[Field("Where", inert("<i>Oslo</i>"))], buttons=[Button("<Going>", "event.rsvp")],
    )  # fmt: skip
    html = str(post_html(post))
    assert '<a href="https://itsm.tools/p"' in html and "&lt;b&gt;Title&lt;/b&gt;" in html
    assert "&lt;i&gt;Oslo&lt;/i&gt;" in html and "&lt;Going&gt;" in html
    assert "javascript:" not in str(post_html(Post(title="x", url="javascript:alert(1)")))
