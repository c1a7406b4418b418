"""Atelier's configuration: a TOML file loaded into typed, validated dataclasses.

Every mistake is reported as one `ConfigError` line that names the key and says what
is wrong. Tokens come from the environment (`DISCORD_TOKEN`, `TELEGRAM_TOKEN`) and
are kept out of `repr` so they never reach a log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.validation import STRENGTH_RANGE
from engine.batching import AUTO, gpu_visible, scheduler_limit
from engine.families import FAMILIES, FamilyTraits
from engine.inspect import InspectError, ModelInfo, family_defaults, inspect_model
from engine.samplers import canonical_sampler
from engine.types import EngineSettings, ModelOptions, RaySettings, UpscaleSettings

DEFAULT_CONFIG_PATH = Path("config.toml")
CONFIG_ENV_VAR = "ATELIER_CONFIG"


class ConfigError(Exception):
    """A configuration mistake, phrased as one line for the person who made it."""


@dataclass(frozen=True)
class ModelConfig:
    """One `[models.NAME]`. Every default left out (None) comes from the model itself,
    read without loading it (`engine.inspect`): its family, and its native size."""

    source: str
    family: str = ""  # "sd" | "sdxl" | "sd3" | "flux"; "" = detected from the files
    default_steps: int | None = None
    default_cfg: float | None = None
    width: int | None = None
    height: int | None = None
    sampler: str | None = None
    clip_skip: int = 1
    vae: str = ""  # a VAE to use instead of the model's own (folder, file or hub id)
    inpaint_source: str = ""  # a dedicated inpainting checkpoint (9-channel UNet)
    # Per-model limits for families that need other ones; None: [limits]' (max_side at
    # least 1.5 times the model's native side, so --ar keeps the native area).
    max_side: int | None = None
    max_steps: int | None = None
    # What inspecting the model said (family, native size, size grid); not a key.
    info: ModelInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            info = inspect_model(self.source, self.family)
        except (InspectError, ValueError):
            # The engine says what is wrong when it loads the model; until then the
            # family's (or SD's) defaults stand in.
            info = family_defaults(self.family if self.family in FAMILIES else "")
        resolved = {
            "family": info.family,
            "default_steps": info.default_steps,
            "default_cfg": info.default_cfg,
            "width": info.width,
            "height": info.height,
            "sampler": info.default_sampler,
        }
        for key, value in resolved.items():
            if getattr(self, key) in (None, ""):
                object.__setattr__(self, key, value)
        object.__setattr__(self, "info", info)
        if self.family in FAMILIES:
            # The A1111 spelling; a name the family cannot use is reported by the checks.
            with contextlib.suppress(ValueError):
                sampler = canonical_sampler(str(self.sampler), self.traits.samplers)
                object.__setattr__(self, "sampler", sampler)

    @property
    def traits(self) -> FamilyTraits:
        return FAMILIES[self.family]

    def side_limit(self, limits: LimitsConfig) -> int:
        if self.max_side is not None:
            return self.max_side
        native = max(self.info.width, self.info.height)
        return max(limits.max_side, round(native * 1.5 / 64) * 64)

    def steps_limit(self, limits: LimitsConfig) -> int:
        return self.max_steps if self.max_steps is not None else limits.max_steps


@dataclass(frozen=True)
class RayConfig:
    """`[engine.ray]`: used when `[engine] backend = "ray"`."""

    # "": start a local Ray here; "auto", "HOST:PORT" or "ray://HOST:10001": join a cluster.
    address: str = ""
    # A fixed number of replicas, or min_replicas / max_replicas for Serve autoscaling.
    replicas: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    gpus_per_replica: float = 1.0
    cpus_per_replica: float = 1.0
    max_models_per_replica: int = 1

    def settings(self) -> RaySettings:
        if self.replicas is not None or (self.min_replicas, self.max_replicas) == (None, None):
            low = high = self.replicas or 1
        else:
            low = 1 if self.min_replicas is None else self.min_replicas
            high = low if self.max_replicas is None else self.max_replicas
        return RaySettings(
            address=self.address,
            min_replicas=low,
            max_replicas=high,
            gpus_per_replica=self.gpus_per_replica,
            cpus_per_replica=self.cpus_per_replica,
            max_models_per_replica=self.max_models_per_replica,
        )


@dataclass(frozen=True)
class EngineConfig:
    default_model: str = ""
    device: str = "auto"
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    # Pictures per pipeline call: a number, or "auto" (1 on a CPU, on CUDA what fits).
    max_batch: int | Literal["auto"] = "auto"
    # Seconds the bot waits for one batch before it counts the engine as hung.
    job_timeout: float = 600.0
    # Seconds a job may be passed over for jobs of the loaded model before the engine
    # switches to its model: fewer switches, but nobody waits long for one.
    model_switch_wait: float = 60.0
    # Big models on small GPUs: diffusers' CPU offload ("model" or "sequential").
    offload: Literal["none", "model", "sequential"] = "none"
    keep_in_ram: int = 0  # models parked in CPU memory for fast switching back
    # CUDA speed options (off: they cost start-up time or memory).
    channels_last: bool = False
    fuse_qkv: bool = False
    compile: bool = False
    threads: int = 0  # torch threads in the engine process; 0 = automatic
    backend: Literal["local", "ray"] = "local"
    ray: RayConfig = field(default_factory=RayConfig)
    # Live previews in the status message: seconds between a job's previews (0 = off),
    # and a local TAESD folder to decode them with ("" = a cheap latent projection).
    preview_every: float = 3.0
    preview_vae: str = ""

    @property
    def batch_limit(self) -> int:
        """Pictures the scheduler groups into one engine call (engine.batching)."""
        if self.backend == "ray":
            gpu = self.ray.gpus_per_replica > 0
        else:
            gpu = self.device.startswith("cuda") or (self.device == "auto" and gpu_visible())
        return scheduler_limit(self.max_batch, gpu=gpu)

    @property
    def engine_max_batch(self) -> int:
        """max_batch as the engine is told it: a number, or AUTO."""
        return AUTO if self.max_batch == "auto" else self.max_batch


@dataclass(frozen=True)
class LorasConfig:
    path: str = "loras"  # folder of LoRA .safetensors files, used as <lora:NAME:0.8>


@dataclass(frozen=True)
class UpscaleConfig:
    """`[upscale]`: what ⬆️ Upscale and U1-U4 do (twice the side)."""

    # A super-resolution model file (any architecture spandrel detects: ESRGAN,
    # RealESRGAN, SwinIR, ...); "" = Lanczos resizing.
    model: str = ""
    # The img2img pass over the enlarged picture that adds detail; 0 = none.
    detail_strength: float = 0.3
    tile: int = 512  # the model runs on tiles this many pixels a side ...
    tile_overlap: int = 32  # ... that share this many, blended

    def settings(self, config: Config) -> UpscaleSettings:
        model = str(config.resolve_path(self.model)) if self.model else ""
        return UpscaleSettings(model=model, tile=self.tile, overlap=self.tile_overlap)


@dataclass(frozen=True)
class LimitsConfig:
    jobs_per_minute: int = 3
    max_queued_per_user: int = 3
    max_queue: int = 200
    daily_quota: int = 0  # images per user per day; 0 turns the quota off
    max_prompt_chars: int = 1000
    max_steps: int = 50
    max_side: int = 1024  # pixels, for width and height
    max_attachment_mb: float = 10.0
    max_plot_cells: int = 16  # /plot: X × Y × Z cells at most


@dataclass(frozen=True)
class SafetyConfig:
    blocked_words: list[str] = field(default_factory=list)
    words_file: str = ""
    # diffusers' StableDiffusionSafetyChecker as a hub id or local folder; empty: off.
    nsfw_classifier: str = ""
    nsfw_action: Literal["block", "spoiler"] = "block"


@dataclass(frozen=True)
class AvatarConfig:
    # A TOML file of extra /avatar presets merged over the built-in ones; "" = none.
    presets_file: str = ""


@dataclass(frozen=True)
class StorageConfig:
    path: str = "data"
    # Pictures and inputs older than this are deleted; 0 keeps them forever.
    keep_days: float = 30.0


@dataclass(frozen=True)
class AdminsConfig:
    discord: list[str] = field(default_factory=list)
    telegram: list[str] = field(default_factory=list)
    # Members with Discord's Administrator permission in the guild count as admins.
    discord_guild_administrators: bool = False


@dataclass(frozen=True)
class DiscordConfig:
    enabled: bool = False
    token: str = field(default="", repr=False)
    guild_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class TelegramConfig:
    enabled: bool = False
    token: str = field(default="", repr=False)
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"


@dataclass(frozen=True)
class Config:
    engine: EngineConfig = field(default_factory=EngineConfig)
    models: dict[str, ModelConfig] = field(default_factory=dict)
    loras: LorasConfig = field(default_factory=LorasConfig)
    upscale: UpscaleConfig = field(default_factory=UpscaleConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    avatar: AvatarConfig = field(default_factory=AvatarConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    admins: AdminsConfig = field(default_factory=AdminsConfig)
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    # Folder the config file lives in; relative paths in the file are read from here.
    base_dir: Path = field(default_factory=Path.cwd, compare=False)

    @property
    def data_dir(self) -> Path:
        return self.resolve_path(self.storage.path)

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def engine_settings(self) -> EngineSettings:
        """What the engine process needs to know: devices and where models live."""
        return EngineSettings(
            device=self.engine.device,
            dtype=self.engine.dtype,
            models={name: self.model_source(model.source) for name, model in self.models.items()},
            nsfw_classifier=self.model_source(self.safety.nsfw_classifier)
            if self.safety.nsfw_classifier
            else "",
            model_options={
                name: ModelOptions(
                    family=model.family,
                    vae=self.model_source(model.vae) if model.vae else "",
                    inpaint_source=self.model_source(model.inpaint_source)
                    if model.inpaint_source
                    else "",
                    clip_skip=model.clip_skip,
                )
                for name, model in self.models.items()
            },
            loras_path=str(self.loras_dir),
            offload=self.engine.offload,
            keep_in_ram=self.engine.keep_in_ram,
            channels_last=self.engine.channels_last,
            fuse_qkv=self.engine.fuse_qkv,
            compile=self.engine.compile,
            threads=self.engine.threads,
            backend=self.engine.backend,
            ray=self.engine.ray.settings(),
            preview_every=self.engine.preview_every,
            preview_vae=self.model_source(self.engine.preview_vae)
            if self.engine.preview_vae
            else "",
            upscale=self.upscale.settings(self),
        )

    @property
    def loras_dir(self) -> Path:
        return self.resolve_path(self.loras.path)

    def model_source(self, source: str) -> str:
        """A hub id stays as it is; a local path is resolved against the config's folder."""
        return str(self.resolve_path(source)) if self.is_local(source) else source

    def is_local(self, source: str) -> bool:
        """Hub ids look like `owner/name`; anything else, or an existing folder, is a path."""
        if source.startswith((".", "/", "~")) or source.endswith((".safetensors", ".ckpt")):
            return True
        return source.count("/") != 1 or self.resolve_path(source).exists()

    def require_adapters(self) -> None:
        """`run` needs at least one chat platform with a token."""
        if not (self.discord.enabled or self.telegram.enabled):
            raise ConfigError(
                "no adapter enabled: set [discord] enabled = true or [telegram] enabled = true"
            )
        if self.discord.enabled and not self.discord.token:
            raise ConfigError("[discord] is enabled but no token: set $DISCORD_TOKEN")
        if self.telegram.enabled and not self.telegram.token:
            raise ConfigError("[telegram] is enabled but no token: set $TELEGRAM_TOKEN")


