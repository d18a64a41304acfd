"""Data and file names as plain, visible text for a terminal: never markup, never control sequences.

Rich reads ``[...]`` in a plain string as markup (``[/b]`` crashes, ``[x]`` vanishes) and
passes ESC through, so a file name or a cell could restyle, clear or forge the screen.
``printable`` spells every control character, and the bidirectional overrides that
reorder what is shown, as an escape (``\\x1b``, ``\\n``, ``\\u202e``); ``text`` wraps the
result in a Rich ``Text``, which is never parsed as markup.
"""

from __future__ import annotations

import re

from rich.text import Text

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 and C1 controls, DEL, and the Unicode controls that reorder or hide text on screen.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _escape(m: re.Match) -> str:
    ch = m.group()
    if ch in _NAMED:
        return _NAMED[ch]
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def printable(value: object, keep_newlines: bool = False) -> str:
    """``value`` as text a terminal shows as it is (``keep_newlines`` for our own multi-line messages)."""
    s = "" if value is None else str(value)
    if keep_newlines:
        return "\n".join(_UNSAFE.sub(_escape, line) for line in s.split("\n"))
    return _UNSAFE.sub(_escape, s)


def text(value: object, style: str = "", keep_newlines: bool = False) -> Text:
    """``value`` as a Rich Text: printed verbatim (after ``printable``), never read as markup."""
    return Text(printable(value, keep_newlines=keep_newlines), style=style)
