"""Turning what a user asked for into a checked `GenerationRequest`, and queueing it.

Shared by /imagine, /vary, /avatar and the result buttons, so every way of asking
for a picture gets the same defaults, the same range checks and the same filter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dynamicprompts.commands import Command
from dynamicprompts.enums import SamplingMethod
from dynamicprompts.parser.parse import parse as parse_prompt
from dynamicprompts.sampling_context import SamplingContext
from dynamicprompts.wildcards import WildcardManager
from PIL import Image

from bot.commands import render
from bot.commands.base import Context, JobAccepted, Outcome, Reply
from bot.commands.params import PromptParams
from bot.config import LimitsConfig, ModelConfig
from bot.jobs.admission import Refused
from bot.jobs.events import Queued
from bot.records import GenerationRequest, RequestKind, UserSettings
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
from engine.families import FAMILIES
from engine.loras import LoraError, find_lora, lora_family
from engine.prompts import plain_text, split_lora_tags
from engine.samplers import FLOW_SAMPLER_NAMES, SAMPLER_NAMES, canonical_sampler

ALL_SAMPLERS = list(dict.fromkeys(SAMPLER_NAMES + FLOW_SAMPLER_NAMES))

if TYPE_CHECKING:
    from bot.services import Services

NO_PROMPT = "Write what to paint after the command, like: /imagine a red fox at dusk"
# Origin key: deliver the result to the owner's private chat (their /settings).
DM_RESULTS = "dm_results"


@dataclass(frozen=True)
class ImageSource:
    """An img2img input already saved under the data folder."""

    path: str  # relative to the data folder
    width: int  # the size to generate at unless the user names one
    height: int
    strength: float  # used unless the user names one
    mask: str | None = None  # inpaint mask under the data folder (white = repaint)


def is_sampler(name: str) -> bool:
    """Any family's sampler: inline parsing only needs to know where the name ends."""
    try:
        canonical_sampler(name, ALL_SAMPLERS)
    except ValueError:
        return False
    return True


def random_seed() -> int:
    return secrets.randbelow(SEED_MAX + 1)


def resolve_model(ctx: Context, name: str | None) -> tuple[str, ModelConfig]:
    """The named model (or the current one) and its defaults."""
    return model_defaults(ctx.services, name)


def model_defaults(services: Services, name: str | None) -> tuple[str, ModelConfig]:
    models = services.config.models
    if name is None:
        name = services.scheduler.current_model
        if name in models:
            return name, models[name]
        return name, ModelConfig(source=services.config.model_source(name))
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
    prefs: UserSettings | None = None,
) -> GenerationRequest:
    """Apply defaults, check every value, expand variants and filter the prompt.

    `prefs` are the caller's /settings: used where `params` leave a value out (the
    aspect only without an input picture), their negative prompt added to the given one.
    Raises BadInput with a message for the user; nothing is queued or written.
    """
    config = ctx.services.config
    limits = config.limits
    model, defaults = resolve_model(ctx, params.model)
    notes: list[str] = []
    if prefs is not None:
        params = _with_prefs(params, prefs, defaults, limits, source is not None, notes)
    prompt = params.prompt.strip()
    negative = (params.negative or "").strip()
    if require_prompt and not prompt:
        raise BadInput(NO_PROMPT)
    check_prompt_length(ctx, prompt)
    check_prompt_length(ctx, negative, "negative prompt")

    traits = defaults.traits
    max_side = defaults.side_limit(limits)

    seed = params.seed if params.seed is not None else random_seed()
    check_seed(seed)
    steps = params.steps if params.steps is not None else defaults.default_steps
    check_steps(steps, defaults.steps_limit(limits))
    cfg = params.cfg if params.cfg is not None else defaults.default_cfg
    check_cfg(cfg)
    count = params.count if params.count is not None else 1
    check_count(count)
    sampler = _sampler(params.sampler or str(defaults.sampler), model, traits.samplers)
    if params.size is not None:
        width, height = parse_size(
            params.size,
            base_width=defaults.width,
            base_height=defaults.height,
            max_side=max_side,
        )
    elif source is not None:
        width, height = source.width, source.height
    else:
        width, height = defaults.width, defaults.height
    check_size(width, height, max_side)
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
    # The filter reads what the encoder will read: no LoRA tags, no weighting syntax
    # splitting a word (`nu()de`), as well as the prompt as typed.
    for text in (prompt, plain_text(prompt)):
        refusal = ctx.services.prompt_filter.check(text)
        if refusal is not None:
            raise PromptRefused(refusal)
    _check_loras(ctx, prompt, model, defaults)
    typed_negative = negative != (prefs.negative if prefs is not None else "")
    if negative and typed_negative and not traits.uses_negative:
        notes.append(f"{traits.label} models take no negative prompt, so yours is ignored.")
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
        mask_image=source.mask if source is not None else None,
        strength=strength,
        parent_job=parent[0] if parent else None,
        parent_index=parent[1] if parent else None,
        model_given=params.model is not None,
        notes=notes,
    )


