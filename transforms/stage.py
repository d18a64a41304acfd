"""Stage: copy each inbox file content-addressed into the staging area.

Staging is the only place that reads the inbox. A file that cannot be staged
(unreadable, a symlink leaving the inbox, not a regular file) becomes a
quarantine record, never an exception that stops the run.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from transforms.schema import StagedFile


@dataclass
class StageResult:
    """What staging found: staged files (one per distinct content), rejects and the manifest."""

    files_in: int = 0
    staged: list[StagedFile] = field(default_factory=list)
    names: dict[str, list[str]] = field(default_factory=dict)  # sha256 -> every source path
    rejected: list[dict] = field(default_factory=list)

    @property
    def manifest_hash(self) -> str:
        """sha256 over the sorted content hashes and names: identifies the run's input."""
        h = hashlib.sha256()
        for sha in sorted(self.names):
            h.update(sha.encode())
            for n in sorted(self.names[sha]):
                h.update(n.encode("utf-8", "surrogateescape"))
        return h.hexdigest()


def list_inbox(inbox: Path) -> list[Path]:
    """Every entry under the inbox (recursively), in a stable order; hidden files skipped."""
    out = []
    for root, dirs, files in os.walk(inbox, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return out


def _reject(path: Path, reason: str, detail: str, sha: str | None = None) -> dict:
    return dict(item="file", source_path=str(path), sha256=sha, fact_id=None, stage="stage", reason=reason, detail=detail, evidence=None)


def stage_file(path: Path, inbox: Path, staging: Path) -> StagedFile | dict:
    """Copy one file to ``staging/<sha[:2]>/<sha>``; return it, or a quarantine record."""
    real = path.resolve()
    if path.is_symlink() and not real.is_relative_to(inbox.resolve()):
        return _reject(path, "outside_inbox", f"{path}: a symbolic link pointing outside the inbox ({real}); copy the file itself into the inbox.")
    if not real.is_file():
        return _reject(path, "not_a_file", f"{path}: not a regular file; put report files (UTF-8/GB18030/Big5/UTF-16 text or HTML) in the inbox.")
    try:
        data = real.read_bytes()
    except OSError as exc:
        return _reject(path, "unreadable", f"{path}: cannot be read ({exc.strerror}); fix its permissions (chmod a+r) and re-run.")
    sha = hashlib.sha256(data).hexdigest()
    target = staging / sha[:2] / sha
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)  # atomic: a crash never leaves a half-written staged file
    return StagedFile(source_path=str(path), sha256=sha, n_bytes=len(data), staged_path=str(target))


def stage_inbox(inbox: Path, staging: Path) -> StageResult:
    """Stage every file of the inbox; identical bytes under several names are staged once."""
    result = StageResult()
    for path in list_inbox(inbox):
        result.files_in += 1
        got = stage_file(path, inbox, staging)
        if isinstance(got, dict):
            result.rejected.append(got)
            continue
        if got.sha256 not in result.names:
            result.staged.append(got)
        result.names.setdefault(got.sha256, []).append(got.source_path)
    return result
