"""`govfacts run` and `govfacts extract` read every input alike: the same facts, documents and quarantine reasons.

Issue 15's goal: every input of the tests and of the real corpus (tests/corpus/real, a copy of
``../shared/corpus/real``), and the samples printed to PDF and saved as .docx, give the same facts through
``run`` and through ``extract``. Two readers drifting apart (a .docx read by ``run`` and refused by ``extract``)
is what the issue found; this module puts every input through both and compares them field by field.

One flow run (the real Prefect flow, as ``govfacts run`` runs it) loads an inbox holding every report input;
then each file goes through ``govfacts extract --format jsonl`` (in-process with typer's CliRunner; a few as a
real subprocess) and is compared with what the warehouse holds for it:

* a file ``extract`` reads is one document in the warehouse: its own (by the sha256 of its bytes), or the
  document it is a byte duplicate or a copy of (same normalized text, other bytes: warehouse/copies.py);
  the facts (every contract field but ``doc_id``: region, indicator, measure, value, unit, base value and unit,
  period, kind, qualifier, evidence and its offsets) are the same multiset, quarantined facts included;
* a file ``extract`` yields no facts from says why (``doc_type``: reason); the run records the same doc_type and
  reason in ``documents``;
* a file ``extract`` refuses (exit 1) is quarantined by the run with the same message;
* no document or quarantined file in the warehouse comes from a file not accounted for.

The inbox: the five samples (seeds/reports), each also saved as .docx and printed to PDF by headless chromium
(the PDFs are left out when chromium is not installed; .ci/run installs it), the 45 real reports, the held-out
pages (tests/heldout: text in several encodings, an HTML page, a news page), the hostile corpus of
tests/hostile.py (every quarantine reason, re-saved copies, odd names; its symbolic links and FIFO are matters of
the inbox, not of a file's content, and are left out), each sample in the encodings tests/test_encoding.py reads
(GB18030, Big5, a GBK and a UTF-16 page) and a zip holding a PDF. One run of it all takes ~15 s beside the shared
harness (about 35 s for the module on an idle machine, chromium's printing included).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from govfacts.cli import app
from tests.browser import chromium_path, print_report_pdf
from tests.hostile import build_corpus, docx_bytes, pdf_bytes, sample_bytes
from transforms.schema import CONTRACT_FIELDS

PROJECT = Path(__file__).resolve().parent.parent
SAMPLES = PROJECT / "seeds" / "reports"
REAL = PROJECT / "tests" / "corpus" / "real"
HELDOUT = PROJECT / "tests" / "heldout"
GOVFACTS = Path(sys.executable).with_name("govfacts")

# What identifies a fact and what it says, apart from the document id (a copy's facts sit under the document it copies).
FACT_FIELDS = tuple(k for k in CONTRACT_FIELDS if k != "doc_id")
# What must survive a change of format (.txt -> .docx -> PDF): the offsets and the evidence's line breaks may move.
FORMAT_FIELDS = ("region", "indicator", "measure", "value", "unit", "value_base", "unit_base", "period", "kind", "qualifier")


def _report_files(folder: Path) -> list[Path]:
    """The reports of a folder of test inputs: not its gold keys (.jsonl), notes (.md) or manifest (.tsv)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix not in (".jsonl", ".md", ".tsv"))


def _sample_stems() -> list[str]:
    return sorted(p.stem.split("_")[0] for p in SAMPLES.glob("*.txt"))


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """Each sample saved as .docx and (when chromium is installed) printed to PDF: stem -> {suffix: bytes}."""
    exe = chromium_path()
    folder = tmp_path_factory.mktemp("printed")
    texts = {stem: sample_bytes(stem).decode("utf-8") for stem in _sample_stems()}
    out = {stem: {".docx": docx_bytes(text)} for stem, text in texts.items()}
    if exe is not None:  # one chromium per sample, side by side (each has its own profile)
        with ThreadPoolExecutor(len(texts)) as pool:
            for stem, pdf in zip(texts, pool.map(lambda s: print_report_pdf(exe, texts[s], folder, s), texts)):
                out[stem][".pdf"] = pdf.read_bytes()
    return out