def config_path(cli_value: str | None) -> tuple[Path, bool]:
    """The config file to read, and whether the user named it explicitly."""
    if cli_value:
        return Path(cli_value), True
    if os.environ.get(CONFIG_ENV_VAR):
        return Path(os.environ[CONFIG_ENV_VAR]), True
    return DEFAULT_CONFIG_PATH, False


def load_config(path: Path, *, required: bool = True) -> Config:
    """Read and validate a config file; a missing optional file gives the defaults."""
    if not path.exists():
        if required:
            raise ConfigError(
                f"{path}: config file not found (copy config.example.toml and edit it)"
            )
        return _with_env_tokens(Config(base_dir=Path.cwd()))
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return parse_config(raw, base_dir=path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_config(raw: dict[str, Any], *, base_dir: Path) -> Config:
    sections: dict[str, Any] = {"base_dir": base_dir}
    hints = typing.get_type_hints(Config)
    for key, value in raw.items():
        if key not in hints or key == "base_dir":
            raise ConfigError(f"[{key}]: unknown section")
        if key == "models":
            if not isinstance(value, dict):
                raise ConfigError("[models]: must be a table of [models.NAME] tables")
            sections["models"] = {
                name: _build(ModelConfig, _local_source(body, base_dir), f"models.{name}")
                for name, body in value.items()
            }
        else:
            sections[key] = _build(hints[key], value, key)
    config = _with_env_tokens(Config(**sections))
    _check(config)
    return config


def _local_source(body: Any, base_dir: Path) -> Any:
    """A model's local source read from the config's folder, so the model can be
    inspected for its defaults; hub ids stay as written."""
    if not isinstance(body, dict) or not isinstance(body.get("source"), str):
        return body
    source = Config(base_dir=base_dir).model_source(body["source"])
    return {**body, "source": source}


def _with_env_tokens(config: Config) -> Config:
    discord_token = os.environ.get("DISCORD_TOKEN") or config.discord.token
    telegram_token = os.environ.get("TELEGRAM_TOKEN") or config.telegram.token
    return dataclasses.replace(
        config,
        discord=dataclasses.replace(config.discord, token=discord_token),
        telegram=dataclasses.replace(config.telegram, token=telegram_token),
    )


def _build(cls: type, body: Any, section: str) -> Any:
    if not isinstance(body, dict):
        raise ConfigError(f"[{section}]: must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    values = {}
    for key, value in body.items():
        if key not in known:
            raise ConfigError(f"[{section}] {key}: unknown key (known: {', '.join(sorted(known))})")
        values[key] = _coerce(value, hints[key], f"[{section}] {key}")
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in values
        and f.init
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"[{section}] {missing[0]}: missing")
    return cls(**values)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where}: must be one of {', '.join(map(repr, allowed))}")
        return value
    if origin in (typing.Union, types.UnionType):
        # The first alternative that takes the value; else every alternative's complaint.
        complaints = []
        for alternative in typing.get_args(hint):
            if alternative is type(None):
                continue
            try:
                return _coerce(value, alternative, where)
            except ConfigError as exc:
                complaints.append(str(exc).removeprefix(f"{where}: "))
        raise ConfigError(f"{where}: {', or '.join(complaints)}")
    if dataclasses.is_dataclass(hint):  # a nested table, e.g. [engine.ray]
        return _build(hint, value, where.strip("[]").replace("] ", "."))
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: must be a list")
        return [_coerce(v, item, where) for v in value]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: must be a number")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be a whole number")
        return value
    if hint is str:
        # Ids are often written as numbers; keep them as strings to compare with platforms.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a string")
        return value
    return value


