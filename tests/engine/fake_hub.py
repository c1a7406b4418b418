"""A Hugging Face hub on 127.0.0.1 that serves model folders as repos, slowly.

Just the endpoints `huggingface_hub` (2.x) and diffusers use to download a pipeline:
model info (`/api/models/{repo}[/revision/{rev}]`, siblings with sizes), the file
tree (`/api/models/{repo}/tree/{rev}`), and `HEAD`/`GET /{repo}/resolve/{rev}/{path}`
with the headers `get_hf_file_metadata` reads (X-Repo-Commit, ETag, Content-Length).
Files are sent at `bytes_per_second`, so a download takes long enough to watch.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CHUNK = 32 * 1024

_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?P<path>/.*)?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


class FakeHub:
    def __init__(self, repos: dict[str, Path], *, bytes_per_second: float = 0) -> None:
        self.repos = repos
        self.bytes_per_second = bytes_per_second
        self.downloads: list[str] = []  # "repo/path" of every file body sent
        self.gone = False  # closed: kept-alive connections are dropped too
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving: from now on the hub is out of reach. Idempotent."""
        self.gone = True
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def files(self, repo: str) -> dict[str, Path]:
        root = self.repos[repo]
        return {
            str(path.relative_to(root)): path for path in sorted(root.rglob("*")) if path.is_file()
        }

    def total_bytes(self, repo: str, paths: list[str]) -> int:
        files = self.files(repo)
        return sum(files[path].stat().st_size for path in paths)


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            if hub.gone:  # hang up, as an unreachable host would
                self.close_connection = True
                return
            path = unquote(urlsplit(self.path).path)
            if match := _INFO.match(path):
                self._info(match["repo"], body)
            elif match := _TREE.match(path):
                self._tree(match["repo"], body)
            elif match := _RESOLVE.match(path):
                self._file(match["repo"], match["path"], body)
            else:
                self._json({"error": "not found"}, body, status=404)

        def _info(self, repo: str, body: bool) -> None:
            if repo not in hub.repos:
                self._json({"error": "Repository not found"}, body, 404, "RepoNotFound")
                return
            siblings = [
                {"rfilename": name, "size": file.stat().st_size}
                for name, file in hub.files(repo).items()
            ]
            self._json({"id": repo, "sha": COMMIT, "private": False, "siblings": siblings}, body)

        def _tree(self, repo: str, body: bool) -> None:
            if repo not in hub.repos:
                self._json({"error": "Repository not found"}, body, 404, "RepoNotFound")
                return
            entries = [
                {"type": "file", "path": name, "size": file.stat().st_size, "oid": _git_oid(file)}
                for name, file in hub.files(repo).items()
            ]
            self._json(entries, body)

        def _file(self, repo: str, name: str, body: bool) -> None:
            file = hub.files(repo).get(name) if repo in hub.repos else None
            if file is None:
                self._json({"error": "Entry not found"}, body, 404, "EntryNotFound")
                return
            data = file.read_bytes()
            self.send_response(200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if not body:
                return
            hub.downloads.append(f"{repo}/{name}")
            for start in range(0, len(data), CHUNK):
                chunk = data[start : start + CHUNK]
                self.wfile.write(chunk)
                self.wfile.flush()
                if hub.bytes_per_second:
                    time.sleep(len(chunk) / hub.bytes_per_second)

        def _json(self, value: object, body: bool, status: int = 200, code: str = "") -> None:
            data = json.dumps(value).encode()
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

    return Handler


def _git_oid(file: Path) -> str:
    data = file.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# Files a real repo has that a pipeline load must not fetch: an fp16 variant, the
# single-file checkpoint kept at the top, a model card.
EXTRA_FILES = (
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "tiny-pruned.safetensors",
    "README.md",
)


def make_repo(model_dir: Path, target: Path) -> Path:
    """`model_dir` as a hub repo would hold it, with EXTRA_FILES beside it."""
    shutil.copytree(model_dir, target)
    weights = (target / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    (target / EXTRA_FILES[0]).write_bytes(weights)
    (target / EXTRA_FILES[1]).write_bytes(weights)
    (target / EXTRA_FILES[2]).write_text("# tiny\n")
    return target


def pipeline_files(repo: Path) -> list[str]:
    """What loading the repo's pipeline needs: all but EXTRA_FILES."""
    return [
        str(path.relative_to(repo))
        for path in sorted(repo.rglob("*"))
        if path.is_file() and str(path.relative_to(repo)) not in EXTRA_FILES
    ]


def use_hub(monkeypatch: pytest.MonkeyPatch, hub: FakeHub, cache: Path) -> None:
    """Engine processes started from now on in this test download from `hub` into
    `cache` (this process keeps its offline hub client: its constants are read once)."""
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
