"""Extraction throughput on the sample reports: documents per second and MB/s.

Run: ``.venv/bin/python benchmarks/bench_extract.py [--repeat N] [--docs DIR]``.
Normalization is done once up front; the figure is the extract stage alone
(``extract_document``), measured over N passes after one warm-up pass (which
also loads the seeds). MB/s counts the UTF-8 bytes of the canonical text.
Wall-clock and CPU figures are both printed (they differ when the machine is
busy). A last line times normalize + extract together, as the flow runs them.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transforms.extract import extract_document  # noqa: E402
from transforms.normalize import normalize_report  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20, help="passes over the documents (default 20)")
    ap.add_argument("--docs", type=Path, default=ROOT / "seeds" / "reports", help="directory of reports")
    args = ap.parse_args()
    files = sorted(p for p in args.docs.iterdir() if p.is_file())
    raw = [(p, p.read_bytes()) for p in files]
    norms = [(normalize_report(data, str(p)), hashlib.sha256(data).hexdigest()) for p, data in raw]
    text_bytes = sum(len(n.text.encode("utf-8")) for n, _ in norms)
    raw_bytes = sum(len(d) for _, d in raw)
    n_facts = sum(len(extract_document(n, d)) for n, d in norms)  # warm-up (loads seeds)

    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.repeat):
        for n, d in norms:
            extract_document(n, d)
    dt, ct = time.perf_counter() - t0, time.process_time() - c0
    docs = len(norms) * args.repeat
    print(f"extract:            {len(norms)} documents, {n_facts} facts, {args.repeat} passes, one process")
    print(f"extract (wall):     {docs / dt:8.1f} documents/s  {text_bytes * args.repeat / dt / 1e6:6.2f} MB/s (canonical text)  {dt / docs * 1e3:6.2f} ms/document")
    print(f"extract (CPU):      {docs / ct:8.1f} documents/s  {text_bytes * args.repeat / ct / 1e6:6.2f} MB/s (canonical text)  {ct / docs * 1e3:6.2f} ms/document"
          "  (CPU time: steadier than wall time on a loaded machine)")

    t0 = time.perf_counter()
    for _ in range(max(1, args.repeat // 4)):
        for p, data in raw:
            extract_document(normalize_report(data, str(p)), "x")
    dt = time.perf_counter() - t0
    docs = len(raw) * max(1, args.repeat // 4)
    print(f"normalize+extract:  {docs / dt:8.1f} documents/s  {raw_bytes * max(1, args.repeat // 4) / dt / 1e6:6.2f} MB/s (raw bytes)")


if __name__ == "__main__":
    main()