def _check(config: Config) -> None:
    def at_least(section: str, key: str, value: float, low: float) -> None:
        if value < low:
            raise ConfigError(f"[{section}] {key}: must be at least {low:g}, got {value:g}")

    limits = config.limits
    at_least("limits", "jobs_per_minute", limits.jobs_per_minute, 1)
    at_least("limits", "max_queued_per_user", limits.max_queued_per_user, 1)
    at_least("limits", "max_plot_cells", limits.max_plot_cells, 1)
    at_least("limits", "max_queue", limits.max_queue, 1)
    at_least("limits", "daily_quota", limits.daily_quota, 0)
    at_least("limits", "max_prompt_chars", limits.max_prompt_chars, 1)
    at_least("limits", "max_steps", limits.max_steps, 1)
    at_least("limits", "max_side", limits.max_side, 64)
    at_least("limits", "max_attachment_mb", limits.max_attachment_mb, 0.1)
    at_least("storage", "keep_days", config.storage.keep_days, 0)
    if isinstance(config.engine.max_batch, int):
        at_least("engine", "max_batch", config.engine.max_batch, 1)
    at_least("engine", "job_timeout", config.engine.job_timeout, 1)
    at_least("engine", "model_switch_wait", config.engine.model_switch_wait, 0)
    at_least("engine", "keep_in_ram", config.engine.keep_in_ram, 0)
    at_least("engine", "threads", config.engine.threads, 0)
    at_least("engine", "preview_every", config.engine.preview_every, 0)

    device = config.engine.device
    if not (device in ("auto", "cpu", "cuda", "mps") or device.startswith("cuda:")):
        raise ConfigError(f"[engine] device: must be auto, cpu, cuda or cuda:N, got {device!r}")
    if config.engine.backend == "ray":
        _check_ray(config.engine)
    if config.models and not config.engine.default_model:
        raise ConfigError("[engine] default_model: missing")
    if config.engine.default_model and config.engine.default_model not in config.models:
        names = ", ".join(sorted(config.models)) or "none"
        raise ConfigError(
            f"[engine] default_model: no [models.{config.engine.default_model}] "
            f"(configured: {names})"
        )
    for name, model in config.models.items():
        where = f"[models.{name}]"
        if not model.source:
            raise ConfigError(f"{where} source: missing")
        source = config.model_source(model.source)
        if config.is_local(model.source) and not Path(source).exists():
            raise ConfigError(f"{where} source: {source} does not exist")
        _check_model(name, model)
    if config.safety.words_file and not config.resolve_path(config.safety.words_file).exists():
        raise ConfigError(f"[safety] words_file: {config.safety.words_file} does not exist")
    presets_file = config.avatar.presets_file
    if presets_file and not config.resolve_path(presets_file).exists():
        raise ConfigError(f"[avatar] presets_file: {presets_file} does not exist")
    _check_admin_ids(config.admins)
    _check_upscale(config)


