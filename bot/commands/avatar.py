"""/avatar: a profile picture from preset choices, painted over a framing template."""

from __future__ import annotations

import asyncio

from bot.avatar import AVATAR_STRENGTH, ensure_template, template_path
from bot.commands import generation, settings
from bot.commands.base import Context, Outcome
from bot.commands.generation import ImageSource
from bot.commands.params import PromptParams
from bot.validation import BadInput, size_for_aspect


async def run(ctx: Context, choices: dict[str, str]) -> Outcome:
    """`choices` maps step keys (gender, hair_color, ...) to option values."""
    services = ctx.services
    prefs = await settings.user_settings(ctx)
    try:
        prompt, negative = services.presets.build(choices)
        _, defaults = generation.resolve_model(ctx, None)
        # Square, like every profile picture, at about the model's native area.
        width, height = size_for_aspect(
            1.0,
            base_width=defaults.width,
            base_height=defaults.height,
            max_side=services.config.limits.max_side,
        )
        source = ImageSource(template_path(width, height), width, height, AVATAR_STRENGTH)
        request = generation.build_request(
            ctx,
            "avatar",
            PromptParams(prompt=prompt, negative=negative),
            source=source,
            prefs=prefs,
        )
    except BadInput as exc:
        return await generation.refuse(ctx, exc)
    # Drawn only for a request that passed every check, and only once per size.
    await asyncio.to_thread(ensure_template, services.config.data_dir, width, height)
    return await generation.submit(ctx, request)
