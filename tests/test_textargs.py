"""The raw-text parser shared by Slack and the console."""

from __future__ import annotations

import pytest

from bot.errors import UsageError
from bot.textargs import parse, split_words


def texts(words):
    return [w.text for w in words]


def test_positional_words_and_quoted_strings():
    args = parse('create "Which practice?" Incident "Change enablement"')
    assert texts(args.positional) == ["create", "Which practice?", "Incident", "Change enablement"]
    assert [w.quoted for w in args.positional] == [False, True, False, True]


def test_key_value_with_and_without_quotes():
    args = parse('title="itSMF UK Conference" tz=Europe/London max=2')
    assert args.named == {"title": "itSMF UK Conference", "tz": "Europe/London", "max": "2"}
    assert args.positional == []


def test_flags_and_dashed_keys_normalise_to_underscores():
    args = parse("--anonymous --dry-run --closes=2d")
    assert args.flags == ["anonymous", "dry_run"]
    assert args.named == {"closes": "2d"}


def test_curly_quotes_from_chat_clients_are_quotes():
    args = parse("“Is there an ITSM community?” title=“Yes, really”")
    assert texts(args.positional) == ["Is there an ITSM community?"]
    assert args.named["title"] == "Yes, really"


def test_escaped_quote_inside_quotes():
    assert texts(split_words(r'"say \"just do it\""')) == ['say "just do it"']


def test_a_quoted_key_value_is_a_plain_value():
    args = parse('"a=b"')
    assert args.named == {}
    assert texts(args.positional) == ["a=b"]


def test_apostrophe_inside_a_word_is_not_a_quote():
    assert texts(parse("don't panic").positional) == ["don't", "panic"]


def test_unclosed_quote_is_a_clear_error():
    with pytest.raises(UsageError, match="quote is never closed"):
        parse('create "Which practice? Incident')


def test_same_key_twice_is_an_error_naming_it():
    with pytest.raises(UsageError) as err:
        parse("tz=UTC tz=Europe/Oslo")
    assert err.value.option == "tz"
