"""Debian's headless Chromium driven over the DevTools protocol (a websocket, ``websockets`` comes with Prefect).

Enough to open a page, wait for what a script finds on it, click, and take a screenshot:
what a user of a single-page app (the Prefect UI) does, which ``--dump-dom`` cannot.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def print_report_pdf(exe: str, text: str, folder: Path, stem: str = "report") -> Path:
    """``text`` as a web page (one paragraph per line), printed to ``folder/<stem>.pdf`` by headless chromium.

    The way a browser user saves a published report: several pages, chromium's own running header
    (date, page title) and footer (URL, n/m) on each, which the PDF reader must drop.
    """
    import html  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    page = folder / f"{stem}.html"
    page.write_text('<!doctype html><html><head><meta charset="utf-8"><title>政府工作报告</title></head><body>'
                    + "".join(f"<p>{html.escape(line)}</p>" for line in text.split("\n") if line.strip()) + "</body></html>", "utf-8")
    pdf = folder / f"{stem}.pdf"
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={folder / f'profile-{stem}'}",
                    f"--print-to-pdf={pdf}", page.as_uri()], capture_output=True, timeout=120, check=False)
    assert pdf.exists() and pdf.read_bytes().startswith(b"%PDF"), f"chromium did not print {page}"
    return pdf


class Browser:
    def __init__(self, profile: Path, width: int = 1400, height: int = 1000):
        from websockets.sync.client import connect

        exe = chromium_path()
        if exe is None:
            raise FileNotFoundError("Debian's chromium is not installed: apt-get update && apt-get install -y chromium")
        profile.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                                      "--remote-debugging-port=0", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                                      "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json() if t["type"] == "page"]
        self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=10)
        self.ids = itertools.count(1)

    def send(self, method: str, timeout: float = 30, **params):
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def eval(self, js: str):
        result = self.send("Runtime.evaluate", expression=js, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, js: str, timeout: float = 30, what: str = "") -> object:
        """Evaluate ``js`` until it returns something truthy; return that."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.eval(js)
            except RuntimeError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"not on the page after {timeout:.0f} s: {what or js}\npage text: {self.text()[:2000]}")
            time.sleep(0.25)

    def text(self) -> str:
        return self.eval("document.body ? document.body.innerText : ''") or ""

    def click_text(self, selector: str, text: str) -> bool:
        return self.eval(f"""(() => {{ const el = [...document.querySelectorAll({json.dumps(selector)})]
                                 .find(e => e.innerText.trim() === {json.dumps(text)});
                                 if (el) {{ el.click(); return true; }} return false; }})()""")

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
