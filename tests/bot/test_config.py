from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, config_path, load_config
from engine.types import RaySettings

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message, "a config error is one line"
    return message


def test_example_config_documents_every_key_and_loads(tmp_path: Path) -> None:
    # The example names a hub model; hub ids are not checked on disk, so it loads as is.
    config = load_config(REPO / "config.example.toml")
    assert config.engine.default_model == "sd15"
    assert config.models["sd15"].source == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert config.limits.jobs_per_minute == 3
    assert config.telegram.base_url == "https://api.telegram.org/bot"
    raw = tomllib.loads((REPO / "config.example.toml").read_text())
    for section in ("engine", "limits", "safety", "storage", "admins", "discord", "telegram"):
        assert section in raw


def test_relative_paths_are_read_from_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "models" / "mine").mkdir(parents=True)
    config = load_config(
        write(
            tmp_path,
            '[engine]\ndefault_model = "mine"\n[models.mine]\nsource = "models/mine"\n'
            '[storage]\npath = "state"\n',
        )
    )
    assert config.data_dir == tmp_path / "state"
    assert config.engine_settings().models == {"mine": str(tmp_path / "models" / "mine")}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[limitz]\nx = 1\n", "[limitz]: unknown section"),
        ("[limits]\njobs_per_minit = 3\n", "[limits] jobs_per_minit: unknown key"),
        (
            '[limits]\njobs_per_minute = "three"\n',
            "[limits] jobs_per_minute: must be a whole number",
        ),
        ("[limits]\njobs_per_minute = 0\n", "[limits] jobs_per_minute: must be at least 1, got 0"),
        ('[engine]\ndtype = "float8"\n', "[engine] dtype: must be one of"),
        ('[engine]\ndevice = "tpu"\n', "[engine] device: must be auto, cpu, cuda or cuda:N"),
        ("[discord]\nenabled = 1\n", "[discord] enabled: must be true or false"),
        ('[engine]\ndefault_model = "sd15"\n', "[engine] default_model: no [models.sd15]"),
        ('[engine]\ndefault_model = "x"\n[models.x]\nsteps = 3\n', "[models.x] steps: unknown key"),
        ('[engine]\ndefault_model = "x"\n[models.x]\n', "[models.x] source: missing"),
        (
            '[engine]\ndefault_model = "x"\n[models.x]\nsource = "./nowhere"\n',
            "[models.x] source:",
        ),
        ("[limits\n", "not valid TOML"),
        ('[engine]\nbackend = "cluster"\n', "[engine] backend: must be one of 'local', 'ray'"),
        ("[engine]\nray = 2\n", "[engine.ray]: must be a table"),
        ("[engine.ray]\nreplica = 2\n", "[engine.ray] replica: unknown key"),
        ('[engine.ray]\nreplicas = "two"\n', "[engine.ray] replicas: must be a whole number"),
        (
            '[engine]\nbackend = "ray"\n[engine.ray]\nreplicas = 2\nmax_replicas = 4\n',
            "[engine.ray] replicas: give replicas, or min_replicas and max_replicas",
        ),
        (
            '[engine]\nbackend = "ray"\n[engine.ray]\nmin_replicas = 3\nmax_replicas = 2\n',
            "[engine.ray] min_replicas: 3 is more than max_replicas (2)",
        ),
        (
            '[engine]\nbackend = "ray"\n[engine.ray]\nreplicas = 0\n',
            "[engine.ray] replicas: must be at least 1, got 0",
        ),
        (
            '[engine]\nbackend = "ray"\ndevice = "cuda:1"\n',
            '[engine] device: with backend = "ray" each replica sees only its own GPUs',
        ),
    ],
)
def test_mistakes_are_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    message = error_of(tmp_path, text)
    assert expected in message
    assert str(tmp_path / "config.toml") in message


def test_missing_model_file_is_reported(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        '[engine]\ndefault_model = "x"\n[models.x]\nsource = "/no/such/x.safetensors"\n',
    )
    assert "/no/such/x.safetensors does not exist" in message


def test_run_needs_an_enabled_adapter_with_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="no adapter enabled"):
        load_config(write(tmp_path, "")).require_adapters()
    with pytest.raises(ConfigError, match=r"set \$TELEGRAM_TOKEN"):
        load_config(write(tmp_path, "[telegram]\nenabled = true\n")).require_adapters()


