"""Java .properties syntax, as java.util.Properties.load reads it."""

from __future__ import annotations

from broker.config.definitions import ConfigError

_WHITESPACE = " \t\f"
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def parse_properties(text: str) -> dict[str, str]:
    """Keys to values, the last of a repeated key winning.

    Follows Properties.load: `#` or `!` starts a comment line; the key ends at the first
    unescaped `=`, `:` or whitespace; a line ending in an odd number of backslashes
    continues on the next (whose leading whitespace is dropped); `\\t \\n \\r \\f` and
    `\\u` followed by four hex digits are escapes, and a backslash before any other
    character keeps that character. Values keep trailing whitespace (Kafka trims when it
    parses the value). A malformed `\\u` escape raises ConfigError.
    """
    properties: dict[str, str] = {}
    for line_number, logical_line in _logical_lines(text):
        key, value = _split_key_value(logical_line)
        try:
            properties[_unescape(key)] = _unescape(value)
        except ValueError as exc:
            raise ConfigError(f"line {line_number}: {exc}") from exc
    return properties


def _logical_lines(text: str):
    """(first line number, logical line) pairs, comments and blank lines skipped."""
    natural_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    index = 0
    while index < len(natural_lines):
        start = index
        line = natural_lines[index].lstrip(_WHITESPACE)
        index += 1
        if not line or line[0] in "#!":
            continue
        while _ends_in_continuation(line) and index < len(natural_lines):
            line = line[:-1] + natural_lines[index].lstrip(_WHITESPACE)
            index += 1
        if _ends_in_continuation(line):  # a continuation at end of input joins nothing
            line = line[:-1]
        yield start + 1, line


def _ends_in_continuation(line: str) -> bool:
    backslashes = len(line) - len(line.rstrip("\\"))
    return backslashes % 2 == 1


def _split_key_value(line: str) -> tuple[str, str]:
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\":
            index += 2
            continue
        if char in "=:" or char in _WHITESPACE:
            break
        index += 1
    key = line[:index]
    rest = line[index:].lstrip(_WHITESPACE)
    if rest[:1] in ("=", ":"):  # one separator, possibly after whitespace
        rest = rest[1:].lstrip(_WHITESPACE)
    return key, rest


def _unescape(text: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\" or index + 1 >= len(text):
            out.append(char)
            index += 1
            continue
        escaped = text[index + 1]
        if escaped == "u":
            digits = text[index + 2 : index + 6]
            if len(digits) != 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError(f"malformed \\uxxxx encoding: \\u{digits}")
            out.append(chr(int(digits, 16)))
            index += 6
            continue
        out.append(_ESCAPES.get(escaped, escaped))
        index += 2
    return "".join(out)
