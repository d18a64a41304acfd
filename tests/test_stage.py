"""Staging, function by function: formats, .docx text, limits, atomic copies, sweeping, names."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile import docx_bytes, ole2_bytes, pdf_bytes, png_bytes, sample_bytes, staging_problems, xlsx_bytes, zip_bytes
from transforms.errors import InputRejected
from transforms.stage import (
    IN_MEMORY, PARTIAL, StagingError, display_path, docx_text, scan_inbox, sniff, stage_file, stage_inbox, sweep_partials,
)

FORMATS = {
    "pdf": (pdf_bytes(), "pdf"),
    "pdf-after-junk": (b"\r\n" + pdf_bytes(), "pdf"),
    "png": (png_bytes(), "image"),
    "jpeg": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64), "image"),
    "gif": (b"GIF89a" + bytes(64), "image"),
    "ole2-doc": (ole2_bytes(), "legacy_office"),
    "rtf": (b"{\\rtf1\\ansi report}", "rtf"),
    "gzip": (b"\x1f\x8b\x08\x00" + bytes(32), "archive"),
    "7z": (b"7z\xbc\xaf\x27\x1c" + bytes(32), "archive"),
}


@pytest.mark.parametrize("data,reason", list(FORMATS.values()), ids=list(FORMATS))
def test_formats_that_are_not_text_get_their_own_reason_and_the_supported_list(data, reason):
    got = sniff(data, "in/x.bin")
    assert got is not None and got[0] == reason
    assert got[1].startswith("in/x.bin: ") and ".docx" in got[1] and "UTF-8" in got[1]


@pytest.mark.parametrize("text", ["BMW 2023年销售额", "%PD not a pdf", "2023年 GDP %PDF-", "如何把文件另存为%PDF-1.4格式", "PK is a name", "{rtf", "GIF", "2023年地区生产总值"])
def test_text_that_merely_starts_like_a_format_is_text(text):
    assert sniff(text.encode("utf-8"), "x.txt") is None


def test_docx_text_keeps_paragraphs_tabs_breaks_and_drops_deleted_text():
    ns = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    body = ('<w:p><w:r><w:t>地区生产总值</w:t></w:r><w:r><w:t xml:space="preserve">增长6.6%</w:t></w:r></w:p>'
            '<w:p><w:r><w:t>甲</w:t><w:tab/><w:t>乙</w:t><w:br/><w:t>丙</w:t><w:delText>删除</w:delText></w:r></w:p>')
    data = zip_bytes({"word/document.xml": f'<?xml version="1.0"?><w:document {ns}><w:body>{body}</w:body></w:document>'.encode()})
    assert docx_text(data, "r.docx") == "地区生产总值增长6.6%\n甲\t乙\n丙\n"


def test_docx_round_trips_a_report():
    text = sample_bytes("001").decode("utf-8")
    assert docx_text(docx_bytes(text), "r.docx") == "".join(line + "\n" for line in text.split("\n"))


@pytest.mark.parametrize("data,reason", [
    (xlsx_bytes(), "spreadsheet"),
    (zip_bytes({"ppt/presentation.xml": b"<p/>"}), "presentation"),
    (zip_bytes({"a.txt": b"x"}), "archive"),
    (docx_bytes("x")[:200], "damaged_docx"),
    (zip_bytes({"word/document.xml": b'<!DOCTYPE x [<!ENTITY a "aaaa">]><w:document>&a;</w:document>'}), "damaged_docx"),
    (zip_bytes({"word/document.xml": b"<w:document><unclosed>"}), "damaged_docx"),
], ids=["xlsx", "pptx", "zip", "truncated", "dtd-entities", "bad-xml"])
def test_zips_that_are_not_readable_word_documents_are_rejected(data, reason):
    with pytest.raises(InputRejected) as exc:
        docx_text(data, "in/r.docx")
    assert exc.value.reason == reason and "in/r.docx" in exc.value.message


def test_docx_bomb_is_refused_before_decompression():
    data = zip_bytes({"word/document.xml": b"<w:document>" + b" " * 5_000_000 + b"</w:document>"})
    assert len(data) < 100_000
    with pytest.raises(InputRejected) as exc:
        docx_text(data, "bomb.docx", max_bytes=1_000_000)
    assert exc.value.reason == "too_large"


def test_docx_is_staged_raw_with_its_text_beside_it(tmp_path):
    inbox, staging = tmp_path / "in", tmp_path / "st"
    inbox.mkdir()
    raw = docx_bytes("2023年地区生产总值增长6.6%")
    (inbox / "r.docx").write_bytes(raw)
    got = stage_file(inbox / "r.docx", inbox, staging)
    sha = hashlib.sha256(raw).hexdigest()
    assert got.sha256 == sha and got.n_bytes == len(raw)
    assert Path(got.staged_path) == staging / sha[:2] / f"{sha}.txt"
    assert Path(got.staged_path).read_text("utf-8") == "2023年地区生产总值增长6.6%\n"
    assert (staging / sha[:2] / sha).read_bytes() == raw
    assert staging_problems(staging, allow_partials=False) == []


def test_files_over_the_limit_are_hashed_not_copied(tmp_path):
    inbox, staging = tmp_path / "in", tmp_path / "st"
    inbox.mkdir()
    (inbox / "big.txt").write_bytes(b"a" * 5000)
    got = stage_file(inbox / "big.txt", inbox, staging, max_bytes=4096)
    assert got["reason"] == "too_large" and got["sha256"] == hashlib.sha256(b"a" * 5000).hexdigest()
    assert "GOVFACTS_MAX_FILE_BYTES" in got["detail"] and "big.txt" in got["detail"]
    assert not staging.exists() or not any(p.is_file() for p in staging.rglob("*"))


def test_large_files_are_streamed_and_identical_to_the_source(tmp_path):
    inbox, staging = tmp_path / "in", tmp_path / "st"
    inbox.mkdir()
    data = os.urandom(IN_MEMORY + 12345)
    (inbox / "big.bin").write_bytes(data)
    got = stage_file(inbox / "big.bin", inbox, staging)
    assert got.sha256 == hashlib.sha256(data).hexdigest() and Path(got.staged_path).read_bytes() == data
    again = stage_file(inbox / "big.bin", inbox, staging)
    assert again.staged_path == got.staged_path
    assert staging_problems(staging, allow_partials=False) == []


def test_an_existing_copy_is_not_rewritten(tmp_path):
    inbox, staging = tmp_path / "in", tmp_path / "st"
    inbox.mkdir()
    (inbox / "r.txt").write_bytes(b"report")
    first = stage_file(inbox / "r.txt", inbox, staging)
    mtime = os.stat(first.staged_path).st_mtime_ns
    os.utime(first.staged_path, ns=(mtime - 10**9, mtime - 10**9))
    stage_file(inbox / "r.txt", inbox, staging)
    assert os.stat(first.staged_path).st_mtime_ns == mtime - 10**9


def test_partials_of_dead_processes_are_swept_and_live_ones_kept(tmp_path):
    staging = tmp_path / "st"
    staging.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    (staging / f"{PARTIAL}{dead}-aaaa").write_bytes(b"half")
    (staging / f"{PARTIAL}{os.getpid()}-bbbb").write_bytes(b"mine")
    assert [p.name for p in sweep_partials(staging)] == [f"{PARTIAL}{dead}-aaaa"]
    assert (staging / f"{PARTIAL}{os.getpid()}-bbbb").exists()


def test_junk_and_hidden_folders_are_not_inputs_but_dot_files_are(tmp_path):
    inbox = tmp_path / "in"
    (inbox / ".git").mkdir(parents=True)
    (inbox / ".git" / "HEAD").write_text("x")
    for name in (".DS_Store", "Thumbs.db", "~$report.docx", "._report.txt", ".report.txt", "report.txt"):
        (inbox / name).write_text("x")
    paths, unlisted = scan_inbox(inbox)
    assert [p.name for p in paths] == [".report.txt", "report.txt"] and unlisted == []


def test_unlistable_folders_are_reported(tmp_path, monkeypatch):
    inbox = tmp_path / "in"
    (inbox / "sub").mkdir(parents=True)
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("sub"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    paths, unlisted = scan_inbox(inbox)
    assert paths == [] and [u["reason"] for u in unlisted] == ["unreadable_folder"]
    assert "sub" in unlisted[0]["detail"] and "chmod" in unlisted[0]["detail"]


def test_a_staging_area_that_cannot_be_written_stops_the_run_with_a_clear_error(tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "r.txt").write_bytes(b"report")
    blocker = tmp_path / "wh"
    blocker.write_text("a file where the warehouse folder should be")
    with pytest.raises(StagingError) as exc:
        stage_inbox(inbox, blocker / "staging")
    assert "cannot write the staging area" in str(exc.value) and "re-run" in str(exc.value)


def test_display_path_makes_any_name_storable():
    weird = os.fsdecode(b"/in/\xb1\xa8\xb8\xe6.txt")  # "报告" in GBK, not UTF-8
    shown = display_path(weird)
    assert shown == "/in/\\xb1\\xa8\\xb8\\xe6.txt" and shown.encode("utf-8")
    assert display_path("/in/报告 1.txt") == "/in/报告 1.txt"
