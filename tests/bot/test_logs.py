"""What the operator reads: one line a record, JSON when asked (also from the engine
process), and the known harmless library messages left out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import discord
import pytest

from bot.cli import main
from bot.logs import configure_logging, resolve
from engine import logs as engine_logs
from engine.client import EngineClient
from engine.types import EngineSettings, ModelLoadError

pytestmark = pytest.mark.usefixtures("restore_logging")


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_lines_carry_level_logger_process_and_the_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", json=True)
    log = logging.getLogger("atelier.test")
    log.debug("not at info")
    log.info("painted %d pictures", 4)
    try:
        raise RuntimeError("the disk is full")
    except RuntimeError:
        log.exception("saving failed")
    first, second = json_lines(capsys.readouterr().err)
    assert first["message"] == "painted 4 pictures"
    assert (first["level"], first["logger"], first["process"]) == ("INFO", "atelier.test", "bot")
    assert str(first["time"]).endswith("+00:00")
    assert second["level"] == "ERROR"
    assert "RuntimeError: the disk is full" in str(second["exception"])


def test_text_lines_say_which_process_wrote_them(capsys: pytest.CaptureFixture[str]) -> None:
    engine_logs.configure_logging(logging.WARNING, json=False, process="engine")
    logging.getLogger("atelier.engine.test").info("not at warning")
    logging.getLogger("atelier.engine.test").warning("out of memory")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(" WARNING engine: atelier.engine.test: out of memory")


def test_configuring_again_replaces_the_handler(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=False)
    configure_logging("info", json=True)
    logging.getLogger("atelier.test").info("once")
    assert [r["message"] for r in json_lines(capsys.readouterr().err)] == ["once"]


class Collector(logging.Handler):
    """What gets past a logger's own filters, whatever the library set up around it."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def collect() -> Iterator[Callable[[str], list[str]]]:
    """`collect(name)`: the messages that get past that logger's own filters, whatever
    the library set up around it (diffusers and transformers, once imported, give their
    loggers levels and handlers of their own; the filter sits on the logger itself).
    """
    saved: list[tuple[logging.Logger, int, list[logging.Handler], bool]] = []

    def start(name: str) -> list[str]:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.handlers[:], logger.propagate))
        collector = Collector()
        logger.handlers[:] = [collector]
        logger.propagate = False
        logger.setLevel(logging.WARNING)
        return collector.messages

    yield start
    for logger, level, handlers, propagate in saved:
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(level)


def test_harmless_library_warnings_are_dropped_and_real_ones_kept(
    monkeypatch: pytest.MonkeyPatch, collect: Callable[[str], list[str]]
) -> None:
    configure_logging("info", json=False)
    voice = collect("discord.client")
    # discord.py warns once per process that voice needs PyNaCl and davey; re-arm it.
    monkeypatch.setattr(discord.VoiceClient, "warn_nacl", True)
    monkeypatch.setattr(discord.VoiceClient, "warn_dave", True)
    discord.Client(intents=discord.Intents(guilds=True))
    logging.getLogger("discord.client").warning("Shard ID None has stopped responding")
    assert voice == ["Shard ID None has stopped responding"]

    modeling = collect("diffusers.models.modeling_utils")
    # What diffusers logs on every `.to(dtype)`; only the empty list is harmless.
    notice = (
        "There are modules in {} that should be kept in float32: {}. Casting directly with "
        "`to()` can lead to inconsistent results"
    )
    logging.getLogger("diffusers.models.modeling_utils").warning(
        notice.format("UNet2DConditionModel", [])
    )
    logging.getLogger("diffusers.models.modeling_utils").warning(
        notice.format("FluxTransformer2DModel", ["norm_out"])
    )
    assert [m.split(" that")[0] for m in modeling] == [
        "There are modules in FluxTransformer2DModel"
    ]

    imports = collect("transformers.utils.import_utils")
    logging.getLogger("transformers.utils.import_utils").warning(
        "`CLIPImageProcessor` requires torchvision (not installed); falling back to "
        "`CLIPImageProcessorPil` for backward compatibility."
    )
    logging.getLogger("transformers.utils.import_utils").warning("`torch` is too old")
    assert imports == ["`torch` is too old"]

    # warnings.warn(...) as logging.captureWarnings writes it; diffusers makes the hub
    # client say this on every load of a hub id.
    python_warnings = collect("py.warnings")
    for text in (
        "The `local_dir_use_symlinks` argument is deprecated and ignored in `hf_hub_download`.",
        "`resume_download` is no longer supported.",
    ):
        logging.getLogger("py.warnings").warning(
            "%s", f"/venv/huggingface_hub/utils/_validators.py:205: UserWarning: {text}\n"
        )
    assert [m.split(": ", 2)[2].strip() for m in python_warnings] == [
        "`resume_download` is no longer supported."
    ]


@pytest.mark.parametrize("library", ["httpx", "httpx2"])  # httpx2: the hub client's
def test_http_request_lines_stay_out_even_at_debug(
    library: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("debug", json=False)
    logging.getLogger(library).info(
        "HTTP Request: POST https://api.telegram.org/bot123:SECRET/getMe"
    )
    assert "SECRET" not in capsys.readouterr().err


def test_command_line_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_LOG_LEVEL", "debug")
    monkeypatch.setenv("ATELIER_LOG_FORMAT", "json")
    assert resolve(None, None) == (logging.DEBUG, True)
    assert resolve("error", "text") == (logging.ERROR, False)
    monkeypatch.delenv("ATELIER_LOG_LEVEL")
    monkeypatch.delenv("ATELIER_LOG_FORMAT")
    assert resolve(None, None) == (logging.INFO, False)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ATELIER_LOG_LEVEL", "loud", "ATELIER_LOG_LEVEL: 'loud' is not a log level"),
        ("ATELIER_LOG_FORMAT", "xml", "ATELIER_LOG_FORMAT: 'xml' is not a log format"),
    ],
)
def test_a_wrong_log_setting_stops_run_with_one_line(
    variable: str,
    value: str,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)
    # Checked before the config is read: this one does not even exist.
    assert main(["run", "--config", str(tmp_path / "absent.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


def test_a_wrong_log_level_flag_is_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--log-level", "loud"])
    assert exited.value.code == 2
    assert "invalid choice: 'loud'" in capsys.readouterr().err


async def test_the_engine_process_writes_json_when_the_bot_does(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A folder that claims to be a pipeline but holds no weights: loading it fails, and
    # the engine process logs why (with the traceback) before answering.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text(
        '{"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.30.0"}'
    )
    configure_logging("info", json=True)  # exports the choice to the engine process
    client = EngineClient(EngineSettings(device="cpu", models={"broken": str(broken)}))
    await client.start()
    try:
        with pytest.raises(ModelLoadError):
            await client.load_model("broken")
    finally:
        await client.close()
    records = json_lines(capfd.readouterr().err)  # every line is JSON, the engine's too
    failed = [r for r in records if r["process"] == "engine" and "failed" in str(r["message"])]
    assert failed, records
    assert failed[0]["level"] == "WARNING" and "Traceback" in str(failed[0]["exception"])
