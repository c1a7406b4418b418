"""/inpaint: repaint the white part of an explicit mask over an attached picture.

The picture is painted at about the model's native area in its own shape (on the
size grid), the mask scaled to it; the engine keeps every pixel the mask leaves black.
"""

from __future__ import annotations

import asyncio

from PIL import Image

from bot.commands import canvas, edit, generation, params, settings, vary
from bot.commands.base import Context, ImageInput, Outcome, Reply
from bot.commands.generation import ImageSource
from bot.validation import BadInput, parse_size, size_for_aspect

DEFAULT_STRENGTH = edit.REGION_STRENGTH
NO_PICTURE = (
    "Attach a picture and a mask with /inpaint (white on the mask = repaint, black = keep)."
)
NO_MASK = "Attach a mask too: white where to repaint, black where to keep."
NOTHING_TO_REPAINT = "Nothing to repaint: the mask is all black (white marks what to repaint)."


async def run(
    ctx: Context,
    image: ImageInput | None,
    mask: ImageInput | None,
    text: str = "",
    strength: float | None = None,
) -> Outcome:
    """`text` is an optional prompt with inline options; a typed `strength` wins."""
    if image is None:
        return Reply(NO_PICTURE, error=True)
    if mask is None:
        return Reply(NO_MASK, error=True)
    prefs = await settings.user_settings(ctx)
    try:
        for attachment in (image, mask):
            vary.check_attachment(ctx, attachment)
        parsed = params.parse(text, is_sampler=generation.is_sampler)
        parsed = parsed.with_overrides(strength=strength)
        _, defaults = generation.resolve_model(ctx, parsed.model)
        # Checked before the downloads, so a typo in an option costs no traffic.
        generation.build_request(
            ctx,
            "inpaint",
            parsed,
            source=ImageSource("", defaults.width, defaults.height, DEFAULT_STRENGTH),
            require_prompt=False,
            prefs=prefs,
        )
        picture = await vary.fetch_picture(ctx, image)
        painted_mask = await vary.fetch_picture(ctx, mask)
    except BadInput as exc:
        return await generation.refuse(ctx, exc)
    try:
        size = _size(ctx, parsed, picture)
    except BadInput as exc:
        return await generation.refuse(ctx, exc)
    picture, grey = await asyncio.to_thread(_fit, picture, painted_mask, size)
    if not canvas.has_paint(grey):
        return Reply(NOTHING_TO_REPAINT, error=True)
    return await edit.submit_inpaint(
        ctx, "inpaint", parsed, picture, grey, DEFAULT_STRENGTH, prefs=prefs
    )


def _size(ctx: Context, parsed: params.PromptParams, picture: Image.Image) -> tuple[int, int]:
    """A typed size, else the picture's shape at the model's native area (nothing is
    squashed)."""
    _, defaults = generation.resolve_model(ctx, parsed.model)
    max_side = defaults.side_limit(ctx.services.config.limits)
    if parsed.size is not None:
        return parse_size(
            parsed.size, base_width=defaults.width, base_height=defaults.height, max_side=max_side
        )
    return size_for_aspect(
        min(4.0, max(0.25, picture.width / picture.height)),
        base_width=defaults.width,
        base_height=defaults.height,
        max_side=max_side,
    )


def _fit(
    picture: Image.Image, mask: Image.Image, size: tuple[int, int]
) -> tuple[Image.Image, Image.Image]:
    """The picture at the size it is painted at, and the mask (of any size) scaled to it."""
    if picture.size != size:
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    return picture, canvas.scale_mask(mask, size)