def _fill_inbox(inbox: Path, printed: dict[str, dict[str, bytes]]) -> None:
    """Copy every report input of the tests into ``inbox``, one folder per origin."""
    for p in SAMPLES.glob("*.txt"):
        _put(inbox / "samples" / p.name, p.read_bytes())
    for stem, formats in printed.items():
        for suffix, data in formats.items():
            _put(inbox / "printed" / f"{stem}{suffix}", data)
    for folder in (REAL, HELDOUT):
        for p in _report_files(folder):
            _put(inbox / folder.name / p.name, p.read_bytes())
    # every quarantine reason, encodings, re-saved copies, odd names; a 1 MB file for its 20 MB one (the size is not the point
    # here), a sparse file just over the limit for its 200 MB one; no FIFO (extract, reading it, would wait for a writer)
    build_corpus(inbox / "hostile", inbox.parent / "outside", large=1_000_000, huge=70_000_000, with_fifo=False)
    _put(inbox / "edge" / "pdf in a zip.zip", _zip_holding_a_pdf())  # the two readers once disagreed on it (see the first test)
    _put_encodings(inbox / "encodings")


def _put_encodings(folder: Path) -> None:
    """Each sample in the encodings tests/test_encoding.py decodes: GB18030, traditional Big5, a GBK page (meta charset),
    a UTF-16 page with a byte-order mark. Mostly copies of the samples, which is the point: each is read on its own."""
    import codecs

    from opencc import OpenCC

    from tests.hostile import html_page

    s2t = OpenCC("s2t")
    for stem in _sample_stems():
        text = sample_bytes(stem).decode("utf-8")
        _put(folder / f"{stem} gb18030.txt", text.encode("gb18030"))
        _put(folder / f"{stem} big5.txt", s2t.convert(text).encode("big5", errors="ignore"))
        _put(folder / f"{stem} gbk.html", html_page(text, "gbk").encode("gbk", errors="ignore"))
        _put(folder / f"{stem} utf-16.html", codecs.BOM_UTF16_LE + html_page(text, "utf-16").encode("utf-16-le"))


