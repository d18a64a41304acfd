"""Bytes enter here, and only here: detect the encoding and decode to text.

Order of evidence, strongest first: a byte-order mark; strict UTF-8 (random
bytes are almost never valid UTF-8, so success is near proof); the charset an
HTML page declares; then detection. Detection asks charset-normalizer for
candidates, adds the Chinese encodings reports really come in (GB18030, which
covers GBK and GB2312, and Big5), decodes the bytes with each, and keeps the
one whose text is most made of common Chinese characters (GB 2312 level 1
plus Big5's frequently-used block): a GBK file read as Big5 (or the reverse)
decodes without error into rare characters, so that share settles it.

Nothing is guessed past that. Empty files, binary files, files cut in the
middle of a character and bytes that decode to mostly nothing are rejected
with ``InputRejected`` and a reason code (``empty``, ``binary``,
``truncated``, ``undecodable``) for the quarantine table.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from functools import lru_cache

from transforms.errors import InputRejected
from transforms.html import declared_charset, looks_like_html

# Magic numbers of the binary files people drop in by mistake, and what to do.
_MAGIC = (
    (b"%PDF", "a PDF", "extract its text (e.g. pdftotext) or save the report page as HTML"),
    (b"PK\x03\x04", "a ZIP/Office (docx, xlsx) archive", "open it and save the report as plain text or HTML"),
    (b"\xd0\xcf\x11\xe0", "an old Office (doc, xls) document", "open it and save the report as plain text"),
    (b"\x89PNG", "a PNG image", "use the report's text, not a screenshot"),
    (b"\xff\xd8\xff", "a JPEG image", "use the report's text, not a photo"),
    (b"GIF8", "a GIF image", "use the report's text, not an image"),
    (b"\x1f\x8b", "a gzip archive", "unpack it first"),
    (b"7z\xbc\xaf", "a 7z archive", "unpack it first"),
    (b"Rar!", "a RAR archive", "unpack it first"),
    (b"\x7fELF", "a program", "remove it from the inbox"),
)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Charset labels pages declare -> the codec that reads them (GB18030 is a superset of GBK/GB2312).
_ALIASES = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030", "gb_2312-80": "gb18030",
    "euc-cn": "gb18030", "gb18030": "gb18030", "big5": "big5", "big5-hkscs": "big5hkscs", "cp950": "cp950",
    "x-x-big5": "big5", "utf-8": "utf-8", "utf8": "utf-8", "unicode": "utf-16",
}
_CHINESE = ("gb18030", "big5", "big5hkscs")
_STRAY_BYTES_SHARE = 0.001  # UTF-8 with at most this share of bad bytes is still UTF-8
_MAX_REPLACEMENT_SHARE = 0.005  # more U+FFFD than this after a lenient decode: undecodable
_MIN_COMMON_SHARE = 0.35  # a non-UTF-8 decode whose non-ASCII text is less common Chinese than this is noise
_DECLARED_SURE = 0.9  # a declared charset whose text is at least this common Chinese is taken without a second look
_DECLARED_MARGIN = 0.1  # another encoding must read this much more common Chinese to overrule the declared one
_BYTE_CONTENT = re.compile(rb"[^ \t\r\n\x00\x0b\x0c]")
_TEXT_CONTENT = re.compile(r"\S")
_NON_ASCII = re.compile(r"[^\x00-\x7f\s]+")
_CONTROL = bytes(range(0, 9)) + bytes(range(14, 32)) + b"\x7f"


@dataclass(frozen=True)
class Decoded:
    """Text decoded from raw bytes, with how it was decoded."""

    text: str
    encoding: str
    confidence: float
    html: bool = False


def decode_report(data: bytes, name: str = "<bytes>") -> Decoded:
    """Decode raw report bytes; raise ``InputRejected`` rather than guess."""
    html = looks_like_html(data[:4096])
    decoded = _decode(data, name, html)
    if not html and looks_like_html(decoded.text[:4096].encode("utf-8", errors="replace")):
        decoded = Decoded(decoded.text, decoded.encoding, decoded.confidence, True)  # e.g. a UTF-16 page
    if not _TEXT_CONTENT.search(decoded.text):
        raise InputRejected("empty", f"{name}: the file holds no text; nothing to extract. Remove it from the inbox or replace it with the report's text.")
    lost = decoded.text.count("\ufffd")
    if lost and lost > max(3, _MAX_REPLACEMENT_SHARE * 20 * len(decoded.text)):
        raise InputRejected("undecodable", f"{name}: {lost} of {len(decoded.text)} characters are replacement marks (U+FFFD): the text was damaged before it reached us. Get a clean copy of the report and put it back in the inbox.")
    return decoded


def _decode(data: bytes, name: str, html: bool) -> Decoded:
    if not _BYTE_CONTENT.search(data):
        raise InputRejected("empty", f"{name}: the file is empty; nothing to extract. Remove it from the inbox or replace it with the report's text.")
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return Decoded(_strict_or_reject(data[len(bom):], enc, name), "utf-8-sig" if enc == "utf-8" else enc, 1.0, html)
    utf16 = _utf16_without_bom(data)
    if utf16 is not None:
        return Decoded(utf16[1], utf16[0], 0.95, html)
    _reject_binary(data, name)
    if b"\x00" in data:
        # Stray NULs (few enough to pass _reject_binary) are not text: no encoding we read uses a NUL inside a
        # character, so dropping them leaves the report as it was written (and equal to a clean copy of it).
        data = data.replace(b"\x00", b"")
    try:
        return Decoded(data.decode("utf-8"), "utf-8", 1.0, html)
    except UnicodeDecodeError as exc:
        if _truncated(data, exc):
            raise InputRejected("truncated", f"{name}: the file ends in the middle of a UTF-8 character (byte {exc.start} of {len(data)}): it was cut short. Download or copy it again and put it back in the inbox.") from None
    lenient = data.decode("utf-8", errors="replace")
    if lenient.count("\ufffd") <= max(3, _STRAY_BYTES_SHARE * len(lenient)):
        # Valid UTF-8 but for a few stray bytes (a bad copy or a bad merge): keep
        # the text, the stray bytes show as U+FFFD, the confidence says so.
        return Decoded(lenient, "utf-8", 0.9, html)
    declared = None
    if html:
        declared = declared_charset(data)
        codec = _ALIASES.get(declared or "", declared)
        if codec:
            try:
                text = data.decode(codec)
            except (UnicodeDecodeError, LookupError):
                text = None
            # A declared charset is evidence, not proof: pages copied from one site to another keep a meta tag
            # that no longer matches their bytes (gb2312 declared, Big5 inside). Its text must pass the same
            # Chinese-text check a detected encoding passes, and no other reading may be clearly more Chinese.
            share = common_share(text) if text is not None else 0.0
            if share >= _DECLARED_SURE:
                return Decoded(text, codec, 0.99, html)
            try:
                detected = _detect(data, name, html, codec)
            except InputRejected:
                detected = None
            if detected is not None and _family(detected.encoding) != _family(codec) and \
                    common_share(detected.text) > share + _DECLARED_MARGIN:
                return detected
            if share >= _MIN_COMMON_SHARE:
                return Decoded(text, codec, round(0.5 + share / 2, 3), html)
            if detected is not None:
                return detected
            declared = codec
    return _detect(data, name, html, declared)


def _strict_or_reject(body: bytes, enc: str, name: str) -> str:
    try:
        return body.decode(enc)
    except UnicodeDecodeError as exc:
        if _truncated(body, exc):
            raise InputRejected("truncated", f"{name}: the file ends in the middle of a {enc} character: it was cut short. Download or copy it again and put it back in the inbox.") from None
        text = body.decode(enc, errors="replace")
        if text.count("\ufffd") > _MAX_REPLACEMENT_SHARE * len(text):
            raise InputRejected("undecodable", f"{name}: starts with a {enc} byte-order mark but is not valid {enc}; re-save the report as UTF-8 and put it back in the inbox.") from None
        return text


def _truncated(data: bytes, exc: UnicodeDecodeError) -> bool:
    """True when the only problem is an incomplete character at the very end."""
    if "unexpected end" not in exc.reason and exc.end < len(data):
        return False
    try:
        data[: exc.start].decode(exc.encoding)
    except UnicodeDecodeError:
        return False
    return len(data) - exc.start <= 3


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """(codec, text) when ``data`` is UTF-16 without a byte-order mark: its NULs (the high bytes of ASCII
    characters) sit on one parity only, and read that way it is clean text (Chinese text, or mostly ASCII)."""
    head = data[:8192]
    nuls = head.count(0)
    if nuls < 4 or len(data) % 2:
        return None
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if min(even, odd) > 0.25 * max(even, odd):  # CJK characters such as 一 (U+4E00) have a NUL low byte too
        return None
    codec = "utf-16-be" if even > odd else "utf-16-le"
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    controls = sum(1 for c in text[:4096] if ord(c) < 32 and c not in "\t\r\n\x0c")
    if controls > 0.01 * min(len(text), 4096) or common_share(text) < _MIN_COMMON_SHARE:
        return None
    return codec, text


# Stray NULs (a bad copy, a padded download) in otherwise good text: up to this share of the first 8 KB.
_STRAY_NUL_SHARE = 0.01


def _reject_binary(data: bytes, name: str) -> None:
    for magic, kind, todo in _MAGIC:
        if data.startswith(magic):
            raise InputRejected("binary", f"{name}: this is {kind}, not text; {todo}, then put it back in the inbox.")
    head = data[:8192]
    nuls = head.count(0)
    if nuls > _STRAY_NUL_SHARE * len(head):
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if max(even, odd) > 0.3 * (len(head) / 2) and min(even, odd) < 0.05 * (len(head) / 2):
            raise InputRejected("undecodable", f"{name}: looks like UTF-16 without a byte-order mark, but does not read as text in it; re-save it as UTF-8 (or UTF-16 with BOM) and put it back in the inbox.")
        raise InputRejected("binary", f"{name}: {nuls} NUL bytes in the first {len(head)}: a binary file, not text; save the report as plain text or HTML and put it back in the inbox.")
    controls = len(head) - len(head.translate(None, _CONTROL)) - nuls
    if controls > 0.05 * len(head):
        raise InputRejected("binary", f"{name}: {controls} control bytes in the first {len(head)}: a binary file, not text; save the report as plain text or HTML and put it back in the inbox.")


def _detect(data: bytes, name: str, html: bool, declared: str | None = None) -> Decoded:
    candidates = list(_CHINESE)
    if declared and declared not in candidates:
        candidates.append(declared)
    for enc in _charset_normalizer_guesses(data):
        if enc not in candidates:
            candidates.append(enc)
    scored: list[tuple[float, str, str]] = []
    seen_texts: set[str] = set()
    for enc in candidates:
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        if text in seen_texts:
            continue  # another name for a reading we already have (gbk vs gb18030)
        seen_texts.add(text)
        scored.append((common_share(text), enc, text))
    if scored:
        scored.sort(key=lambda s: (-s[0], candidates.index(s[1])))
        share, enc, text = scored[0]
        if share >= _MIN_COMMON_SHARE:
            rivals = [sc for sc, e, _ in scored[1:] if _family(e) != _family(enc)]
            runner_up = rivals[0] if rivals else 0.0
            return Decoded(text, enc, round(min(0.98, 0.5 + share / 2 - max(0.0, runner_up - 0.5) / 2), 3), html)
    # Nothing decodes cleanly: accept a lenient decode only if nearly all of it is sensible.
    for enc in _CHINESE[:1]:
        text = data.decode(enc, errors="replace")
        lost = text.count("\ufffd")
        if lost <= _MAX_REPLACEMENT_SHARE * len(text) and common_share(text) >= _MIN_COMMON_SHARE:
            return Decoded(text, enc, 0.5, html)
        try:
            data.decode(enc)
        except UnicodeDecodeError as exc:
            if _truncated(data, exc) and common_share(data[: exc.start].decode(enc, errors="replace")) >= _MIN_COMMON_SHARE:
                raise InputRejected("truncated", f"{name}: the file ends in the middle of a {enc} character: it was cut short. Download or copy it again and put it back in the inbox.") from None
    if declared:
        raise InputRejected("undecodable", f"{name}: the page declares the charset {declared}, but its bytes read as {declared} are not Chinese text, and neither are they in UTF-8, GB18030/GBK or Big5; open it in a browser, check the text, save it as UTF-8 and put it back in the inbox.")
    raise InputRejected("undecodable", f"{name}: the bytes are not text in UTF-8, UTF-16, GB18030/GBK or Big5 that we can read with confidence; convert the file to UTF-8 and put it back in the inbox.")


_FAMILIES = {"gb2312": "gb", "gbk": "gb", "gb18030": "gb", "cp936": "gb", "hz": "gb",
             "big5": "big5", "big5hkscs": "big5", "cp950": "big5"}


def _family(encoding: str) -> str:
    """Encodings that are supersets of one another read the same text; they are not rivals."""
    name = codecs.lookup(encoding).name
    return _FAMILIES.get(name.replace("_", "").replace("-", ""), name)


def _charset_normalizer_guesses(data: bytes) -> list[str]:
    """Encodings charset-normalizer finds plausible, best first (Python codec names)."""
    from charset_normalizer import from_bytes

    try:
        matches = from_bytes(data[:65536], steps=5, chunk_size=512, threshold=0.3)
    except Exception:  # noqa: BLE001 - a detector crash must not crash decoding; we still try the Chinese codecs
        return []
    return [m.encoding for m in list(matches)[:4]]


@lru_cache(maxsize=1)
def _common_deleter() -> dict[int, None]:
    """str.translate table deleting common Chinese characters (GB 2312 level 1 + Big5 frequent block)."""
    chars: set[str] = set()
    for lead in range(0xB0, 0xD8):
        for trail in range(0xA1, 0xFF):
            try:
                chars.add(bytes((lead, trail)).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    for lead in range(0xA4, 0xC7):
        for trail in list(range(0x40, 0x7F)) + list(range(0xA1, 0xFF)):
            try:
                chars.add(bytes((lead, trail)).decode("big5"))
            except UnicodeDecodeError:
                pass
    chars.update("，。、；：？！“”‘’（）《》【】—…·")
    return {ord(c): None for c in chars}


def common_share(text: str) -> float:
    """Share of the non-ASCII, non-space characters that are common Chinese characters or punctuation."""
    core = "".join(_NON_ASCII.findall(text))
    if not core:
        return 1.0
    return 1.0 - len(core.translate(_common_deleter())) / len(core)
