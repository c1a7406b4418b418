"""Repainting part of a result: the inpaint job every editing button ends in.

Region repaint (a mask over the picture as it is), zoom out and pan (the picture on
an enlarged canvas, the new part masked) all come here: the canvas and the mask are
saved under the data folder as the job's inputs, so the job runs (again) after a
restart like any other. The engine pastes the original back wherever the mask is
black, so nothing outside the mask changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path

from PIL import Image

from bot.commands import canvas, generation
from bot.commands.base import Context, JobAccepted, Outcome, Reply
from bot.commands.generation import ImageSource
from bot.commands.params import PromptParams
from bot.records import GenerationRequest, Job, RequestKind, UserSettings
from bot.validation import BadInput

# The chosen cells are painted afresh, keeping only a little of what was there.
REGION_STRENGTH = 0.9
# The new area of a zoom or pan starts from a blurred backdrop: paint it all.
OUTPAINT_STRENGTH = 1.0
PAN_ACTIONS: dict[str, canvas.Direction] = {
    "left": "left",
    "right": "right",
    "up": "up",
    "down": "down",
}


def params_of(request: GenerationRequest, **values: object) -> PromptParams:
    """The stored request as options, so it goes through the same checks again."""
    params = PromptParams(
        prompt=request.prompt,
        negative=request.negative,
        steps=request.steps,
        cfg=request.cfg,
        sampler=request.sampler,
        model=request.model,
    )
    return dataclasses.replace(params, **values)


def expired(ctx: Context) -> str:
    """A result whose files retention (or an admin) deleted."""
    days = ctx.services.config.storage.keep_days
    kept = f" (pictures are kept for {days:g} days)" if days > 0 else ""
    return f"This picture has expired{kept}."


def picture_path(ctx: Context, job: Job, index: int) -> Path | None:
    """The file of picture `index` of a painted job, or None when it is gone."""
    if not job.status.painted or not 0 <= index < len(job.images):
        return None
    path = ctx.services.config.data_dir / job.images[index].path
    return path if path.is_file() else None


def _open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as opened:
        return opened.convert("RGB")


async def submit_inpaint(
    ctx: Context,
    kind: RequestKind,
    params: PromptParams,
    picture: Image.Image,
    mask: Image.Image,
    strength: float,
    *,
    parent: tuple[str, int | None] | None = None,
    picture_path: str | None = None,
    prefs: UserSettings | None = None,
) -> Outcome:
    """Check and queue an inpaint of `picture` (saved as an input unless it already is
    one, `picture_path`) under `mask`, at the picture's size."""
    config = ctx.services.config
    width, height = picture.size
    params = dataclasses.replace(params, size=f"{width}x{height}", count=1)
    image_file = image_relative = None
    if picture_path is None:
        image_file, image_relative = generation.new_input_path(config.data_dir)
    mask_file, mask_relative = generation.new_input_path(config.data_dir)
    source = ImageSource(
        picture_path or str(image_relative), width, height, strength, mask_relative
    )
    try:
        request = generation.build_request(
            ctx, kind, params, source=source, require_prompt=False, parent=parent, prefs=prefs
        )
    except BadInput as exc:
        return await generation.refuse(ctx, exc)
    if image_file is not None:
        await generation.save_input(picture, image_file)
    await generation.save_input(mask, mask_file)
    outcome = await generation.submit(ctx, request)
    if not isinstance(outcome, JobAccepted):
        # Refused by the scheduler: the saved inputs belong to no job.
        for path in (image_file, mask_file):
            if path is not None:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(path.unlink)
    return outcome


async def repaint_cells(
    ctx: Context, job: Job, index: int, cells: int, prompt: str | None = None
) -> Outcome:
    """Inpaint the chosen cells of a result, with its prompt or `prompt`."""
    if not 0 < cells <= canvas.ALL_CELLS:
        return Reply("Choose at least one cell to repaint.", error=True)
    path = picture_path(ctx, job, index)
    if path is None:
        return Reply(expired(ctx), error=True)
    picture = await asyncio.to_thread(_open_rgb, path)
    mask = await asyncio.to_thread(canvas.cell_mask, cells, picture.width, picture.height)
    params = params_of(job.request, **_prompt(prompt))
    return await submit_inpaint(
        ctx,
        "inpaint",
        params,
        picture,
        mask,
        REGION_STRENGTH,
        parent=(job.id, index),
        picture_path=job.images[index].path,
    )


async def outpaint(
    ctx: Context, job: Job, index: int, action: str, prompt: str | None = None
) -> Outcome:
    """Zoom out (`action` "zoom") or pan one way ("left", "right", "up", "down")."""
    path = picture_path(ctx, job, index)
    if path is None:
        return Reply(expired(ctx), error=True)
    picture = await asyncio.to_thread(_open_rgb, path)
    try:
        _, defaults = generation.resolve_model(ctx, job.request.model)
    except BadInput as exc:
        return await generation.refuse(ctx, exc)
    if action == "zoom":
        made = await asyncio.to_thread(canvas.zoom_out, picture)
        kind: RequestKind = "zoom"
    else:
        direction = PAN_ACTIONS[action]
        grid = defaults.info.size_multiple
        try:
            canvas.check_pan(
                picture.width,
                picture.height,
                direction,
                grid,
                defaults.side_limit(ctx.services.config.limits),
            )
        except BadInput as exc:
            return await generation.refuse(ctx, exc)
        made = await asyncio.to_thread(canvas.pan, picture, direction, grid)
        kind = "pan"
    params = params_of(job.request, **_prompt(prompt))
    return await submit_inpaint(
        ctx, kind, params, made.image, made.mask, OUTPAINT_STRENGTH, parent=(job.id, index)
    )


def _prompt(prompt: str | None) -> dict[str, object]:
    return {} if prompt is None else {"prompt": prompt}
