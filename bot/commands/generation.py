"""Turning what a user asked for into a checked `GenerationRequest`, and queueing it.

Shared by /imagine, /vary, /avatar and the result buttons, so every way of asking
for a picture gets the same defaults, the same range checks and the same filter.
"""

from __future__ import annotations

import asyncio
import functools
import random
import secrets
from dataclasses import dataclass
from pathlib import Path

from dynamicprompts.commands import Command
from dynamicprompts.enums import SamplingMethod
from dynamicprompts.parser.parse import parse as parse_prompt
from dynamicprompts.sampling_context import SamplingContext
from dynamicprompts.wildcards import WildcardManager
from PIL import Image

from bot.commands import render
from bot.commands.base import Context, JobAccepted, Outcome, Reply
from bot.commands.params import PromptParams
from bot.config import ModelConfig
from bot.jobs.events import Queued
from bot.jobs.scheduler import Refused
from bot.records import GenerationRequest, RequestKind
from bot.validation import (
    SEED_MAX,
    BadInput,
    check_cfg,
    check_count,
    check_seed,
    check_size,
    check_steps,
    check_strength,
    parse_size,
)
from engine.samplers import SAMPLER_NAMES, canonical_sampler

NO_PROMPT = "Write what to paint after the command, like: /imagine a red fox at dusk"


@dataclass(frozen=True)
class ImageSource:
    """An img2img input already saved under the data folder."""

    path: str  # relative to the data folder
    width: int  # the size to generate at unless the user names one
    height: int
    strength: float  # used unless the user names one


def is_sampler(name: str) -> bool:
    try:
        canonical_sampler(name)
    except ValueError:
        return False
    return True


def random_seed() -> int:
    return secrets.randbelow(SEED_MAX + 1)


def resolve_model(ctx: Context, name: str | None) -> tuple[str, ModelConfig]:
    """The named model (or the current one) and its configured defaults."""
    models = ctx.services.config.models
    if name is None:
        name = ctx.services.scheduler.current_model
        return name, models.get(name) or ModelConfig(source=name)
    found = next((known for known in models if known.lower() == name.strip().lower()), None)
    if found is None:
        raise BadInput(f"Unknown model '{name}'. Available: {', '.join(models) or 'none'}.")
    return found, models[found]


def check_prompt_length(ctx: Context, text: str, what: str = "prompt") -> None:
    limit = ctx.services.config.limits.max_prompt_chars
    if len(text) > limit:
        raise BadInput(f"Your {what} is {len(text):,} characters; the limit is {limit:,}.")


@functools.lru_cache(maxsize=512)
def _parse_variants(template: str) -> Command:
    # Parsing (pyparsing) costs milliseconds; re-rolls and presets repeat templates.
    return parse_prompt(template)


def expand_variants(template: str, seed: int) -> str:
    """`{a|b}` picks one variant, seeded by the job's seed so a re-run picks the same."""
    if "{" not in template:
        return template
    try:
        command = _parse_variants(template)
        context = SamplingContext(
            default_sampling_method=SamplingMethod.RANDOM,
            wildcard_manager=WildcardManager(),
            rand=random.Random(seed),
        )
        expanded = [str(result) for result in context.sample_prompts(command, 1)]
    except Exception as exc:  # pyparsing's errors for unbalanced or odd syntax
        raise BadInput("The {a|b} variants in your prompt don't add up: check the braces.") from exc
    return expanded[0] if expanded else ""