def _check_model(name: str, model: ModelConfig) -> None:
    where = f"[models.{name}]"
    if model.family not in FAMILIES:
        raise ConfigError(f"{where} family: must be one of {', '.join(map(repr, FAMILIES))}")
    for key, low in (("default_steps", 1), ("default_cfg", 0), ("width", 64), ("height", 64)):
        value = getattr(model, key)
        if value < low:
            raise ConfigError(f"{where} {key}: must be at least {low:g}, got {value:g}")
    traits = model.traits
    try:
        canonical_sampler(str(model.sampler), traits.samplers)
    except ValueError as exc:
        raise ConfigError(f"{where} sampler: {exc} ({traits.label})") from None
    if model.clip_skip not in traits.clip_skip:
        allowed = ", ".join(map(str, traits.clip_skip))
        raise ConfigError(f"{where} clip_skip: {traits.label} takes {allowed}")
    for key in ("max_side", "max_steps"):
        value = getattr(model, key)
        if value is not None and value < (64 if key == "max_side" else 1):
            raise ConfigError(f"{where} {key}: too small ({value})")


def _check_upscale(config: Config) -> None:
    """What can be checked without loading the model; the engine loads it at start and
    says there if it is not a model spandrel knows."""
    upscale = config.upscale
    strength = upscale.detail_strength
    low, high = STRENGTH_RANGE
    if strength != 0 and not low <= strength <= high:
        raise ConfigError(
            f"[upscale] detail_strength: 0 (no detail pass) or {low:g} to {high:g}, "
            f"got {strength:g}"
        )
    if upscale.tile < 32:
        raise ConfigError(f"[upscale] tile: must be at least 32, got {upscale.tile}")
    if not 0 <= upscale.tile_overlap <= upscale.tile // 2:
        raise ConfigError(
            f"[upscale] tile_overlap: 0 to half the tile ({upscale.tile // 2}), "
            f"got {upscale.tile_overlap}"
        )
    if not upscale.model:
        return
    path = config.resolve_path(upscale.model)
    if path.is_dir():
        raise ConfigError(f"[upscale] model: {path} is a folder; name the model file in it")
    if not path.is_file():
        raise ConfigError(f"[upscale] model: {path} does not exist")
    try:
        with path.open("rb") as file:
            file.read(1)
    except OSError as exc:
        raise ConfigError(f"[upscale] model: cannot read {path}: {exc.strerror or exc}") from None