def _with_prefs(
    params: PromptParams,
    prefs: UserSettings,
    defaults: ModelConfig,
    limits: LimitsConfig,
    has_picture: bool,
    notes: list[str],
) -> PromptParams:
    """`params` with the caller's settings where they left a value out. A setting this
    model cannot use gives way to the model's default, with a note saying so."""
    changes: dict[str, object] = {}
    if params.size is None and not has_picture and prefs.aspect:
        changes["size"] = prefs.aspect
    if params.steps is None and prefs.steps is not None:
        most = defaults.steps_limit(limits)
        if prefs.steps <= most:
            changes["steps"] = prefs.steps
        else:
            notes.append(f"Your {prefs.steps} steps are over this model's {most}: it uses its own.")
    if params.sampler is None and prefs.sampler is not None:
        if prefs.sampler in defaults.traits.samplers:
            changes["sampler"] = prefs.sampler
        else:
            notes.append(
                f"{defaults.traits.label} models cannot use your sampler {prefs.sampler}: "
                f"this one uses {defaults.sampler}."
            )
    if prefs.negative:
        given = (params.negative or "").strip()
        changes["negative"] = f"{given}, {prefs.negative}" if given else prefs.negative
    return dataclasses.replace(params, **changes)


def _sampler(name: str, model: str, choices: tuple[str, ...]) -> str:
    try:
        return canonical_sampler(name, choices)
    except ValueError:
        known = is_sampler(name)
        what = f"{model} cannot use the sampler '{name}'" if known else f"Unknown sampler '{name}'"
        raise BadInput(f"{what}. Available: {', '.join(choices)}.") from None


def _check_loras(ctx: Context, prompt: str, model: str, defaults: ModelConfig) -> None:
    """Every `<lora:NAME>` must be installed and made for the model's family."""
    _, tags = split_lora_tags(prompt)
    folder = ctx.services.config.loras_dir
    for tag in tags:
        try:
            name, path = find_lora(folder, tag.name)
        except LoraError as exc:
            raise BadInput(str(exc)) from None
        made_for = lora_family(path)
        if made_for is not None and made_for != defaults.family:
            raise BadInput(
                f"The LoRA '{name}' is for {FAMILIES[made_for].label} models; "
                f"{model} is {defaults.traits.label}."
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
    origin = dict(ctx.origin)
    if (await ctx.services.store.user_settings(ctx.caller.key)).dm_results:
        # The adapter's sender sends the result to the user's private chat.
        origin[DM_RESULTS] = True
    try:
        job = await scheduler.submit(ctx.caller, request, origin)
    except Refused as exc:
        return Reply(str(exc), error=True)
    place = scheduler.position(job.id)
    # No place in the queue: the job went straight to the engine.
    position, eta = place if place is not None else (0, None)
    # While a model downloads, every job waits for it: say so from the first line.
    status = scheduler.downloading or Queued(position, eta)
    text = "\n".join([render.status_text(status), *request.notes])
    return JobAccepted(job, position, eta, text)


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
