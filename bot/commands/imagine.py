"""/imagine: text to image."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bot.commands import generation, params, settings
from bot.commands.base import Context, Outcome
from bot.validation import BadInput


@dataclass(frozen=True)
class ImagineOptions:
    """Typed options (Discord's slash-command options); None = not given."""

    negative: str | None = None
    seed: int | None = None
    steps: int | None = None
    cfg: float | None = None
    size: str | None = None  # "768x512" or an aspect "3:2"
    sampler: str | None = None
    count: int | None = None
    model: str | None = None


async def run(ctx: Context, text: str, options: ImagineOptions | None = None) -> Outcome:
    """`text` may carry inline options (`--seed 7 --ar 3:2 ...`); typed options win."""
    prefs = await settings.user_settings(ctx)
    try:
        parsed = params.parse(text, is_sampler=generation.is_sampler)
        if options is not None:
            parsed = parsed.with_overrides(**dataclasses.asdict(options))
        request = generation.build_request(ctx, "imagine", parsed, prefs=prefs)
    except BadInput as exc:
        return await generation.refuse(ctx, exc)
    return await generation.submit(ctx, request)
