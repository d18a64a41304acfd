"""The text layer of a PDF report, read with PDFium (``pypdfium2``).

Government reports are mostly published as PDF. A PDF with a text layer becomes plain text: pages in order, one
line per text line PDFium reports, full-width digits and punctuation kept as written (the normalize stage folds
them, with offsets back to this text). Lines a printer or browser repeats at the top or bottom of every page (the
title, the date, a URL, ``- 3 -`` or ``3/12`` page numbers) are dropped, so a report printed across pages reads as
one text. A PDF without a text layer (a scan) or one PDFium cannot open is refused with what to do.
"""

from __future__ import annotations

import re
import threading
from collections import Counter

from transforms.errors import InputRejected

_LOCK = threading.Lock()  # PDFium is not thread-safe
_PAGE_NUMBER = re.compile(r"^\s*[-－—–‐第]?\s*[0-9０-９]{1,3}\s*(?:[/／]\s*[0-9０-９]{1,3}|页|[-－—–‐])?\s*$")
_DIGITS = re.compile(r"[0-9０-９]+")
EDGE = 2  # lines at the top and at the bottom of a page that may be running headers or footers


def pdf_text(data: bytes, name: str) -> str:
    """The report's text from the PDF's text layer; ``InputRejected`` for a scan or a damaged/encrypted PDF."""
    import pypdfium2 as pdfium  # noqa: PLC0415 (only PDF inputs pay the import)

    pages: list[list[str]] = []
    with _LOCK:
        try:
            doc = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise InputRejected("damaged_pdf", f"{name}: a PDF that cannot be opened ({exc}); if it has a password, save a copy "
                                "without one, otherwise download it again, then put it in the inbox.") from None
        try:
            for i in range(len(doc)):
                page = doc[i]
                textpage = page.get_textpage()
                text = textpage.get_text_range()
                textpage.close()
                page.close()
                pages.append(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
        finally:
            doc.close()
    if not any(line.strip() for lines in pages for line in lines):
        raise InputRejected("no_text_layer", f"{name}: a PDF of {len(pages)} page(s) with no text layer (a scan or images of "
                            "text): run OCR first (e.g. `ocrmypdf -l chi_sim in.pdf out.pdf`) and put the result in the inbox.")
    return "\n".join(_joined(_without_running_lines(pages))) + "\n"


def _key(line: str) -> str:
    return _DIGITS.sub("#", line.strip())


_ENDS = tuple("。！？；：!?;:…”」』）)")
FULL = 0.9  # a line at least this share of its page's widest line was wrapped by the layout, not ended by the author


def _width(line: str) -> int:
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in line.strip())


def _joined(pages: list[list[str]]) -> list[str]:
    """Paragraphs again: a line as wide as the page's text that does not end a sentence goes on with the next line
    (also across a page break), so a number or an indicator name wrapped at a line end is one run of text again."""
    out: list[str] = []
    carry = False
    for lines in pages:
        widest = max((_width(ln) for ln in lines), default=0)
        for ln in lines:
            text = ln.strip()
            if carry and out:
                out[-1] += (" " if out[-1][-1:].isascii() and out[-1][-1:].isalnum() and text[:1].isascii() and text[:1].isalnum() else "") + text
            else:
                out.append(text)
            carry = widest > 0 and _width(ln) >= FULL * widest and not text.endswith(_ENDS)
    return out


def _without_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """The lines of every page, less page numbers and the lines repeated at the top or bottom of most pages."""
    edges = Counter()
    for lines in pages:
        body = [ln for ln in lines if ln.strip()]
        edges.update({_key(ln) for ln in body[:EDGE] + body[-EDGE:]})
    running = {k for k, n in edges.items() if len(pages) >= 2 and n > len(pages) / 2 and k}
    out: list[list[str]] = []
    for lines in pages:
        body = [ln for ln in lines if ln.strip()]
        edge = set(range(min(EDGE, len(body)))) | set(range(max(0, len(body) - EDGE), len(body)))
        out.append([ln for i, ln in enumerate(body) if not (i in edge and (_key(ln) in running or _PAGE_NUMBER.match(ln)))])
    return out
