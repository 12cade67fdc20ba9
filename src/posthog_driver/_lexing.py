"""Just enough of HogQL's lexical rules to find words and `{placeholders}` in a query's text:
strings, quoted names and comments are skipped, brackets tracked. Not a parser: PostHog parses;
this only keeps the driver from mistaking text inside a string for a keyword or placeholder."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal, NamedTuple

__all__ = ["Token", "tokens"]

_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")


class Token(NamedTuple):
    kind: Literal["word", "placeholder"]
    text: str  # the word, or the placeholder's name
    start: int
    end: int
    depth: int  # brackets open around it: 0 is the top level


def tokens(text: str) -> Iterator[Token]:
    i, depth, end = 0, 0, len(text)
    while i < end:
        char = text[i]
        if char in "'\"`":
            j = i + 1
            while j < end and text[j] != char:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        elif text.startswith(("--", "//", "#"), i):  # HogQL's three line comments
            newline = text.find("\n", i)
            i = end if newline < 0 else newline
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            i = end if close < 0 else close + 2
        elif char == "{" and (match := _PLACEHOLDER.match(text, i)):
            yield Token("placeholder", match.group(1), i, match.end(), depth)
            i = match.end()
        elif char.isalpha() or char in "_$":  # `$browser` is one name, not `browser`
            j = i
            while j < end and (text[j].isalnum() or text[j] in "_$"):
                j += 1
            yield Token("word", text[i:j], i, j, depth)
            i = j
        else:
            depth += (char in "([{") - (char in ")]}")
            i += 1