def _zip_holding_a_pdf() -> bytes:
    """A zip whose first member is a PDF with a text layer, stored uncompressed: its ``%PDF-`` header is in the zip's first KB."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("report.pdf", pdf_bytes("2023 GDP 425.16"))
    return buf.getvalue()


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@dataclass
class Loaded:
    """One flow run over an inbox, and what the warehouse holds after it."""

    inbox: Path
    summary: dict
    documents: dict[str, dict]  # doc_id -> documents row
    copy_of: dict[str, str]  # raw sha256 of a copy -> doc_id of the document it copies
    facts: dict[str, Counter]  # doc_id -> multiset of FACT_FIELDS tuples
    quarantined: dict[str, list[dict]]  # source_path -> quarantine records of files
    dq_status: dict[str, int] = field(default_factory=dict)  # facts per dq_status (quarantined ones are compared too)
    texts: dict[str, str] = field(default_factory=dict)  # doc_id -> document_text.text (what facts.start/end index into)
    files: list[Path] = field(default_factory=list)  # the regular files of the inbox (symbolic links are an inbox matter)


def _run(inbox: Path, wh: Path) -> Loaded:
    """Run the flow (as `govfacts run` runs it) over ``inbox`` into ``wh``; read back what the warehouse holds."""
    from flows.ingest import flow_for
    from transforms.settings import load_settings
    from warehouse.snapshots import query

    settings = load_settings(inbox=inbox, warehouse=wh)
    summary = flow_for(settings)(inbox=str(inbox), warehouse=str(wh))
    names, rows = query(settings, "SELECT doc_id, source_path, doc_type, no_facts_reason, copies FROM documents")
    documents = {r[0]: dict(zip(names, r)) for r in rows}
    copy_of = {c["sha256"]: d for d, row in documents.items() for c in json.loads(row["copies"] or "[]")}
    _, rows = query(settings, f"SELECT doc_id, {', '.join(chr(34) + k + chr(34) for k in FACT_FIELDS)} FROM facts")
    facts: dict[str, Counter] = {}
    for r in rows:
        facts.setdefault(r[0], Counter())[tuple(r[1:])] += 1
    names, rows = query(settings, "SELECT source_path, sha256, reason, detail FROM quarantine WHERE item = 'file'")
    quarantined: dict[str, list[dict]] = {}
    for r in rows:
        quarantined.setdefault(r[0], []).append(dict(zip(names, r)))
    files = sorted(p for p in inbox.rglob("*") if p.is_file() and not p.is_symlink() and not _is_junk(p, inbox))
    dq_status = dict(query(settings, "SELECT dq_status, count(*) FROM facts GROUP BY dq_status")[1])
    texts = dict(query(settings, "SELECT doc_id, text FROM document_text")[1])
    return Loaded(inbox, summary, documents, copy_of, facts, quarantined, dq_status, texts, files)


def _is_junk(path: Path, inbox: Path) -> bool:
    """What the inbox scan skips (operating-system junk, hidden folders): not an input of the run."""
    from transforms.stage import JUNK

    return bool(JUNK.fullmatch(path.name)) or any(part.startswith(".") for part in path.relative_to(inbox).parts[:-1])


@pytest.fixture(scope="module")
def loaded(prefect_harness, tmp_path_factory, printed) -> Loaded:
    """One flow run, as `govfacts run` runs it, over every input of the tests."""
    root = tmp_path_factory.mktemp("run")
    _fill_inbox(root / "inbox", printed)
    return _run(root / "inbox", root / "wh")


# -- extract --------------------------------------------------------------------------------------------


@dataclass
class Extracted:
    """What `govfacts extract <file> --format jsonl` said about one file."""

    exit_code: int
    facts: list[dict]
    stderr: str


def _extract_in_process(path: Path) -> Extracted:
    got = CliRunner().invoke(app, ["extract", str(path), "--format", "jsonl"], env={"COLUMNS": "100000"})
    assert got.exception is None or isinstance(got.exception, SystemExit), (path, got.output)
    return Extracted(got.exit_code, [json.loads(line) for line in got.stdout.splitlines()], got.stderr)


def _extract_subprocess(path: Path) -> Extracted:
    got = subprocess.run([str(GOVFACTS), "extract", str(path), "--format", "jsonl"], capture_output=True, timeout=120,
                         env=dict(os.environ, COLUMNS="100000"), cwd=path.parent)
    return Extracted(got.returncode, [json.loads(line) for line in got.stdout.decode("utf-8").splitlines()],
                     got.stderr.decode("utf-8", "replace"))


def _squash(text: str | None) -> str:
    """Text without whitespace: the console wraps a long message wherever it likes."""
    return "".join((text or "").split())


def _differences(loaded: Loaded, path: Path, got: Extracted) -> list[str]:
    """Every way the warehouse disagrees with `extract` about ``path`` (empty when they agree)."""
    from transforms.stage import display_path

    name = display_path(path)
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if got.exit_code != 0:  # refused: the run must quarantine it, saying the same
        records = loaded.quarantined.get(name, [])
        if not records:
            where = "loaded as a document" if (sha in loaded.documents or sha in loaded.copy_of) else "not recorded at all"
            return [f"extract refused it ({got.stderr.strip()!r}) but the run did not quarantine it: {where}"]
        said = _squash(got.stderr).removeprefix("error:")
        if not any(_squash(r["detail"]) == said for r in records):
            return [f"quarantine reason differs: run {[(r['reason'], r['detail']) for r in records]} / extract {got.stderr.strip()!r}"]
        return []
    if name in loaded.quarantined:
        return [f"extract read it ({len(got.facts)} facts) but the run quarantined it: {loaded.quarantined[name]}"]
    doc_id = sha if sha in loaded.documents else loaded.copy_of.get(sha)
    if doc_id is None:
        return ["extract read it but the warehouse has no document for its bytes (neither its own nor one it is a copy of)"]
    problems = []
    if any(f["doc_id"] != sha for f in got.facts):
        problems.append(f"extract's doc_id is not the sha256 of the file's bytes ({sha})")
    want = Counter(tuple(f[k] for k in FACT_FIELDS) for f in got.facts)
    have = loaded.facts.get(doc_id, Counter())
    if want != have:
        only_extract, only_run = want - have, have - want
        problems.append(f"facts differ (document {doc_id[:12]}, {'a copy' if doc_id != sha else 'its own'}): "
                        f"{sum(only_extract.values())} only in extract, {sum(only_run.values())} only in the run\n"
                        + "".join(f"    extract only: {dict(zip(FACT_FIELDS, k))}\n" for k in sorted(only_extract, key=repr))
                        + "".join(f"    run only:     {dict(zip(FACT_FIELDS, k))}\n" for k in sorted(only_run, key=repr)))
    if not got.facts:  # extract says why there are none; the run records why in documents
        doc = loaded.documents[doc_id]
        said = _squash(got.stderr)
        if not (doc["no_facts_reason"] and f"({doc['doc_type']}):" in said and _squash(doc["no_facts_reason"]) in said):
            problems.append(f"no-facts verdict differs: run ({doc['doc_type']}: {doc['no_facts_reason']!r}) / extract {got.stderr.strip()!r}")
    return problems


def _compare_every_file(loaded: Loaded, extract=_extract_in_process) -> dict:
    """Compare every inbox file; fail naming each file whose facts or outcome differ. Returns the counts."""
    failures, facts, seen_docs, refused = [], 0, set(), set()
    for path in loaded.files:
        got = extract(path)
        for problem in _differences(loaded, path, got):
            failures.append(f"{path.relative_to(loaded.inbox)}: {problem}")
        facts += len(got.facts)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        if got.exit_code == 0:
            seen_docs.add(sha if sha in loaded.documents else loaded.copy_of.get(sha))
        else:
            refused.add(path)
    assert not failures, f"{len(failures)} of {len(loaded.files)} inputs differ between `run` and `extract`:\n" + "\n".join(failures)
    # the same documents: none in the warehouse that no file read by extract accounts for, and the summary counts them
    assert set(loaded.documents) == seen_docs, set(loaded.documents) ^ seen_docs
    assert loaded.summary["documents"] == len(loaded.documents)
    files = {str(p) for p in loaded.files}
    stray = [n for n in loaded.quarantined if n in files and Path(n) not in refused]
    assert not stray, f"the run quarantined files that extract reads: {stray}"
    return dict(files=len(loaded.files), documents=len(loaded.documents), facts=facts, refused=len(refused))


def _format_facts(loaded: Loaded, path: Path) -> Counter:
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    doc_id = sha if sha in loaded.documents else loaded.copy_of[sha]
    index = [FACT_FIELDS.index(k) for k in FORMAT_FIELDS]
    return Counter(tuple(key[i] for i in index) for key, n in loaded.facts[doc_id].items() for _ in range(n))


def _check_printed_like_text(loaded: Loaded, printed: dict) -> int:
    """Through `run`, each sample's .docx and PDF hold the text file's facts (what they say; offsets may move)."""
    compared = 0
    for stem, formats in printed.items():
        text = next((loaded.inbox / "samples").glob(f"{stem}_*.txt"))
        want = _format_facts(loaded, text)
        assert sum(want.values()) > 0, text.name
        for suffix in formats:
            got = _format_facts(loaded, loaded.inbox / "printed" / f"{stem}{suffix}")
            assert got == want, (f"{stem}{suffix} through run: only in the text file {want - got}, only in the {suffix} {got - want}")
            compared += 1
    return compared


# -- the tests -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["too large", "too large PDF", "image", "zip archive", "zip holding a PDF", "spreadsheet", "old .doc",
                                  "damaged .docx", "scanned PDF", "damaged PDF"])
def test_staging_and_the_one_reader_refuse_a_file_with_the_same_reason_and_words(kind, tmp_path):
    """`run` refuses at staging (stage_file), `extract` and `normalize` in read_input: one verdict, one message.

    Regressions: a file over the size limit was told "… or raise GOVFACTS_MAX_FILE_BYTES and re-run." by `run`
    and "… or raise GOVFACTS_MAX_FILE_BYTES." by `extract` (two sentences written twice); a zip holding a PDF stored
    uncompressed was quarantined as an archive by `run` and read as that PDF by `extract` (the two asked "zip?" and
    "PDF?" in opposite orders).
    """
    from tests.hostile import ole2_bytes, png_bytes, xlsx_bytes, zip_bytes
    from transforms.errors import InputRejected
    from transforms.stage import read_input, stage_file

    data = {"too large": sample_bytes("002"), "too large PDF": pdf_bytes("2023 GDP 425.16") + b" " * 4096, "image": png_bytes(),
            "zip archive": zip_bytes({"a.txt": b"x"}), "zip holding a PDF": _zip_holding_a_pdf(), "spreadsheet": xlsx_bytes(), "old .doc": ole2_bytes(),
            "damaged .docx": docx_bytes("x")[:300], "scanned PDF": pdf_bytes(None), "damaged PDF": b"%PDF-1.4\n1 0 obj trunc"}[kind]
    limit = 1000 if kind.startswith("too large") else 64 * 2 ** 20
    path = tmp_path / "inbox" / "input.bin"
    _put(path, data)
    staged = stage_file(path, path.parent, tmp_path / "staging", limit)
    with pytest.raises(InputRejected) as refused:
        read_input(data, str(path), limit)
    assert isinstance(staged, dict), f"staging accepted the {kind}"
    assert (staged["reason"], staged["detail"]) == (refused.value.reason, refused.value.message)


def _containers():
    """Hypothesis: bytes in every shape the readers tell apart — text, .docx, PDF (also after junk bytes), zips holding either."""
    import io
    import zipfile

    from hypothesis import strategies as st

    from tests.hostile import strategies

    S = strategies()

    def stored_zip(name_and_data: tuple[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr(*name_and_data)
        return buf.getvalue()

    ascii_figures = st.text(st.sampled_from("0123456789 .GDP%"), max_size=40)
    pdfs = st.one_of(st.none(), ascii_figures).map(pdf_bytes)
    inner = st.one_of(S["hostile_bytes"], S["report_bytes"], S["mutated_report"], S["reportish_text"].map(docx_bytes), pdfs)
    return st.one_of(
        inner,
        st.tuples(st.sampled_from([b"", b"\xef\xbb\xbf", b"\n\n", b"junk "]), pdfs).map(b"".join),
        st.tuples(st.sampled_from(["report.pdf", "word/document.xml", "a.txt"]), inner).map(stored_zip),
    )


def test_staging_renders_what_the_one_reader_reads_for_any_bytes():
    """For any input, what `run` stages for normalization (the raw bytes, or a .docx's/PDF's text beside them) is what
    read_input gives `extract` and `normalize`; a refusal is the same refusal, in the same words."""
    import tempfile

    from hypothesis import given

    from transforms.errors import InputRejected
    from transforms.stage import read_input, stage_file

    @given(_containers())
    def check(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "inbox" / "input"
            _put(path, data)
            staged = stage_file(path, path.parent, Path(d) / "staging")
            try:
                read = read_input(data, str(path))
            except InputRejected as exc:
                assert isinstance(staged, dict), f"staging accepted what read_input refuses: {exc.reason}"
                assert (staged["reason"], staged["detail"]) == (exc.reason, exc.message)
                return
            assert not isinstance(staged, dict), f"read_input reads what staging refuses: {staged['reason']}"
            assert Path(staged.staged_path).read_bytes() == read

    check()


@pytest.mark.e2e
def test_run_and_extract_agree_on_every_input_of_the_tests(loaded, printed):
    counts = _compare_every_file(loaded)
    by_origin = Counter(p.relative_to(loaded.inbox).parts[0] for p in loaded.files)
    assert by_origin["samples"] == 5 and by_origin["printed"] == sum(len(f) for f in printed.values())
    assert by_origin["real"] == len(_report_files(REAL)) == 45 and by_origin["heldout"] == len(_report_files(HELDOUT))
    assert by_origin["hostile"] >= 35 and counts["refused"] >= 10 and counts["facts"] > 2000, (by_origin, counts)
    assert {d["doc_type"] for d in loaded.documents.values()} >= {"not_a_report", "news_about_report", "local_work_report"}
    print(f"\nrun = extract: {counts['files']} files ({dict(by_origin)}), {counts['documents']} documents, "
          f"{counts['facts']} facts (dq_status {loaded.dq_status}), {counts['refused']} refused by extract and quarantined by run "
          "with the same reason")


@pytest.mark.e2e
def test_the_comparison_names_the_file_and_the_facts_that_differ(loaded):
    """The yardstick itself: a fact changed, lost or added in the warehouse, or a quarantine record missing, is seen."""
    from dataclasses import replace

    text = next((loaded.inbox / "samples").glob("000_*.txt"))
    got = _extract_in_process(text)
    sha = hashlib.sha256(text.read_bytes()).hexdigest()
    doc_id = sha if sha in loaded.documents else loaded.copy_of[sha]  # the hostile corpus's .docx of it may come first
    key = next(iter(loaded.facts[doc_id]))
    assert FACT_FIELDS[1] == "indicator" and FACT_FIELDS[3] == "value"
    changed = Counter(loaded.facts[doc_id])
    changed[key] -= 1
    changed[(key[0], key[1], key[2], key[3] + 1) + key[4:]] += 1
    for facts in (changed, loaded.facts[doc_id] - Counter([key]), loaded.facts[doc_id] + Counter([key])):
        problems = _differences(replace(loaded, facts={**loaded.facts, doc_id: facts}), text, got)
        assert len(problems) == 1 and "facts differ" in problems[0] and repr(key[1]) in problems[0], problems
    scan = loaded.inbox / "hostile" / "report.pdf"
    problems = _differences(replace(loaded, quarantined={}), scan, _extract_in_process(scan))
    assert problems and "did not quarantine" in problems[0]
    with pytest.raises(AssertionError, match="samples/000_"):
        _compare_every_file(replace(loaded, files=[text], facts={**loaded.facts, doc_id: changed}))


@pytest.mark.e2e
def test_normalize_prints_the_text_the_warehouse_holds_and_refuses_what_run_quarantines(loaded):
    """`govfacts normalize` is the third user of the one reader: the text it prints is document_text.text (the text
    the facts' offsets index into), and it refuses, in the same words, the files the run quarantines."""
    differ = []
    for path in loaded.files:
        got = CliRunner().invoke(app, ["normalize", str(path)], env={"COLUMNS": "100000"})
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        doc_id = sha if sha in loaded.documents else loaded.copy_of.get(sha)
        if got.exit_code != 0:
            records = loaded.quarantined.get(str(path), [])
            if doc_id is not None or not any(_squash(r["detail"]) == _squash(got.stderr).removeprefix("error:") for r in records):
                differ.append(f"{path.relative_to(loaded.inbox)}: normalize refused it ({got.stderr.strip()!r}); run: {records or doc_id}")
        elif doc_id is None:
            differ.append(f"{path.relative_to(loaded.inbox)}: normalize read it, the run holds no document for it")
        else:
            text = loaded.texts[doc_id]
            if got.stdout != text + ("" if text.endswith("\n") else "\n"):
                differ.append(f"{path.relative_to(loaded.inbox)}: normalize printed another text than document_text holds")
    assert not differ, "\n".join(differ)


@pytest.mark.e2e
def test_the_samples_as_docx_and_pdf_give_the_text_files_facts_through_run(loaded, printed):
    assert _check_printed_like_text(loaded, printed) == sum(len(f) for f in printed.values())


@pytest.mark.e2e
def test_extract_as_a_real_command_prints_what_the_warehouse_holds(loaded):
    """The installed `govfacts` script, not only the in-process app: a PDF (a .docx without chromium), a GB18030 page,
    a non-report and a scan (refused; quarantined by the run)."""
    printed = loaded.inbox / "printed" / "000.pdf"
    picks = [printed if printed.exists() else printed.with_suffix(".docx"), loaded.inbox / "heldout" / "h2_pengxi_2019.txt",
             loaded.inbox / "hostile" / "recipe.txt", loaded.inbox / "hostile" / "report.pdf"]
    for path in picks:
        got = _extract_subprocess(path)
        assert _differences(loaded, path, got) == [], path
        assert got.facts == _extract_in_process(path).facts, path


@pytest.mark.e2e
def test_a_copy_that_differs_only_in_a_dated_furniture_line_keeps_its_own_facts(prefect_harness, tmp_path):
    """Sample 002 is a newspaper page dated only by its ``发布日期`` line, which normalization removes as furniture.

    The same page without that line normalizes to the same text but has no year (extract: 0 facts, year unknown),
    so the run must not record one as a copy of the other: whichever it meets first, the other's facts are lost or
    invented (``a_undated.txt`` first: the dated page's 4 facts are dropped).
    """
    dated = sample_bytes("002")
    undated = b"\n".join(line for line in dated.split(b"\n") if "发布日期".encode() not in line)
    assert undated != dated
    _put(tmp_path / "inbox" / "a_undated.txt", undated)
    _put(tmp_path / "inbox" / "b_dated.txt", dated)
    loaded = _run(tmp_path / "inbox", tmp_path / "wh")
    assert [len(_extract_in_process(p).facts) for p in loaded.files] == [0, 4]
    _compare_every_file(loaded)
