"""The extract stage: canonical report text -> facts with evidence.

``extract_document(norm, doc_id)`` is what the flow calls; ``extract_facts(text,
doc_id)`` is the same on plain text. Both are pure: reference data is read from
``seeds/`` once per process (``reference.load_reference``).

Modules: numbers (written numbers), units (quantities, ranges, ratios),
reference (seeds CSVs), sections (report year, review/target sections),
regions (report region and other regions), indicators (alias mentions),
lists (分别 / 均 lists), facts (the rules that link them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transforms.extract.facts import extract_records, identify, to_fact
from transforms.extract.identity import Identity
from transforms.schema import Fact

if TYPE_CHECKING:
    from transforms.normalize import Normalized

__all__ = ["Identity", "extract_document", "extract_facts", "identify", "identify_and_extract"]


def extract_facts(text: str, doc_id: str) -> list[Fact]:
    """Facts stated in canonical ``text`` (no raw offsets: the text is its own raw text)."""
    return [to_fact(r, raw_span=lambda s, e: (s, e)) for r in extract_records(text, doc_id)]


def identify_and_extract(norm: "Normalized", doc_id: str) -> tuple[Identity, list[Fact]]:
    """The document's identity and its facts (none when the identity cannot be established)."""
    ident = identify(norm.text, norm.raw_text)
    unrepaired = list(getattr(norm.report, "unrepaired_spans", []) or [])
    records = extract_records(norm.text, doc_id, raw_text=norm.raw_text, identity=ident)
    return ident, [to_fact(r, raw_span=norm.raw_span, unrepaired=unrepaired) for r in records]


def extract_document(norm: "Normalized", doc_id: str) -> list[Fact]:
    """Facts of one normalized document, with offsets into both the canonical and the raw text.

    ``mojibake_overlap`` is set when the evidence touches a span the normalize stage
    could not repair, so downstream checks can hold such facts back.
    """
    unrepaired = list(getattr(norm.report, "unrepaired_spans", []) or [])
    return [to_fact(r, raw_span=norm.raw_span, unrepaired=unrepaired) for r in extract_records(norm.text, doc_id, raw_text=norm.raw_text)]
