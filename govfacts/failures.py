"""Failures of the environment (not of an input file), told as one clear message each.

A bad *file* is quarantined and the run goes on. A bad *environment* (the disk is
full, the warehouse is not writable, the Prefect server is down) stops the run;
the user then needs to know what happened, that nothing half-done was published,
and what to do — not a stack trace. The CLI asks this module for that sentence.
"""

from __future__ import annotations

import errno
import os
import re
from urllib.parse import urlparse

from transforms.errors import GovfactsError

_DISK_FULL = re.compile(r"No space left on device|Disk quota exceeded|File too large", re.I)
_NOT_WRITABLE = re.compile(r"Permission denied|Read-only file system|Operation not permitted", re.I)


def prefect_api_url() -> str | None:
    """The Prefect API URL govfacts would use, or None when Prefect runs embedded (its ephemeral server)."""
    from prefect.settings import get_current_settings  # noqa: PLC0415 (configure_prefect must run first)

    url = get_current_settings().api.url
    return str(url) if url else None


def prefect_api_problem(timeout: float = 5.0) -> str | None:
    """Why the configured Prefect server cannot be used, or None when it answers (or none is configured).

    Checked before the run starts so an unreachable server is one clear line,
    instead of a retry loop ending in a traceback from deep inside the client.
    """
    url = prefect_api_url()
    if not url:
        return None
    import httpx  # noqa: PLC0415

    try:
        response = httpx.get(url.rstrip("/") + "/health", timeout=timeout)
    except httpx.HTTPError as exc:
        reason = _short(exc) or type(exc).__name__
    else:
        if response.status_code == 200:
            return None
        reason = f"HTTP {response.status_code}"
    host = urlparse(url).netloc or url
    return (f"cannot reach the Prefect server at {url} ({reason}). Start it (`prefect server start`, listening on {host}), "
            f"correct PREFECT_API_URL, or unset PREFECT_API_URL to let govfacts run Prefect embedded. Nothing was run.")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _snapshot_note(settings) -> str:
    """'still at snapshot N' when the warehouse can be read, else a generic reassurance."""
    try:
        from warehouse.snapshots import list_snapshots  # noqa: PLC0415

        snaps = list_snapshots(settings)
        return f"the warehouse is still at snapshot {max(s['snapshot_id'] for s in snaps)}" if snaps else "the warehouse is unchanged"
    except Exception:  # noqa: BLE001 (a best-effort note inside an error message; the real error is already known)
        return "the warehouse is still at its previous snapshot"


def explain_failure(exc: BaseException, settings) -> str | None:
    """The message for an environment failure that stopped a run, or None when ``exc`` is not one."""
    for e in _chain(exc):
        if isinstance(e, GovfactsError):
            return str(e)
    for e in _chain(exc):
        text = _short(e)
        code = getattr(e, "errno", None)
        full = code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or bool(_DISK_FULL.search(text))
        locked = code in (errno.EACCES, errno.EPERM, errno.EROFS) or bool(_NOT_WRITABLE.search(text))
        if not (full or locked) or not (isinstance(e, OSError) or type(e).__module__.startswith(("duckdb", "_duckdb"))):
            continue
        todo = "free some disk space there" if full else f"make it writable (check permissions and mounts of {settings.warehouse})"
        what = "the disk is full" if full else "it is not writable"
        return (f"could not write the warehouse at {settings.warehouse}: {what} ({text}). "
                f"Nothing was committed: {_snapshot_note(settings)}. {todo[0].upper() + todo[1:]}, or pass --warehouse DIR, "
                f"then re-run `govfacts run` (staged files are reused).")
    for e in _chain(exc):
        if isinstance(e, RuntimeError) and "ephemeral Prefect API server" in str(e):
            return ("Prefect's embedded server did not start in time (a busy machine?); nothing was run or committed. "
                    "Re-run, or allow it longer: PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=300 govfacts run ...")
    try:
        import httpx  # noqa: PLC0415
    except ImportError:  # pragma: no cover (httpx ships with Prefect)
        return None
    for e in _chain(exc):
        if isinstance(e, httpx.TransportError):
            return (f"lost the connection to the Prefect server ({_short(e) or type(e).__name__}); nothing was committed. "
                    f"Check that the server is running (PREFECT_API_URL={os.environ.get('PREFECT_API_URL', '<embedded>')}) and re-run.")
    return None
