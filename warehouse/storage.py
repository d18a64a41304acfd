"""Object storage: the lake's data files and a run's spilled parts on S3 (MinIO, AWS, any S3-compatible server).

Two clients reach the store, with one configuration:

* DuckDB, through the ``httpfs`` extension (the signed binary of the ``duckdb-extension-httpfs`` wheel,
  LOADed like the others in warehouse/catalog.py): DuckLake's data files and the load's ``read_parquet``
  of the spilled parts;
* pyarrow's ``S3FileSystem``: the batches' Parquet parts, written by workers that may run anywhere.

Where the server is comes from the settings (``GOVFACTS_S3_ENDPOINT``, ``_REGION``, ``_URL_STYLE``) or
the standard ``AWS_ENDPOINT_URL[_S3]`` / ``AWS_REGION``. Credentials are never settings: they come from
the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), become a
TEMPORARY DuckDB secret that lives in the session's memory only, and are then blanked from DuckDB's
``s3_*`` settings — httpfs copies the environment into them, and ``duckdb_settings()`` would show them to
any query. Without those variables DuckDB uses a persistent secret the user created
(``CREATE PERSISTENT SECRET … (TYPE s3, …)`` in ``~/.duckdb/stored_secrets``); pyarrow then uses the
AWS SDK's own chain (``~/.aws/credentials``, instance roles). Nothing of them is written to the
warehouse, its catalog (which stores only the ``s3://`` data path) or any log.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

REMOTE_SCHEMES = ("s3://",)
CREDENTIAL_SETTINGS = ("s3_access_key_id", "s3_secret_access_key", "s3_session_token")


def is_remote(path: str) -> bool:
    """True for an object-store URI (``s3://bucket/prefix/``), False for a local or mounted path."""
    return str(path).startswith(REMOTE_SCHEMES)


def _first_env(*names: str) -> str:
    return next((os.environ[n] for n in names if os.environ.get(n)), "")


def s3_options(settings=None) -> dict:
    """Endpoint (host:port), SSL, region and URL style of the S3 server, from the settings or the AWS environment."""
    if settings is None:
        from transforms.settings import load_settings  # noqa: PLC0415
        settings = load_settings()
    endpoint = settings.s3_endpoint or _first_env("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    use_ssl = True
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        use_ssl, endpoint = parts.scheme == "https", parts.netloc
    region = settings.s3_region or _first_env("AWS_REGION", "AWS_DEFAULT_REGION") or "us-east-1"
    url_style = settings.s3_url_style or ("path" if endpoint else "vhost")
    if url_style not in ("path", "vhost"):
        raise ValueError(f"s3_url_style {url_style!r}: choose path (MinIO and most S3-compatible servers) or vhost (AWS)")
    return dict(endpoint=endpoint, use_ssl=use_ssl, region=region, url_style=url_style)


def _credentials() -> dict:
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID", ""), os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    return dict(key=key, secret=secret, token=os.environ.get("AWS_SESSION_TOKEN", "")) if key and secret else {}


def _lit(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def configure_duckdb(con, settings) -> None:
    """Give a DuckDB session (httpfs loaded) access to the object store without exposing the credentials.

    A TEMPORARY secret (memory only, never persisted) from the AWS environment when it is set; the
    ``s3_*`` credential settings httpfs filled from that environment are blanked either way.
    """
    opts = s3_options(settings)
    for name in CREDENTIAL_SETTINGS:
        con.execute(f"SET GLOBAL {name} = ''")  # GLOBAL: every cursor of a shared instance sees it
    creds = _credentials()
    if creds:
        fields = [f"KEY_ID {_lit(creds['key'])}", f"SECRET {_lit(creds['secret'])}", f"REGION {_lit(opts['region'])}",
                  f"URL_STYLE {_lit(opts['url_style'])}", f"USE_SSL {'true' if opts['use_ssl'] else 'false'}"]
        if creds["token"]:
            fields.append(f"SESSION_TOKEN {_lit(creds['token'])}")
        if opts["endpoint"]:
            fields.append(f"ENDPOINT {_lit(opts['endpoint'])}")
        con.execute(f"CREATE OR REPLACE TEMPORARY SECRET govfacts_s3 (TYPE s3, {', '.join(fields)})")
    else:
        # A persistent secret of the user's: read it now, while the session may still read files (a sandboxed
        # session loses that right before its first query of the lake).
        con.execute("SELECT count(*) FROM duckdb_secrets()").fetchall()
        if opts["endpoint"]:
            con.execute(f"SET GLOBAL s3_endpoint = {_lit(opts['endpoint'])}")
            con.execute(f"SET GLOBAL s3_url_style = {_lit(opts['url_style'])}")
            con.execute(f"SET GLOBAL s3_use_ssl = {'true' if opts['use_ssl'] else 'false'}")
        con.execute(f"SET GLOBAL s3_region = {_lit(opts['region'])}")


def filesystem(path: str, settings=None):
    """(pyarrow FileSystem, path within it) for a local path or an ``s3://`` URI."""
    from pyarrow import fs  # noqa: PLC0415

    if not is_remote(path):
        return fs.LocalFileSystem(), str(path)
    opts = s3_options(settings)
    creds = _credentials()
    kwargs = dict(region=opts["region"], scheme="https" if opts["use_ssl"] else "http",
                  force_virtual_addressing=opts["url_style"] == "vhost")
    if opts["endpoint"]:
        kwargs["endpoint_override"] = opts["endpoint"]
    if creds:
        kwargs.update(access_key=creds["key"], secret_key=creds["secret"], session_token=creds["token"] or None)
    return fs.S3FileSystem(**kwargs), str(path).split("://", 1)[1]


def join(root: str, *names: str) -> str:
    """``root/name/...`` for a local path or a URI."""
    return "/".join([str(root).rstrip("/"), *names])
