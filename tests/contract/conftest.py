"""Prism (`@stoplight/prism-cli`) mock servers on Twilio's official OpenAPI specs, started once per session.

Prism validates every request against the spec (an invalid request gets a 422
with the violations) and answers valid ones with the spec's static examples.

Prism runs without `--errors` on purpose: with it, Prism also checks its own
answers and turns them into 500s, and several of Twilio's examples break their
own schema (relative `uri`/`first_page_uri` where the schema says format uri).
Request violations still get a 422 without the flag; anything else Prism has to
say about a request comes in the `sl-violations` header, which the tests read.
Missing Prism fails the stage when `CI` is set and skips it otherwise.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

START_TIMEOUT = 90.0


def _repo_root() -> Path:
    return Path(settings.BASE_DIR)


def _spec_dir() -> Path:
    """../shared/twilio-oai beside the checkout (TWILIO_OAI_DIR overrides)."""
    return Path(os.environ.get("TWILIO_OAI_DIR") or _repo_root().parent / "shared" / "twilio-oai")


def _prism_bin() -> Path:
    return _repo_root() / "node_modules" / ".bin" / "prism"


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"Contract stage cannot run: {reason}", pytrace=False)
    pytest.skip(f"contract stage skipped: {reason} (set CI=1 to make this a failure)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrismServer:
    def __init__(self, spec: Path):
        self.spec = spec
        self.port = _free_port()
        self.log = tempfile.NamedTemporaryFile(prefix=f"prism-{spec.stem}-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [str(_prism_bin()), "mock", "--host", "127.0.0.1", "--port", str(self.port), str(spec)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(_repo_root()),
            start_new_session=True,
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Prism on {self.spec.name} exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                urllib.request.urlopen(self.base_url + "/", timeout=2)
                return
            except urllib.error.HTTPError:
                return  # any HTTP answer means it is serving
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"Prism on {self.spec.name} did not answer within {START_TIMEOUT:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)  # the group we created with start_new_session
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def prism_servers():
    """{"api": PrismServer on twilio_api_v2010.json, "monitor": PrismServer on twilio_monitor_v1.json}."""
    if not _prism_bin().exists():
        _unavailable(f"{_prism_bin()} is missing: run `npm ci` (package.json lists @stoplight/prism-cli)")
    if shutil.which("node") is None:
        _unavailable("node is not on PATH")
    specs = {"api": _spec_dir() / "twilio_api_v2010.json", "monitor": _spec_dir() / "twilio_monitor_v1.json"}
    missing = [str(p) for p in specs.values() if not p.exists()]
    if missing:
        _unavailable(f"Twilio OpenAPI spec not found: {', '.join(missing)}")
    servers = {name: PrismServer(spec) for name, spec in specs.items()}
    try:
        deadline = time.monotonic() + START_TIMEOUT
        for server in servers.values():
            server.wait_ready(deadline)
    except RuntimeError as exc:
        for server in servers.values():
            server.stop()
        pytest.fail(str(exc), pytrace=False)
    yield servers
    for server in servers.values():
        server.stop()
