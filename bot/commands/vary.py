"""/vary: img2img from a picture the user attached (or replied to)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from PIL import Image

from bot.commands import generation, params, settings
from bot.commands.base import Context, ImageInput, JobAccepted, Outcome, Reply
from bot.commands.generation import ImageSource
from bot.validation import BadInput, decode_image, size_for_aspect

DEFAULT_STRENGTH = 0.6
NO_PICTURE = "Attach a picture (or reply to one) with /vary."
NOT_A_PICTURE = "That file is not a picture Atelier can read (PNG, JPEG or WebP)."
DOWNLOAD_FAILED = "I couldn't download that picture; please send it again."

log = logging.getLogger(__name__)


def _too_big(size: int, limit_mb: float) -> str:
    return f"That picture is {size / 1_000_000:.1f} MB; the limit is {limit_mb:g} MB."


def check_attachment(ctx: Context, image: ImageInput) -> None:
    """Refused before downloading a byte when the platform tells type or size."""
    limit_mb = ctx.services.config.limits.max_attachment_mb
    if image.content_type is not None and not image.content_type.startswith("image/"):
        raise BadInput(NOT_A_PICTURE)
    if image.size is not None and image.size > int(limit_mb * 1_000_000):
        raise BadInput(_too_big(image.size, limit_mb))


async def fetch_picture(ctx: Context, image: ImageInput) -> Image.Image:
    """Download and decode an attachment safely (RGB, within max_side); BadInput with
    the reason otherwise. The caller has already run `check_attachment`."""
    config = ctx.services.config
    try:
        data = await image.download()
    except Exception as exc:  # each platform raises its own errors (HTTP, network, OS)
        # Only the type: a Telegram file URL, which an error may quote, holds the token.
        log.warning("downloading %r failed: %s", image.filename, type(exc).__name__)
        raise BadInput(DOWNLOAD_FAILED) from None
    if len(data) > int(config.limits.max_attachment_mb * 1_000_000):
        raise BadInput(_too_big(len(data), config.limits.max_attachment_mb))
    return await asyncio.to_thread(decode_image, data, max_side=config.limits.max_side)


async def run(
    ctx: Context, image: ImageInput | None, text: str = "", strength: float | None = None
) -> Outcome:
    """`text` is an optional prompt with inline options; a typed `strength` wins."""
    if image is None:
        return Reply(NO_PICTURE, error=True)
    config = ctx.services.config
    try:
        check_attachment(ctx, image)
    except BadInput as exc:
        return Reply(str(exc), error=True)
    path, relative = generation.new_input_path(config.data_dir)
    prefs = await settings.user_settings(ctx)
    try:
        parsed = params.parse(text, is_sampler=generation.is_sampler)
        parsed = parsed.with_overrides(strength=strength)
        _, defaults = generation.resolve_model(ctx, parsed.model)
        # Checked before the download, so a typo in an option costs no traffic.
        request = generation.build_request(
            ctx,
            "vary",
            parsed,
            source=ImageSource(relative, defaults.width, defaults.height, DEFAULT_STRENGTH),
            require_prompt=False,
            prefs=prefs,
        )
    except BadInput as exc:
        return await generation.refuse(ctx, exc)

    try:
        picture = await fetch_picture(ctx, image)
    except BadInput as exc:
        return await generation.refuse(ctx, exc)
    if parsed.size is None:
        # The picture's shape at the model's native area, so nothing is squashed.
        width, height = size_for_aspect(
            min(4.0, max(0.25, picture.width / picture.height)),
            base_width=defaults.width,
            base_height=defaults.height,
            max_side=config.limits.max_side,
        )
        request = dataclasses.replace(request, width=width, height=height)
    await generation.save_input(picture, path)
    outcome = await generation.submit(ctx, request)
    if not isinstance(outcome, JobAccepted):
        # Refused by the scheduler: the saved input belongs to no job.
        with contextlib.suppress(OSError):
            await asyncio.to_thread(path.unlink)
    return outcome
