"""Plain data that crosses the pipe between the bot and the engine process.

Nothing here imports torch, so the bot process can use these types without loading
it. Everything is picklable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from engine.prompts import split_lora_tags

Mode = Literal["text2img", "img2img", "inpaint"]

# The callbacks a job takes, named once here for the engine, its clients and backends.
# (step, total) of a running job.
ProgressCallback = Callable[[int, int], None]
# Live previews: picture index in the job -> a small JPEG ([engine] preview_every).
PreviewCallback = Callable[[dict[int, bytes]], None]
# True once the running job should stop.
CancelCheck = Callable[[], bool]


Offload = Literal["none", "model", "sequential"]


@dataclass(frozen=True)
class ModelOptions:
    """How to load one configured model, beyond where it is."""

    family: str = ""  # "sd" | "sdxl" | "sd3" | "flux"; "" = detected from the files
    vae: str = ""  # a VAE to use instead of the model's own (folder, file or hub id)
    # A dedicated inpainting checkpoint (9-channel UNet) of the same family, used for
    # inpaint jobs in place of the model's own denoiser.
    inpaint_source: str = ""
    clip_skip: int = 1  # A1111's CLIP_stop_at_last_layers


Backend = Literal["local", "ray"]


@dataclass(frozen=True)
class RaySettings:
    """Where the Ray backend's replicas run and how many; see engine/ray_client.py."""

    # "": start a local Ray instance here; "auto", "HOST:PORT" or "ray://HOST:10001": join one.
    address: str = ""
    # Serve autoscales between these; equal numbers give a fixed count of replicas.
    min_replicas: int = 1
    max_replicas: int = 1
    gpus_per_replica: float = 1.0
    # CPUs Ray reserves per replica; on a CPU-only replica also its torch thread count.
    cpus_per_replica: float = 1.0
    # Models a replica keeps loaded; the least recently used one is dropped first.
    max_models_per_replica: int = 1


@dataclass(frozen=True)
class UpscaleSettings:
    """`[upscale]`: how upscale jobs enlarge their picture before the detail pass."""

    # A super-resolution model file (.pth, .safetensors, ...) of any architecture
    # spandrel detects (ESRGAN, RealESRGAN, SwinIR, ...); "" = Lanczos resizing.
    model: str = ""
    # The model runs on tiles of this many input pixels a side, which share `overlap`
    # pixels blended across the seam: memory stays bounded whatever the picture's size.
    tile: int = 512
    overlap: int = 32


@dataclass(frozen=True)
class EngineSettings:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto | float16 | bfloat16 | float32
    # Configured model name -> hub id, local diffusers folder, or one .safetensors file.
    models: dict[str, str] = field(default_factory=dict)
    # diffusers' StableDiffusionSafetyChecker (hub id or folder) run on every picture; "" = off.
    nsfw_classifier: str = ""
    # Configured model name -> its loading options; a model not listed gets the defaults.
    model_options: dict[str, ModelOptions] = field(default_factory=dict)
    loras_path: str = ""  # the folder of LoRA .safetensors files; "" = none
    # diffusers' CPU offload on CUDA, for big models on small GPUs: "model" moves whole
    # components in and out, "sequential" single layers (slowest, least memory).
    offload: Offload = "none"
    keep_in_ram: int = 0  # recently used models parked in CPU memory for fast switching
    # Speed options, CUDA only: channels-last UNet memory, fused attention projections,
    # and torch.compile of the denoiser (sizes snap to aspect buckets: one compile each).
    channels_last: bool = False
    fuse_qkv: bool = False
    compile: bool = False
    # torch threads in the engine process; 0 = automatic (engine/threads.py).
    threads: int = 0
    # "local": one engine process spawned by the bot; "ray": Ray Serve replicas.
    backend: Backend = "local"
    ray: RaySettings = field(default_factory=RaySettings)
    # Live previews: seconds between a job's previews (0 = off), and a local TAESD
    # (diffusers AutoencoderTiny) folder to decode them with ("" = the linear projection).
    preview_every: float = 0.0
    preview_vae: str = ""
    upscale: UpscaleSettings = field(default_factory=UpscaleSettings)


@dataclass(frozen=True)
class ImageSpec:
    """One picture to make. A request for four pictures is four specs (seeds differ)."""

    prompt: str
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 20
    cfg: float = 7.0
    width: int = 512
    height: int = 512
    sampler: str = "Euler a"
    # Encoded image bytes (PNG/JPEG/...) already checked by the caller; img2img when set.
    init_image: bytes | None = field(default=None, repr=False)
    strength: float = 0.75
    # White pixels are repainted; inpaint when set together with init_image.
    mask_image: bytes | None = field(default=None, repr=False)
    # An upscale's factor (2 for ⬆️), 0 for other jobs: init_image is enlarged by the
    # upscaler to width x height, then painted over at `strength` (0: not painted).
    upscale: float = 0.0

    @property
    def mode(self) -> Mode:
        if self.init_image is None:
            return "text2img"
        return "inpaint" if self.mask_image is not None else "img2img"

    @property
    def loras(self) -> tuple[tuple[str, float], ...]:
        """The `<lora:NAME:WEIGHT>` tags of the prompt, as (name, weight), sorted."""
        _, tags = split_lora_tags(self.prompt)
        return tuple(sorted((tag.name, tag.weight) for tag in tags))

    def batch_key(self) -> tuple[object, ...]:
        """Specs with equal keys can run in one pipeline call (same LoRAs included)."""
        strength = self.strength if self.mode != "text2img" else None
        return (
            self.mode,
            self.steps,
            self.cfg,
            self.width,
            self.height,
            self.sampler,
            strength,
            self.loras,
            self.upscale,
        )


@dataclass(frozen=True)
class GeneratedImage:
    png: bytes = field(repr=False)  # carries the A1111 `parameters` text chunk
    seed: int
    width: int
    height: int
    parameters: str  # the same A1111 text as in the PNG
    nsfw: bool = False  # flagged by the NSFW classifier, when one is configured


class EngineError(Exception):
    """The engine refused or failed a job; the message is fit to show a user."""


class ModelLoadError(EngineError):
    """A model that does not exist or cannot be loaded."""


class GenerationCancelled(EngineError):
    """The job was cancelled while it ran."""


class EngineCrashed(EngineError):
    """The engine process died during the call; it is being restarted."""
