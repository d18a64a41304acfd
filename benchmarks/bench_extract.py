"""Extraction throughput on the samples and on the real corpus, optionally beside another checkout, in one run.

    .venv/bin/python benchmarks/bench_extract.py [--repeat N] [--baseline DIR] [--real DIR]

Normalization is done once per document, untimed; only ``extract_document`` (the
call the flow makes: identity, then the facts) is timed. MB/s counts the UTF-8
bytes of the canonical text. Each document gets one untimed warm-up call (which
also loads seeds/); then each document's fastest of ``--repeat`` calls is kept
and summed, on two clocks: process CPU time (steadier on a shared machine) and
wall time.

With ``--baseline DIR`` the same measurement runs for the code in DIR (e.g. a
worktree of an older commit). Each side runs in its own worker process (so the
two never share imports or caches) and the parent interleaves them pass by
pass and corpus by corpus: a burst of load from elsewhere on the machine hits
both alike, and the ratios printed come from one run. The goal (issue 16):
current / baseline >= 2 on both corpora.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPORA = {"samples": ROOT / "seeds" / "reports", "real": ROOT / "tests" / "corpus" / "real"}


def _documents(folder: Path) -> list[Path]:
    """The report files of one corpus folder (README/MANIFEST files are not reports)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".txt", ".html", ".htm"))


# --- worker: runs inside the checkout being measured ------------------------------------------


def _worker(corpora: dict[str, list[str]]) -> None:
    """Normalize every document once, then answer ``run <corpus>`` lines with one timed pass each.

    Each reply is one JSON line: per document, [CPU seconds, wall seconds]. The
    first line written says which ``transforms`` was imported and the text sizes,
    so the parent can check it measures the checkout it meant to.
    """
    import hashlib

    import transforms.extract as extract
    from transforms.extract import extract_document
    from transforms.normalize import normalize_report

    docs = {}
    for name, paths in corpora.items():
        items = []
        for p in paths:
            data = Path(p).read_bytes()
            norm = normalize_report(data, p)
            items.append((norm, hashlib.sha256(data).hexdigest()))
            extract_document(norm, items[-1][1])  # warm-up, untimed (loads seeds/, compiles patterns)
        docs[name] = items
    sizes = {name: sum(len(n.text.encode("utf-8")) for n, _ in items) for name, items in docs.items()}
    facts = {name: sum(len(extract_document(n, d)) for n, d in items) for name, items in docs.items()}
    print(json.dumps({"module": extract.__file__, "bytes": sizes, "facts": facts}), flush=True)
    for line in sys.stdin:
        name = line.split()[1]
        times = []
        for norm, doc_id in docs[name]:
            c0, w0 = time.process_time(), time.perf_counter()
            extract_document(norm, doc_id)
            times.append([time.process_time() - c0, time.perf_counter() - w0])
        print(json.dumps(times), flush=True)


# --- parent: interleaves the workers and prints the figures -----------------------------------


class _Side:
    """One checkout's worker process and the fastest time seen for each document."""

    def __init__(self, label: str, checkout: Path, corpora: dict[str, list[str]]):
        self.label = label
        env = dict(os.environ, PYTHONPATH=str(checkout))  # ahead of the editable install of this checkout
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(corpora)], cwd=checkout, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self.proc.stdout.readline())
        self.best = {name: [[float("inf")] * 2 for _ in paths] for name, paths in corpora.items()}

    def run(self, name: str) -> None:
        """One timed pass over a corpus; keeps each document's best CPU and wall time."""
        self.proc.stdin.write(f"run {name}\n")
        self.proc.stdin.flush()
        for best, t in zip(self.best[name], json.loads(self.proc.stdout.readline())):
            best[0], best[1] = min(best[0], t[0]), min(best[1], t[1])

    def mbs(self, name: str, clock: int) -> float:
        return self.info["bytes"][name] / sum(b[clock] for b in self.best[name]) / 1e6

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="timed passes per corpus and side (default 10)")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure beside this one (e.g. /tmp/old)")
    parser.add_argument("--samples", type=Path, default=CORPORA["samples"], help="folder of sample reports")
    parser.add_argument("--real", type=Path, default=CORPORA["real"], help="folder of real reports")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(json.loads(args.worker))
        return

    corpora = {"samples": [str(p) for p in _documents(args.samples)], "real": [str(p) for p in _documents(args.real)]}
    sides = [_Side("current", ROOT, corpora)]
    if args.baseline:
        sides.append(_Side("baseline", args.baseline.resolve(), corpora))
    try:
        for _ in range(args.repeat):
            for name in corpora:
                for side in (sides if _ % 2 == 0 else sides[::-1]):  # alternate who goes first
                    side.run(name)
    finally:
        for side in sides:
            side.close()

    print(f"extract_document only (normalized once, untimed); MB/s of canonical UTF-8 text; "
          f"each document's best of {args.repeat} calls, summed; sides interleaved")
    for side in sides:
        print(f"  {side.label:8s} {side.info['module']}")
    for name in corpora:
        n, mb = len(corpora[name]), sides[0].info["bytes"][name] / 1e6
        facts = "  ".join(f"{s.label} {s.info['facts'][name]}" for s in sides)
        print(f"{name}: {n} documents, {mb:.3f} MB, facts: {facts}")
        for clock, label in ((0, "cpu"), (1, "wall")):
            figures = "  ".join(f"{s.label} {s.mbs(name, clock):6.2f} MB/s" for s in sides)
            ratio = f"  ratio {sides[0].mbs(name, clock) / sides[1].mbs(name, clock):5.2f}x" if len(sides) > 1 else ""
            print(f"  [{label:4s}] {figures}{ratio}")
    if len(sides) > 1:
        print("goal (issue 16): ratio >= 2.00 on both corpora")


if __name__ == "__main__":
    main()
