"""Pictures in and out of the engine: a request's specs, and the results as files.

`image_specs` is the one place a `GenerationRequest` becomes `ImageSpec`s; the
scheduler and anything else that runs a request on the engine use it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Literal

from bot.records import GenerationRequest, Job, ResultImage
from bot.validation import SEED_MAX
from engine.types import GeneratedImage, ImageSpec


def spec_template(
    request: GenerationRequest, init_image: bytes | None, mask_image: bytes | None = None
) -> ImageSpec:
    """The request's first picture; the others differ only in seed."""
    spec = ImageSpec(
        prompt=request.prompt,
        negative_prompt=request.negative,
        seed=request.seed,
        steps=request.steps,
        cfg=request.cfg,
        width=request.width,
        height=request.height,
        sampler=request.sampler,
        init_image=init_image,
        mask_image=mask_image,
        upscale=request.upscale or 0.0,
    )
    # Text2img requests carry no strength; the engine's default then stands (unused).
    if request.strength is None:
        return spec
    return dataclasses.replace(spec, strength=request.strength)


async def image_specs(request: GenerationRequest, data_dir: Path) -> list[ImageSpec]:
    """`count` specs with seeds seed, seed+1, …; img2img reads its input from `data_dir`.

    Raises OSError when the input picture is gone.
    """
    init_image = None
    if request.init_image is not None:
        init_image = await asyncio.to_thread((data_dir / request.init_image).read_bytes)
    mask_image = None
    if request.mask_image is not None:
        mask_image = await asyncio.to_thread((data_dir / request.mask_image).read_bytes)
    first = spec_template(request, init_image, mask_image)
    return [
        dataclasses.replace(first, seed=(request.seed + n) % (SEED_MAX + 1))
        for n in range(request.count)
    ]


@dataclasses.dataclass
class BatchSpecs:
    """The specs of several jobs for one engine call, and which pictures are whose."""

    specs: list[ImageSpec]
    slices: list[tuple[Job, int, int]]  # job, first and past-last index in `specs`
    missing: list[Job]  # img2img jobs whose input picture is gone


async def batch_specs(jobs: list[Job], data_dir: Path) -> BatchSpecs:
    batch = BatchSpecs([], [], [])
    for job in jobs:
        try:
            specs = await image_specs(job.request, data_dir)
        except OSError:
            batch.missing.append(job)
            continue
        batch.slices.append((job, len(batch.specs), len(batch.specs) + len(specs)))
        batch.specs.extend(specs)
    return batch


def batch_key(request: GenerationRequest) -> tuple[object, ...]:
    """Requests with equal keys (and models) can share one engine call."""
    # Only whether there is an input picture matters to the key, not its bytes.
    placeholder = b"" if request.init_image is not None else None
    mask = b"" if request.mask_image is not None else None
    return spec_template(request, placeholder, mask).batch_key()


async def save_pictures(
    data_dir: Path,
    job_id: str,
    images: list[GeneratedImage],
    nsfw_action: Literal["block", "spoiler"],
) -> list[ResultImage]:
    """Write `<data>/images/<job id>-<n>.png` (n from 1) for every picture kept.

    Flagged pictures are left out ("block") or kept with `flagged` set ("spoiler").
    """
    kept = [
        (f"images/{job_id}-{n}.png", image)
        for n, image in enumerate(images, start=1)
        if not (image.nsfw and nsfw_action == "block")
    ]
    await asyncio.to_thread(_write_files, data_dir, {path: image.png for path, image in kept})
    return [
        ResultImage(path, image.seed, image.parameters, flagged=image.nsfw) for path, image in kept
    ]


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
