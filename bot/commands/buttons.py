"""Presses on result buttons: re-roll, vary, upscale, PNG, delete.

Button data is only an action, a job id and a picture index (`button_data.py`);
everything else is read from the store and the data folder, so buttons keep working
after a restart.
"""

from __future__ import annotations

import dataclasses
import math

from bot.commands import edit, generation, plot, region
from bot.commands.base import Context, DeleteResult, Outcome, Reply, SendFile
from bot.commands.button_data import ButtonData, decode
from bot.commands.button_data import encode as encode
from bot.commands.edit import expired as expired
from bot.commands.edit import params_of as _params_of
from bot.commands.generation import ImageSource
from bot.records import GenerationRequest, Job
from bot.validation import MIN_SIDE, BadInput

VARY_STRENGTH = 0.6
INVALID = "That button no longer works. Run the command again."


async def run(ctx: Context, data: str, *, prompt: str | None = None) -> Outcome:
    """Act on a press; `prompt` replaces the job's prompt (a remix)."""
    pressed = decode(data)
    if pressed is None:
        return Reply(INVALID, error=True)
    job = await ctx.services.store.get_job(pressed.job_id)
    if job is None:
        return Reply("That picture is no longer available.", error=True)
    if pressed.action == "delete":
        if ctx.caller.key != job.user_key and not ctx.caller.is_admin:
            return Reply(
                "Only the person who asked for it (or an admin) can delete it.", error=True
            )
        return DeleteResult(job.id)
    if prompt is not None:
        job = dataclasses.replace(job, request=dataclasses.replace(job.request, prompt=prompt))
    if pressed.action in ("reroll", "remix"):
        return await _reroll(ctx, job)
    if pressed.action in ("cell", "cells"):
        if pressed.action == "cells" or pressed.index is None:
            return await plot.cells_file(ctx, job)
        return await plot.cell_file(ctx, job, pressed.index)
    if not job.status.painted or not job.images:
        return Reply("That job has no finished pictures.", error=True)
    index = pressed.index if pressed.index is not None else 0
    if not 0 <= index < len(job.images):
        return Reply(INVALID, error=True)
    if pressed.action == "png":
        return _png(ctx, job, index)
    if pressed.action == "region":
        return await region.open_grid(ctx, job, index)
    if pressed.action == "zoom" or pressed.action in edit.PAN_ACTIONS:
        return await edit.outpaint(ctx, job, index, pressed.action)
    return await _img2img(ctx, job, pressed, index)


async def _reroll(ctx: Context, job: Job) -> Outcome:
    """The same request with a new seed; the count is kept."""
    request = job.request
    source = None
    if request.init_image is not None:
        source = ImageSource(
            request.init_image,
            request.width,
            request.height,
            request.strength or VARY_STRENGTH,
            request.mask_image,
        )
    params = _params_of(request, size=f"{request.width}x{request.height}", count=request.count)
    try:
        new = generation.build_request(
            ctx,
            request.kind,
            params,
            source=source,
            require_prompt=False,
            parent=(job.id, None),
        )
    except BadInput as exc:
        return await generation.refuse(ctx, exc)
    if request.upscale is not None:
        new = _as_upscale(new, request.upscale, request.strength or 0.0)
    return await generation.submit(ctx, new)


async def _img2img(ctx: Context, job: Job, pressed: ButtonData, index: int) -> Outcome:
    """Vary or upscale one result picture, which becomes the img2img input."""
    request = job.request
    image = job.images[index]
    if not (ctx.services.config.data_dir / image.path).is_file():
        return Reply(expired(ctx), error=True)
    try:
        if pressed.action == "vary":
            width, height = request.width, request.height
            source = ImageSource(image.path, width, height, VARY_STRENGTH)
            kind = "vary"
            seed = None
        else:
            width, height = _upscaled_size(request, ctx.services.config.limits.max_side)
            # Checked as a vary's; the upscale's own strength is set below.
            source = ImageSource(image.path, width, height, VARY_STRENGTH)
            kind = "upscale"
            seed = image.seed  # the same noise keeps the details where they were
        params = _params_of(request, size=f"{width}x{height}", count=1, seed=seed)
        new = generation.build_request(
            ctx, kind, params, source=source, require_prompt=False, parent=(job.id, index)
        )
    except BadInput as exc:
        return await generation.refuse(ctx, exc)
    if kind == "upscale":
        strength = ctx.services.config.upscale.detail_strength
        new = _as_upscale(new, round(width / request.width, 2), strength)
    return await generation.submit(ctx, new)


def _as_upscale(request: GenerationRequest, factor: float, strength: float) -> GenerationRequest:
    """An upscale's factor and detail strength, set after the checks: 0 (no detail
    pass, an admin's [upscale] choice) is below what a user may ask for."""
    return dataclasses.replace(request, upscale=factor, strength=strength)


def _upscaled_size(request: GenerationRequest, max_side: int) -> tuple[int, int]:
    """Twice the size, or the largest size (multiples of 64) that fits `max_side`."""
    width, height = request.width * 2, request.height * 2
    if max(width, height) > max_side:
        scale = max_side / max(width, height)
        width = max(MIN_SIDE, math.floor(width * scale / 64) * 64)
        height = max(MIN_SIDE, math.floor(height * scale / 64) * 64)
    if width <= request.width and height <= request.height:
        raise BadInput(
            f"That picture is already as large as this bot makes them ({max_side} px a side)."
        )
    return width, height


def _png(ctx: Context, job: Job, index: int) -> Outcome:
    path = ctx.services.config.data_dir / job.images[index].path
    if not path.is_file():
        return Reply(expired(ctx), error=True)
    return SendFile(path, f"atelier-{job.id}-{index + 1}.png")