def test_tokens_come_from_the_environment_and_stay_out_of_repr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "secret-discord-token")
    config = load_config(write(tmp_path, "[discord]\nenabled = true\n"))
    config.require_adapters()
    assert config.discord.token == "secret-discord-token"
    assert "secret-discord-token" not in repr(config)


def test_admin_ids_written_as_numbers_compare_as_strings(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[admins]\ntelegram = [12345]\n"))
    assert config.admins.telegram == ["12345"]


def test_config_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_CONFIG", "/etc/atelier.toml")
    assert config_path("mine.toml") == (Path("mine.toml"), True)
    assert config_path(None) == (Path("/etc/atelier.toml"), True)
    monkeypatch.delenv("ATELIER_CONFIG")
    assert config_path(None) == (Path("config.toml"), False)


def test_missing_optional_file_gives_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "absent.toml", required=False)
    assert config.models == {}
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml")


def test_model_defaults_come_from_the_model_unless_set(
    tmp_path: Path, tiny_sdxl_dir: Path, tiny_model_dir: Path
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[engine]\ndefault_model = "xl"\n[models.xl]\nsource = "{tiny_sdxl_dir}"\n'
        f'[models.mine]\nsource = "{tiny_model_dir}"\nwidth = 96\nsampler = "ddim"\n'
        "default_cfg = 0\n"
    )
    config = load_config(path)
    xl, mine = config.models["xl"], config.models["mine"]
    assert (xl.family, xl.width, xl.height, xl.default_steps) == ("sdxl", 64, 64, 30)
    assert (xl.default_cfg, xl.sampler) == (6.0, "DPM++ 2M Karras")
    assert (mine.family, mine.width, mine.height, mine.sampler) == ("sd", 96, 64, "DDIM")
    assert mine.default_cfg == 0  # set, so not the family's 7
    options = config.engine_settings().model_options
    assert options["xl"].family == "sdxl" and options["mine"].clip_skip == 1


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ('family = "sdxl"\nsampler = "Euler Beta"', "sampler: this model cannot use 'Euler Beta'"),
        ('family = "flux"\nsampler = "DDIM"', "sampler: this model cannot use 'DDIM'"),
        ('family = "sdxl"\nclip_skip = 2', "clip_skip: SDXL takes 1"),
        ('family = "sd4"', "family: must be one of 'sd', 'sdxl', 'sd3', 'flux'"),
        ("max_side = 10", "max_side: too small"),
    ],
)
def test_model_keys_are_checked_against_the_family(
    tmp_path: Path, tiny_model_dir: Path, keys: str, message: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[engine]\ndefault_model = "m"\n[models.m]\nsource = "{tiny_model_dir}"\n{keys}\n'
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ('telegram = ["@painter"]', "'@painter'"),
        ('telegram = ["12345", "painter"]', "'painter'"),
        ("telegram = [-5]", "'-5'"),
        ('discord = ["alice#0001"]', "'alice#0001'"),
        ('discord = [""]', "''"),
    ],
)
def test_admin_ids_that_are_not_numbers_are_refused_with_how_to_find_yours(
    tmp_path: Path, line: str, shown: str
) -> None:
    message = error_of(tmp_path, f"[admins]\n{line}\n")
    platform = line.split()[0]
    assert f"[admins] {platform}: {shown} is not a user id" in message
    assert "/whoami" in message


def test_ray_backend_settings_reach_the_engine(tmp_path: Path) -> None:
    fixed = load_config(
        write(
            tmp_path,
            '[engine]\nbackend = "ray"\n[engine.ray]\naddress = "auto"\nreplicas = 3\n'
            "gpus_per_replica = 0.5\nmax_models_per_replica = 2\n",
        )
    ).engine_settings()
    assert fixed.backend == "ray"
    assert fixed.ray == RaySettings(
        address="auto",
        min_replicas=3,
        max_replicas=3,
        gpus_per_replica=0.5,
        max_models_per_replica=2,
    )
    scaling = load_config(
        write(
            tmp_path,
            '[engine]\nbackend = "ray"\n[engine.ray]\nmin_replicas = 1\nmax_replicas = 4\n',
        )
    ).engine_settings()
    assert (scaling.ray.min_replicas, scaling.ray.max_replicas) == (1, 4)
    # Without [engine.ray]: one replica with one GPU on a Ray started here.
    assert load_config(write(tmp_path, "")).engine_settings().ray == RaySettings()
    assert load_config(write(tmp_path, "")).engine_settings().backend == "local"