def build_request(
    ctx: Context,
    kind: RequestKind,
    params: PromptParams,
    *,
    source: ImageSource | None = None,
    require_prompt: bool = True,
    parent: tuple[str, int | None] | None = None,
) -> GenerationRequest:
    """Apply defaults, check every value, expand variants and filter the prompt.

    Raises BadInput with a message for the user; nothing is queued or written.
    """
    config = ctx.services.config
    limits = config.limits
    prompt = params.prompt.strip()
    negative = (params.negative or "").strip()
    if require_prompt and not prompt:
        raise BadInput(NO_PROMPT)
    check_prompt_length(ctx, prompt)
    check_prompt_length(ctx, negative, "negative prompt")
    model, defaults = resolve_model(ctx, params.model)

    seed = params.seed if params.seed is not None else random_seed()
    check_seed(seed)
    steps = params.steps if params.steps is not None else defaults.default_steps
    check_steps(steps, limits.max_steps)
    cfg = params.cfg if params.cfg is not None else defaults.default_cfg
    check_cfg(cfg)
    count = params.count if params.count is not None else 1
    check_count(count)
    sampler_name = params.sampler if params.sampler is not None else defaults.sampler
    try:
        sampler = canonical_sampler(sampler_name)
    except ValueError:
        raise BadInput(
            f"Unknown sampler '{sampler_name}'. Available: {', '.join(SAMPLER_NAMES)}."
        ) from None
    if params.size is not None:
        width, height = parse_size(
            params.size,
            base_width=defaults.width,
            base_height=defaults.height,
            max_side=limits.max_side,
        )
    elif source is not None:
        width, height = source.width, source.height
    else:
        width, height = defaults.width, defaults.height
    check_size(width, height, limits.max_side)
    strength = None
    if source is not None:
        strength = params.strength if params.strength is not None else source.strength
        check_strength(strength)
    elif params.strength is not None:
        raise BadInput(
            "--strength only works with /vary (it sets how much of the picture changes)."
        )

    # Variants first: the filter must see the words that will actually be painted.
    prompt = expand_variants(prompt, seed).strip()
    negative = expand_variants(negative, seed).strip()
    if require_prompt and not prompt:
        raise BadInput(NO_PROMPT)
    check_prompt_length(ctx, prompt)
    check_prompt_length(ctx, negative, "negative prompt")
    refusal = ctx.services.prompt_filter.check(prompt)
    if refusal is not None:
        raise PromptRefused(refusal)
    return GenerationRequest(
        kind=kind,
        prompt=prompt,
        negative=negative,
        model=model,
        seed=seed,
        steps=steps,
        cfg=cfg,
        width=width,
        height=height,
        sampler=sampler,
        count=count,
        init_image=source.path if source is not None else None,
        strength=strength,
        parent_job=parent[0] if parent else None,
        parent_index=parent[1] if parent else None,
        model_given=params.model is not None,
    )


class PromptRefused(BadInput):
    """The prompt filter said no; audit-logged so admins can see what is tried."""


async def refuse(ctx: Context, exc: BadInput) -> Reply:
    """A refusal message; a filtered prompt is also noted in the audit log."""
    if isinstance(exc, PromptRefused):
        await ctx.services.store.audit(ctx.caller.key, "prompt_refused")
    return Reply(_sentence(str(exc)), error=True)


def _sentence(text: str) -> str:
    """Messages from shared checks start lower-case; a reply reads as a sentence."""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."


async def submit(ctx: Context, request: GenerationRequest) -> Outcome:
    """Queue the request; limits and bans are the scheduler's to refuse."""
    scheduler = ctx.services.scheduler
    try:
        job = await scheduler.submit(ctx.caller, request, dict(ctx.origin))
    except Refused as exc:
        return Reply(str(exc), error=True)
    place = scheduler.position(job.id)
    # No place in the queue: the job went straight to the engine.
    position, eta = place if place is not None else (0, None)
    return JobAccepted(job, position, eta, render.status_text(Queued(position, eta)))


def new_input_path(data_dir: Path) -> tuple[Path, str]:
    """A fresh file for an img2img input: (absolute path, path relative to data)."""
    relative = f"inputs/{secrets.token_hex(8)}.png"
    return data_dir / relative, relative


def _save_png(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")


async def save_input(image: Image.Image, path: Path) -> None:
    """Save a decoded RGB picture as PNG (in a thread: encoding is CPU work)."""
    await asyncio.to_thread(_save_png, image, path)
