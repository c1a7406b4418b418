"""Validation of a parsed config: ranges, names that must exist, files that must be there.

Each check raises the first mistake it finds as one `ConfigError` line.
"""

from __future__ import annotations

from pathlib import Path

from bot.config.errors import ConfigError
from bot.config.sections import AdminsConfig, Config, EngineConfig, ModelConfig
from bot.validation import STRENGTH_RANGE
from engine.families import FAMILIES
from engine.samplers import canonical_sampler


def check_config(config: Config) -> None:
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
