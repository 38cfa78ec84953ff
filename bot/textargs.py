"""The one parser for raw command text (Slack slash commands and the console).

Grammar, left to right:  word  |  "quoted words"  |  key=value  |  key="quoted value"
|  --flag  |  --key=value.  Curly quotes count as quotes, since chat clients insert them.
A backslash escapes a quote inside quotes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.errors import UsageError

_OPENERS = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201d", "'": "'", "\u2018": "\u2019"}
_CLOSERS = {'"', "\u201d", "'", "\u2019"}
_KEY = re.compile(r"^-{0,2}([A-Za-z][A-Za-z0-9_-]*)=")
_FLAG = re.compile(r"^--([A-Za-z][A-Za-z0-9_-]*)$")


@dataclass
class Word:
    text: str
    quoted: bool = False


@dataclass
class Args:
    positional: list[Word] = field(default_factory=list)
    named: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


def split_words(text: str) -> list[Word]:
    """Split into words, honouring quotes; a key="value" stays one word without the quotes."""
    words: list[Word] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        buf: list[str] = []
        quoted = False
        while i < n and not text[i].isspace():
            ch = text[i]
            # A quote opens only at the start of a word or right after `key=`.
            if ch in _OPENERS and (not buf or "".join(buf).endswith("=")):
                # Quoted from the first character: a value, never a key=value or a flag.
                quoted = quoted or not buf
                close = _OPENERS[ch]
                closers = {close} | ({'"', "\u201d"} if ch in '"\u201c\u201e' else set())
                i += 1
                start = i
                while i < n and text[i] not in closers:
                    if text[i] == "\\" and i + 1 < n and text[i + 1] in _CLOSERS:
                        buf.append(text[i + 1])
                        i += 2
                        continue
                    buf.append(text[i])
                    i += 1
                if i >= n:
                    snippet = text[start - 1 : start + 20]
                    raise UsageError(
                        f"A quote is never closed: {snippet}…",
                        hint='Close every "quoted value" with a matching quote.',
                    )
                i += 1
                continue
            buf.append(ch)
            i += 1
        words.append(Word("".join(buf), quoted))
    return words


def parse(text: str) -> Args:
    """Sort words into positional words, key=value pairs and --flags."""
    args = Args()
    for word in split_words(text or ""):
        key = None if word.quoted else _KEY.match(word.text)
        if key:
            name = _norm(key.group(1))
            if name in args.named:
                raise UsageError(f"`{name}` is given twice.", option=name)
            args.named[name] = word.text[key.end() :]
            continue
        flag = None if word.quoted else _FLAG.match(word.text)
        if flag:
            args.flags.append(_norm(flag.group(1)))
            continue
        args.positional.append(word)
    return args


def _norm(name: str) -> str:
    return name.replace("-", "_").lower()