def is_user_id(value: str) -> bool:
    """Discord and Telegram name users by number; a "@name" would never match."""
    return value.isascii() and value.isdecimal()


def _check_admin_ids(admins: AdminsConfig) -> None:
    for platform in ("discord", "telegram"):
        for user_id in getattr(admins, platform):
            if not is_user_id(user_id):
                raise ConfigError(
                    f"[admins] {platform}: {user_id!r} is not a user id (ids are numbers); "
                    "send /whoami to the bot to get yours"
                )


def _check_ray(engine: EngineConfig) -> None:
    ray = engine.ray
    if ray.replicas is not None and (ray.min_replicas, ray.max_replicas) != (None, None):
        raise ConfigError("[engine.ray] replicas: give replicas, or min_replicas and max_replicas")
    for key in ("replicas", "max_replicas", "max_models_per_replica"):
        value = getattr(ray, key)
        if value is not None and value < 1:
            raise ConfigError(f"[engine.ray] {key}: must be at least 1, got {value}")
    for key in ("min_replicas", "gpus_per_replica", "cpus_per_replica"):
        value = getattr(ray, key)
        if value is not None and value < 0:
            raise ConfigError(f"[engine.ray] {key}: must be at least 0, got {value:g}")
    settings = ray.settings()
    if settings.min_replicas > settings.max_replicas:
        raise ConfigError(
            f"[engine.ray] min_replicas: {settings.min_replicas} is more than max_replicas "
            f"({settings.max_replicas})"
        )
    if engine.device.startswith("cuda:"):
        raise ConfigError(
            '[engine] device: with backend = "ray" each replica sees only its own GPUs; '
            "use auto, cuda or cpu"
        )
    if engine.device == "cuda" and ray.gpus_per_replica == 0:
        raise ConfigError(
            '[engine.ray] gpus_per_replica: 0 gives CPU replicas, but [engine] device = "cuda"'
        )
