"""The last check on every SQL string sent to the engine: lex it as ClickHouse does, fail closed.

Whatever produced the SQL (the HogQL compiler), this module re-reads the final text the way
ClickHouse's own lexer will and refuses it unless it is:

- exactly one statement that starts with ``SELECT``, ``WITH`` or ``(``, with no ``;``;
- free of comments and of ``$``: ClickHouse reads ``$tag$ ... $tag$`` as a string *anywhere a
  bare word can stand*, so a ``$`` outside quotes can swallow part of the query and turn the
  inside of a later string literal into live SQL;
- made only of tokens it knows: quoted strings and identifiers (closed, with ClickHouse's
  backslash and doubled-quote escapes), strict numbers, operators from a short list, query
  parameters ``{name:Type}``, and bare words that the caller says its generator emits (keywords,
  function and type names). Any other word, character or byte is refused.

It is a second wall, not the first: the compiler only prints what it knows, and this guard
proves the printed text says nothing else. It never repairs a string, it only accepts or refuses.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Container
from dataclasses import dataclass

__all__ = ["Token", "UnsafeSQLError", "check_engine_sql", "lex"]


class UnsafeSQLError(Exception):
    """The SQL is not one plain SELECT made of known tokens; ``reason`` says what was found."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"{reason} (at character {position})")
        self.reason = reason
        self.position = position


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token: ``kind`` is word, number, string, identifier, op or param."""

    kind: str
    text: str
    start: int


# ClickHouse's number forms; anything glued to a number (``1e``, ``0x``, ``1abc``) is refused.
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F]+|0[bB][01]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?",
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Longest first, so `<=` is not read as `<` then `=`.
_OPERATORS = (
    "->", "::", "||", "<=", ">=", "!=", "<>", "==",
    "(", ")", "[", "]", "{", "}", ",", ".", "+", "-", "*", "/", "%", "<", ">", "=", ":", "?",
)  # fmt: skip
_SPACE = " \t\n\r\f\v"
_QUOTES = {"'": "string", '"': "identifier", "`": "identifier"}


def lex(sql: str) -> list[Token]:
    """Split ``sql`` into tokens as ClickHouse would; raise ``UnsafeSQLError`` on anything else."""
    tokens: list[Token] = []
    pos, end = 0, len(sql)
    while pos < end:
        char = sql[pos]
        if char in _SPACE:
            pos += 1
        elif char in _QUOTES:
            stop = _quoted_end(sql, pos)
            tokens.append(Token(_QUOTES[char], sql[pos:stop], pos))
            pos = stop
        elif _starts_number(sql, pos):
            pos = _append_number(sql, pos, tokens)
        elif char.isascii() and (char.isalpha() or char == "_"):
            match = _WORD.match(sql, pos)
            assert match is not None
            stop = match.end()
            if stop < end and sql[stop] == "$":
                raise UnsafeSQLError("a `$` inside a bare word", stop)
            tokens.append(Token("word", match.group(), pos))
            pos = stop
        else:
            pos = _append_operator(sql, pos, tokens)
    return tokens


def check_engine_sql(sql: str, words: Container[str], params: Collection[str] = ()) -> list[Token]:
    """Refuse ``sql`` unless it is one SELECT whose bare words, lower-cased, are in ``words``.

    ``{name:Type}`` query parameters must name one of ``params``; their types are made of words
    from ``words``, numbers and strings. Returns the tokens. Example::

        check_engine_sql('SELECT count() FROM "db"."events"', {"select", "count", "from"})
    """
    tokens = lex(sql)
    if not tokens:
        raise UnsafeSQLError("an empty statement", 0)
    first = tokens[0]
    opens_select = first.kind == "word" and first.text.upper() in ("SELECT", "WITH")
    if not opens_select and first.text != "(":
        raise UnsafeSQLError("a statement that is not a SELECT", first.start)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.text == "{":
            index = _check_parameter(tokens, index, params, words)
            continue
        if token.text == "}":
            raise UnsafeSQLError("a `}` outside a query parameter", token.start)
        if token.kind == "word" and token.text.lower() not in words:
            raise UnsafeSQLError(f"the bare word `{token.text[:40]}`", token.start)
        index += 1
    return tokens


_TYPE_TOKENS = frozenset({"word", "number", "string"})


def _check_parameter(
    tokens: list[Token], index: int, params: Collection[str], words: Container[str]
) -> int:
    """``{name:Type}`` at ``index``: a known name, then a type; returns the index after ``}``."""
    opening = tokens[index]
    head = [t.text for t in tokens[index + 1 : index + 3]]
    if len(head) < 2 or head[0] not in params or head[1] != ":":
        raise UnsafeSQLError("a `{` that does not open a known query parameter", opening.start)
    index += 3
    type_start = index
    while index < len(tokens) and tokens[index].text != "}":
        token = tokens[index]
        if token.kind == "word" and token.text.lower() not in words:
            raise UnsafeSQLError(f"the type word `{token.text[:40]}`", token.start)
        if token.kind not in _TYPE_TOKENS and token.text not in ("(", ")", ","):
            raise UnsafeSQLError("a query parameter with an unexpected type", token.start)
        index += 1
    if index >= len(tokens) or index == type_start:
        raise UnsafeSQLError("a malformed query parameter", opening.start)
    return index + 1


def _quoted_end(sql: str, start: int) -> int:
    """End of the quoted token at ``start``; ClickHouse's escapes: ``\\x`` and doubled quotes."""
    quote, pos, end = sql[start], start + 1, len(sql)
    while pos < end:
        char = sql[pos]
        if char == "\\":
            pos += 2
        elif char == quote:
            if pos + 1 < end and sql[pos + 1] == quote:
                pos += 2
            else:
                return pos + 1
        else:
            pos += 1
    raise UnsafeSQLError("an unterminated quoted string or identifier", start)


def _starts_number(sql: str, pos: int) -> bool:
    char = sql[pos]
    return (char.isascii() and char.isdigit()) or (char == "." and sql[pos + 1 : pos + 2].isdigit())


def _append_number(sql: str, pos: int, tokens: list[Token]) -> int:
    match = _NUMBER.match(sql, pos)
    assert match is not None
    stop = match.end()
    if stop < len(sql) and (sql[stop].isalnum() or sql[stop] in "_$."):
        raise UnsafeSQLError("a malformed number", pos)
    tokens.append(Token("number", match.group(), pos))
    return stop


def _append_operator(sql: str, pos: int, tokens: list[Token]) -> int:
    if sql.startswith(("--", "/*", "#"), pos):
        raise UnsafeSQLError("a comment", pos)
    if sql[pos] == "$":
        raise UnsafeSQLError("a `$` outside quotes (ClickHouse reads it as a heredoc string)", pos)
    if sql[pos] == ";":
        raise UnsafeSQLError("a second statement (`;`)", pos)
    for op in _OPERATORS:
        if sql.startswith(op, pos):
            tokens.append(Token("op", op, pos))
            return pos + len(op)
    raise UnsafeSQLError(f"the character {sql[pos]!r}", pos)
