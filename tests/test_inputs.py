"""One reader for every input: `govfacts run`, `extract` and `normalize` read text, HTML, .docx and PDF alike.

A sample report printed to PDF by Debian's headless chromium (the way a browser user saves a published page) and the
same report saved as .docx give the facts of the text file, through `extract` and through the flow; a scan without a
text layer is quarantined as such; a file that is not a report is recorded (and told) as ``not_a_report``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from govfacts.cli import app
from tests.browser import chromium_path, print_report_pdf
from tests.hostile import docx_bytes, pdf_bytes, sample_bytes

README_TXT = b"govfacts\n\nInstall with pip, then run `govfacts run`. See the docs for more.\n"


def _facts(out: str) -> list[tuple]:
    return sorted((d["region"], d["indicator"], d["measure"], d["value"], d["unit"], d["period"], d["kind"], d["qualifier"])
                  for d in map(json.loads, out.splitlines()))


@pytest.fixture(scope="module")
def printed_pdf(tmp_path_factory) -> Path:
    """Sample 000 as a web page, printed to PDF by headless chromium (several pages, chromium's own header/footer)."""
    exe = chromium_path()
    if exe is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")
    return print_report_pdf(exe, sample_bytes("000").decode("utf-8"), tmp_path_factory.mktemp("pdf"))


def _extract(path: Path):
    return CliRunner().invoke(app, ["extract", str(path)])


def test_extract_reads_a_printed_pdf_and_a_docx_like_the_text_file(printed_pdf, tmp_path):
    from transforms.pdf import pdf_text

    txt = tmp_path / "r.txt"
    txt.write_bytes(sample_bytes("000"))
    docx = tmp_path / "r.docx"
    docx.write_bytes(docx_bytes(sample_bytes("000").decode("utf-8")))
    want = _facts(_extract(txt).stdout)
    assert len(want) > 20
    assert _facts(_extract(printed_pdf).stdout) == want
    assert _facts(_extract(docx).stdout) == want
    text = pdf_text(printed_pdf.read_bytes(), "r.pdf")
    assert "涼州區政府工作報告" in text  # the report's own title is kept; chromium's running header and footer
    assert "file://" not in text and " PM 政府工作报告" not in text  # (date and page title, URL and n/m) are dropped
    for cmd in (["normalize", str(docx)], ["normalize", str(printed_pdf), "--report"]):
        got = CliRunner().invoke(app, cmd)
        assert got.exit_code == 0 and got.stdout.strip(), (cmd, got.output)


def test_a_scan_and_a_damaged_pdf_are_refused_in_one_line_that_says_what_to_do(tmp_path):
    scan, broken = tmp_path / "scan.pdf", tmp_path / "broken.pdf"
    scan.write_bytes(pdf_bytes(None))
    broken.write_bytes(b"%PDF-1.4\n1 0 obj trunc")
    got = CliRunner().invoke(app, ["extract", str(scan)])
    assert got.exit_code == 1 and "no text layer" in got.output and "OCR" in got.output and "Traceback" not in got.output
    got = CliRunner().invoke(app, ["normalize", str(broken)])
    assert got.exit_code == 1 and "cannot be opened" in got.output


def test_extract_says_when_a_file_is_not_a_report(tmp_path):
    readme = tmp_path / "readme.txt"
    readme.write_bytes(README_TXT)
    got = CliRunner().invoke(app, ["extract", str(readme)])
    assert got.exit_code == 0 and got.stdout == ""
    assert "not_a_report" in got.stderr and "not a government work report" in got.stderr


@pytest.mark.e2e
def test_run_reads_pdf_and_docx_quarantines_a_scan_and_records_a_non_report(prefect_harness, printed_pdf, tmp_path):
    from flows.ingest import ingest
    from transforms.settings import load_settings
    from warehouse.snapshots import query

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "000.pdf").write_bytes(printed_pdf.read_bytes())
    (inbox / "001.docx").write_bytes(docx_bytes(sample_bytes("001").decode("utf-8")))
    (inbox / "scan.pdf").write_bytes(pdf_bytes(None))
    (inbox / "readme.txt").write_bytes(README_TXT)
    summary = ingest(inbox=str(inbox), warehouse=str(tmp_path / "wh"))
    assert summary["files_in"] == 4 and summary["documents"] == 3 and summary["files_quarantined"] == 1
    settings = load_settings(warehouse=tmp_path / "wh")
    _, q = query(settings, "SELECT source_path, reason, detail FROM quarantine WHERE item = 'file'")
    assert [(Path(r[0]).name, r[1]) for r in q] == [("scan.pdf", "no_text_layer")] and "OCR" in q[0][2]
    _, docs = query(settings, "SELECT source_path, doc_type, no_facts_reason FROM documents ORDER BY source_path")
    kinds = {Path(r[0]).name: (r[1], r[2]) for r in docs}
    assert kinds["readme.txt"][0] == "not_a_report" and "not a government work report" in kinds["readme.txt"][1]
    for name, stem in (("000.pdf", "000"), ("001.docx", "001")):
        txt = tmp_path / f"{stem}.txt"
        txt.write_bytes(sample_bytes(stem))
        want = _facts(_extract(txt).stdout)
        _, rows = query(settings, "SELECT f.region, f.indicator, f.measure, f.value, f.unit, f.period, f.kind, f.qualifier FROM facts f "
                        "JOIN documents d ON d.doc_id = f.doc_id WHERE d.source_path LIKE ?", [f"%{name}"])
        assert sorted(rows) == want, name
