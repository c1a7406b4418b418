"""Fetching a hub model before diffusers loads it, so a first start is not silent.

A first `from_pretrained` of a hub id downloads gigabytes without a word. Here the
files the pipeline needs are fetched first with `huggingface_hub.snapshot_download`
while a watcher measures the bytes arriving in the hub cache: a bar on a terminal,
a log line every 10 % or 15 s (size, speed, ETA), and `DownloadProgress` for whoever
listens (the engine process sends it to the bot, which tells waiting users).
diffusers then loads from the filled cache as before (and fetches anything this
missed itself). Offline (`HF_HUB_OFFLINE=1`) nothing is fetched here.

The bytes are measured on disk, not through the hub's tqdm hooks, which differ
between its download paths (plain HTTP, Xet) and versions; either way they arrive in
chunks of up to 10 MB (the hub client's), fine for the gigabytes of a real model.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("atelier.engine.download")

# Seconds between looks at the cache while a download runs.
POLL_INTERVAL = 0.5
# A log line at every LOG_PERCENT of the download, and at least every LOG_INTERVAL s.
LOG_PERCENT = 10
LOG_INTERVAL = 15.0
# A progress report at least this often even when no byte arrived (seconds): the bot
# counts the download as alive while reports come (a job's timeout waits), and the hub
# client hands over bytes in chunks of up to 10 MB, which a slow link takes a while to
# fill. A download that truly stalls ends in the hub client's own read timeout.
HEARTBEAT = 1.0

# Components Atelier never loads: diffusers' safety checker is replaced by its own
# optional classifier (engine/nsfw.py), so SD 1.x's 1.2 GB checker stays on the hub.
SKIPPED_COMPONENTS = frozenset({"safety_checker", "feature_extractor"})
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5", ".onnx")
_SHARD = re.compile(r"-\d{5}-of-\d{5}$")
_WEIGHT_INDEX = re.compile(
    r"^(?P<stem>.+)\.(?P<format>safetensors|bin)\.index(?P<variant>\..+)?\.json$"
)


@dataclass(frozen=True)
class DownloadProgress:
    """How far the download of `model` is: bytes done of `total`."""

    model: str
    done: int
    total: int
    eta_seconds: float | None = None

    @property
    def percent(self) -> int:
        """0..100, and 100 only once every byte is there."""
        if self.total <= 0:
            return 100
        return min(100 if self.done >= self.total else 99, self.done * 100 // self.total)


Report = Callable[[DownloadProgress], None]
# The bot side: called with each report while a model downloads, None once it is over.
DownloadCallback = Callable[[DownloadProgress | None], None]

_report: contextvars.ContextVar[Report | None] = contextvars.ContextVar(
    "atelier_download_report", default=None
)


@contextlib.contextmanager
def reporting(report: Report) -> Iterator[None]:
    """Downloads started inside this block send their progress to `report` (called
    from a watcher thread)."""
    token = _report.set(report)
    try:
        yield
    finally:
        _report.reset(token)


class Downloads:
    """The bot side (engine/client.py): the download the engine reports, and its
    listeners. Imports nothing heavy: the bot process uses it."""

    def __init__(self) -> None:
        self.callbacks: list[DownloadCallback] = []
        self._request: int | None = None
        self.current: DownloadProgress | None = None

    def report(self, request_id: int, progress: DownloadProgress) -> None:
        # The last report says every byte is there: the load goes on, the download not.
        if progress.done >= progress.total:
            self.request_over(request_id)
        else:
            self._set(request_id, progress)

    def request_over(self, request_id: int) -> None:
        """The request ended (or its download did): whatever it downloaded is over."""
        if self._request == request_id:
            self._set(None, None)

    def _set(self, request_id: int | None, progress: DownloadProgress | None) -> None:
        self._request, self.current = request_id, progress
        for callback in self.callbacks:
            try:
                callback(progress)
            except Exception:
                log.exception("a download listener failed")


def format_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


# -- which files ---------------------------------------------------------------------


def needed_files(index: dict[str, Any], files: list[str]) -> list[str]:
    """The repo files a diffusers pipeline described by `index` (its model_index.json)
    loads without a variant: each component's folder with one set of weights
    (safetensors if it has them, else .bin; never fp16 & co. variants, other formats or
    the single-file checkpoints some repos keep at the top)."""
    components = {
        name
        for name, value in index.items()
        if not name.startswith("_")
        and isinstance(value, list | tuple)
        and len(value) == 2
        and value[1] is not None
        and name not in SKIPPED_COMPONENTS
    }
    chosen = ["model_index.json"] if "model_index.json" in files else []
    by_folder: dict[str, list[str]] = {}
    for path in files:
        folder, _, name = path.rpartition("/")
        if folder in components and "/" not in folder:
            by_folder.setdefault(folder, []).append(name)
    for folder, names in sorted(by_folder.items()):
        weights = {name: _weight_kind(name) for name in names}
        plain = {kind for kind in weights.values() if kind in ("safetensors", "bin")}
        keep = "safetensors" if "safetensors" in plain else "bin"
        for name in sorted(names):
            kind = weights[name]
            if kind is None or kind == keep:
                chosen.append(f"{folder}/{name}")
    return chosen


def _weight_kind(name: str) -> str | None:
    """None for a config, tokenizer or other non-weight file; else "safetensors" or
    "bin" for variant-free weights (and their shard index), "other" for the rest."""
    index = _WEIGHT_INDEX.match(name)
    if index:
        return "other" if index["variant"] or "." in index["stem"] else index["format"]
    suffix = next((s for s in WEIGHT_SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        return None
    stem = _SHARD.sub("", name.removesuffix(suffix))
    if "." in stem or suffix not in (".safetensors", ".bin"):
        return "other"  # a variant (model.fp16.safetensors) or another format
    return suffix.lstrip(".")


# -- fetching ------------------------------------------------------------------------


def fetch(repo_id: str, display_name: str) -> None:
    """Download what `repo_id`'s pipeline needs into the hub cache, with progress;
    nothing when it is cached already or the hub is offline. A hub that cannot be
    asked (no network, a private repo) is left to diffusers, which tries the cache."""
    from huggingface_hub import HfApi, constants, snapshot_download, try_to_load_from_cache
    from huggingface_hub.file_download import hf_hub_download, repo_folder_name

    if constants.HF_HUB_OFFLINE:
        return
    try:
        info = HfApi().model_info(repo_id, files_metadata=True)
        sizes = {sibling.rfilename: sibling.size or 0 for sibling in info.siblings or []}
        if "model_index.json" not in sizes or info.sha is None:
            return  # not a diffusers pipeline: diffusers says what is wrong
        index_file = hf_hub_download(repo_id, "model_index.json", revision=info.sha)
        index = json.loads(Path(index_file).read_text(encoding="utf-8"))
    except Exception as exc:
        # Most often no network; a model in the cache still loads without it.
        log.warning("cannot ask the hub about %s (%s); trying the local cache", repo_id, exc)
        return
    missing = [
        path
        for path in needed_files(index, list(sizes))
        if not isinstance(try_to_load_from_cache(repo_id, path, revision=info.sha), str)
    ]
    if not missing:
        return
    total = sum(sizes[path] for path in missing)
    log.info(
        "downloading %s from the Hugging Face hub: %d files, %s",
        display_name,
        len(missing),
        format_size(total),
    )
    blobs = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")
    meter = _Meter(display_name, total, _report.get())
    started = time.monotonic()
    with _Watcher(blobs / "blobs", meter):
        snapshot_download(repo_id, revision=info.sha, allow_patterns=missing)
    log.info(
        "downloaded %s (%s) in %s",
        display_name,
        format_size(total),
        format_seconds(time.monotonic() - started),
    )


class _Meter:
    """Turns byte counts into a console bar, log lines and reports."""

    def __init__(self, model: str, total: int, report: Report | None) -> None:
        self._model = model
        self._total = total
        self._report = report
        self._started = time.monotonic()
        self._next_percent = LOG_PERCENT
        self._logged_at = self._started
        self._reported: tuple[int, float] | None = None  # (bytes, when)
        self._bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, unit="B", unit_scale=True, desc=f"Downloading {model}", leave=False
            )

    def update(self, done: int, *, final: bool = False) -> None:
        done = min(max(done, 0), self._total)
        now = time.monotonic()
        elapsed = now - self._started
        speed = done / elapsed if elapsed > 0 else 0.0
        eta = (self._total - done) / speed if speed > 0 else None
        progress = DownloadProgress(self._model, done, self._total, eta)
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
        if not final and (
            progress.percent >= self._next_percent or now - self._logged_at >= LOG_INTERVAL
        ):
            self._log(progress, speed)
            self._logged_at = now
            while self._next_percent <= progress.percent:
                self._next_percent += LOG_PERCENT
        changed = self._reported is None or self._reported[0] != done
        if self._report is not None and (
            changed or final or now - (self._reported or (0, now))[1] >= HEARTBEAT
        ):
            self._reported = (done, now)
            self._report(progress)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _log(self, progress: DownloadProgress, speed: float) -> None:
        eta = progress.eta_seconds
        left = f", about {format_seconds(eta)} left" if eta else ""
        log.info(
            "downloading %s: %d %% of %s (%s/s%s)",
            self._model,
            progress.percent,
            format_size(self._total),
            format_size(speed),
            left,
        )


class _Watcher:
    """A thread that measures the bytes the hub writes under `blobs` meanwhile."""

    def __init__(self, blobs: Path, meter: _Meter) -> None:
        self._blobs = blobs
        self._meter = meter
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="download-watcher", daemon=True)
        self._baseline = 0

    def __enter__(self) -> _Watcher:
        self._baseline = self._bytes()
        self._meter.update(0)
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        if exc_type is None:
            self._meter.update(self._bytes() - self._baseline, final=True)
        self._meter.close()

    def _run(self) -> None:
        while not self._stop.wait(POLL_INTERVAL):
            try:
                self._meter.update(self._bytes() - self._baseline)
            except Exception:  # a report that fails must not end the download
                log.exception("reporting download progress failed")

    def _bytes(self) -> int:
        # Blobs (finished) and blob.incomplete files (being written); a file renamed
        # between listing and stat is simply counted at the next look.
        total = 0
        with contextlib.suppress(OSError):
            for entry in list(self._blobs.iterdir()):
                with contextlib.suppress(OSError):
                    total += entry.stat().st_size
        return total
