"""Incremental runs: the warehouse's record of (content hash, pipeline_version) decides what is processed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import govfacts.version as version_module
from transforms.settings import PROJECT_ROOT, load_settings
from warehouse.snapshots import list_snapshots, query

pytestmark = pytest.mark.e2e
SAMPLES = sorted((PROJECT_ROOT / "seeds" / "reports").iterdir())


def _run(inbox: Path, wh: Path, **kw) -> dict:
    from flows.ingest import ingest

    return ingest(inbox=str(inbox), warehouse=str(wh), **kw)


def _data_snapshots(wh: Path) -> list[int]:
    return [s["snapshot_id"] for s in list_snapshots(load_settings(warehouse=wh)) if s["message"] and "run_id" in s["message"]]


def _fact_rows(wh: Path) -> list[tuple]:
    _, rows = query(load_settings(warehouse=wh), 'SELECT doc_id, indicator, measure, period, kind, value, start, "end" FROM facts ORDER BY ALL')
    return rows


@pytest.fixture(scope="module")
def loaded(prefect_harness, tmp_path_factory):
    """The five samples loaded once, in batches of two."""
    root = tmp_path_factory.mktemp("incremental")
    inbox = root / "inbox"
    inbox.mkdir()
    for p in SAMPLES:
        shutil.copy(p, inbox / p.name)
    first = _run(inbox, root / "wh", batch_size=2)
    return inbox, root / "wh", first


def test_batches_stream_through_parts_that_are_removed_after_the_load(loaded):
    inbox, wh, first = loaded
    assert first["batches"] == 3 and first["documents"] == 5 and first["changed"]
    assert {"normalize", "extract", "validate", "load"} <= set(first["stage_seconds"])
    assert not any((wh / "spill").iterdir()), "the run-scoped Parquet parts must be removed once loaded"
    _, docs = query(load_settings(warehouse=wh), "SELECT count(*), sum(n_facts) FROM documents")
    assert docs == [(5, first["facts_extracted"])]


def test_unchanged_reruns_do_almost_nothing_and_a_new_code_version_reprocesses_everything(loaded, monkeypatch):
    """A new pipeline_version is what an edit of the extractor (or any transform, expectation or seed) makes."""
    inbox, wh, first = loaded
    before = _fact_rows(wh)
    snapshots = _data_snapshots(wh)
    again = _run(inbox, wh, batch_size=2)
    assert again["changed"] is False and again["snapshot_id"] == snapshots[-1]
    assert again["documents"] == 0 and again["batches"] == 0 and again["skipped"] == 5
    assert set(again["stage_seconds"]) == {"stage", "plan"}, "nothing may be normalized, extracted, validated or loaded"
    assert _fact_rows(wh) == before and _data_snapshots(wh) == snapshots

    monkeypatch.setattr("flows.ingest.pipeline_version", lambda: "extractor-v2")
    v2 = _run(inbox, wh, batch_size=2)
    assert v2["documents"] == 5 and v2["skipped"] == 0 and v2["changed"]
    settings = load_settings(warehouse=wh)
    _, versions = query(settings, "SELECT DISTINCT pipeline_version FROM documents UNION ALL SELECT DISTINCT pipeline_version FROM facts")
    assert versions == [("extractor-v2",), ("extractor-v2",)], "old rows must be replaced, not kept beside the new ones"
    assert _fact_rows(wh) == before  # same code underneath, so the same facts — once
    _, quarantine = query(settings, "SELECT count(*) FROM quarantine WHERE pipeline_version <> 'extractor-v2'")
    assert quarantine == [(0,)]
    assert _run(inbox, wh, batch_size=2)["changed"] is False


def test_editing_seeds_indicators_csv_changes_the_pipeline_version(tmp_path: Path, monkeypatch):
    """The version hashes transforms/, expectations/ and seeds/*.csv: a seed edit re-processes (test above)."""
    copy = tmp_path / "project"
    for part in ("transforms", "expectations"):
        shutil.copytree(PROJECT_ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "seeds").mkdir()
    for csv in (PROJECT_ROOT / "seeds").glob("*.csv"):
        shutil.copy(csv, copy / "seeds" / csv.name)
    monkeypatch.setattr(version_module, "PROJECT_ROOT", copy)
    unchanged = version_module.pipeline_version.__wrapped__()
    with open(copy / "seeds" / "indicators.csv", "a", encoding="utf-8") as fh:
        fh.write("tourism_revenue,Tourism revenue,旅游总收入|旅游综合收入,money,-50,100,0,40,Total tourism revenue\n")
    edited = version_module.pipeline_version.__wrapped__()
    assert unchanged != edited
    (copy / "transforms" / "extract" / "__init__.py").write_text((copy / "transforms" / "extract" / "__init__.py").read_text() + "\n# v2\n")
    assert version_module.pipeline_version.__wrapped__() not in (unchanged, edited)


def test_duplicates_are_processed_once_with_every_name_recorded_and_rejects_recorded_once(prefect_harness, tmp_path: Path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(SAMPLES[1], inbox / "a.txt")
    shutil.copy(SAMPLES[1], inbox / "a-copy.txt")
    shutil.copy(SAMPLES[3], inbox / "b.txt")
    (inbox / "empty.txt").write_bytes(b"")
    wh = tmp_path / "wh"
    settings = load_settings(warehouse=wh)
    first = _run(inbox, wh)
    assert first["files_in"] == 4 and first["documents"] == 2 and first["duplicates"] == 1 and first["files_quarantined"] == 1
    names = "SELECT source_names, run_id FROM documents WHERE source_names LIKE '%a.txt%'"
    _, rows = query(settings, names)
    assert len(rows) == 1 and sorted(Path(n).name for n in json.loads(rows[0][0])) == ["a-copy.txt", "a.txt"]
    assert sum(1 for p in (wh / "staging").rglob("*") if p.is_file() and not p.name.startswith(".")) == 3, "identical bytes are staged once"

    shutil.copy(SAMPLES[1], inbox / "a (1).txt")  # the same report downloaded again, before the next run
    again = _run(inbox, wh)
    assert again["documents"] == 0 and again["renamed"] == 1 and again["files_quarantined"] == 0
    assert again["skipped"] == 5 and again["changed"] and again["snapshot_id"] > first["snapshot_id"]
    _, rows = query(settings, names)
    assert sorted(Path(n).name for n in json.loads(rows[0][0])) == ["a (1).txt", "a-copy.txt", "a.txt"]
    assert rows[0][1] == first["run_id"], "a new name is recorded, the document is not re-processed"
    _, rejects = query(settings, "SELECT count(*) FROM quarantine WHERE item = 'file'")
    assert rejects == [(1,)], "a file quarantined at this code version is not recorded again"


def test_parts_of_a_run_that_died_are_swept_and_live_ones_kept(tmp_path: Path):
    from flows.ingest import open_spill, spill_dir, sweep_spills

    settings = load_settings(warehouse=tmp_path / "wh")
    dead = spill_dir(settings, "deadrun")
    dead.mkdir(parents=True)
    (dead / "owner.json").write_text(json.dumps(dict(host=os.uname().nodename, pid=2 ** 22 + 12345)))
    (dead / "facts-b000000.parquet").write_bytes(b"x")
    live = open_spill(settings, "liverun")
    assert not dead.exists() and live.is_dir()
    assert sweep_spills(settings) == [] and live.is_dir()


def test_validation_reads_the_texts_of_one_part_at_a_time(tmp_path: Path):
    import pyarrow as pa

    from warehouse.parts import PartTexts, part_path, write_part

    for label, docs in (("b0", ["d1", "d2"]), ("b1", ["d3"])):
        write_part(tmp_path, "document_text", label, pa.table({"doc_id": docs, "text": [f"text of {d}" for d in docs],
                                                                "raw_text": docs}))
    texts = PartTexts([str(part_path(tmp_path, "document_text", x)) for x in ("b0", "b1", "b2")])  # b2: all rejected, no part
    assert len(texts) == 3 and "d3" in texts and "d9" not in texts and texts._path is None, "membership reads no text"
    assert texts["d1"][:7] == "text of" and texts._path.endswith("document_text-b0.parquet")
    assert texts["d3"] == "text of d3" and set(texts._texts) == {"d3"}, "only the part in use is held"
    with pytest.raises(KeyError):
        texts["d9"]


def test_the_load_caps_document_text_row_groups_so_its_memory_stays_flat(loaded):
    _, wh, _ = loaded
    _, rows = query(load_settings(warehouse=wh), "SELECT value FROM wh.options() WHERE option_name = 'parquet_row_group_size' "
                    "AND scope_entry = 'main.document_text'")
    assert rows == [("256",)]
