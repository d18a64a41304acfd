"""A throwaway S3-compatible server for the object-storage tests: moto in server mode, a separate process.

``moto_server`` speaks the S3 REST API over HTTP on a free port of 127.0.0.1 (what a MinIO gives in
production); DuckDB's httpfs and pyarrow's S3 client reach it through the endpoint in the AWS
environment, like any other S3. Import the fixture into a test module: ``from tests.s3 import s3_server``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pg import free_port

# Made-up credentials with a recognisable secret: the tests look for it everywhere it must not be.
ACCESS_KEY = "GOVFACTSTESTKEYID"
SECRET_KEY = "govfacts-SECRET-" + "x7Qz9LkP2mVw4RtY"


@dataclass
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT
    proc: subprocess.Popen
    log: Path  # the server's access log: one line per request (method, path, status)

    def env(self) -> dict[str, str]:
        """The AWS environment a client (govfacts, a Dask worker) is given to reach the server."""
        return dict(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION="us-east-1",
                    AWS_ENDPOINT_URL=self.endpoint)

    def client(self):
        import boto3  # noqa: PLC0415

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1")

    def new_bucket(self) -> str:
        name = f"govfacts-{uuid.uuid4().hex[:10]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        out, token = [], None
        while True:
            kw = dict(Bucket=bucket, Prefix=prefix, **({"ContinuationToken": token} if token else {}))
            page = self.client().list_objects_v2(**kw)
            out += [o["Key"] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return sorted(out)
            token = page["NextContinuationToken"]

    def read(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One moto S3 server for the session, started as its own process (``moto_server``)."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    exe = Path(sys.executable).parent / "moto_server"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto_server did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
    try:
        yield S3Server(endpoint, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
