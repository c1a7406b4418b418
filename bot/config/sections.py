"""The frozen dataclasses a config file is read into, one per TOML section.

`Config` holds them all, with the helpers that resolve paths and model sources
against the config's folder and build what the engine process is told.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bot.config.errors import ConfigError
from engine.batching import AUTO, gpu_visible, scheduler_limit
from engine.families import FAMILIES, FamilyTraits
from engine.inspect import InspectError, ModelInfo, family_defaults, inspect_model
from engine.samplers import canonical_sampler
from engine.types import EngineSettings, ModelOptions, RaySettings, UpscaleSettings


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
