"""/settings: a user's own defaults, shown and changed as a panel of buttons.

Aspect ratio, steps and sampler apply where a command does not name them; the
negative prompt is added to every job's; remix and "results to my DMs" change what
buttons and deliveries do. Stored per user (`Store.user_settings`), so they survive
restarts. Typed as inline options too: `/settings --ar 3:2 --steps 30 --no blurry`.

Panel data is `set:WHAT[:VALUE]`; each press names the value it sets (a second press
of the same button changes nothing), so the panel may be pressed in any order.
"""

from __future__ import annotations

import dataclasses
import re

from bot.commands import params
from bot.commands.base import Button, Context, Menu, Outcome, Reply
from bot.commands.generation import ALL_SAMPLERS, check_prompt_length, is_sampler
from bot.records import UserSettings
from bot.validation import BadInput, check_steps, parse_size
from engine.samplers import canonical_sampler

ASPECTS = ("1:1", "3:2", "2:3", "4:3", "3:4", "16:9", "9:16")
STEP_CHOICES = (10, 20, 30, 40, 50)
PREFIX = "set"
# Discord templates and Telegram handlers match panel data with this.
PATTERN = r"set:(?P<what>[a-z]+)(?::(?P<value>[^\n]{0,40}))?"
_DATA = re.compile(rf"^{PATTERN}$")
_SETTABLE = ("size", "steps", "sampler", "negative")
MODEL_DEFAULT = "Model default"
USAGE = (
    "/settings shows your defaults. Type them too: /settings --ar 3:2 --steps 30 "
    '--sampler "Euler a" --no blurry, text — or /settings reset.'
)
OUT_OF_DATE = "That settings panel is out of date: send /settings again."


async def user_settings(ctx: Context) -> UserSettings:
    """The caller's settings (the defaults when they set none)."""
    return await ctx.services.store.user_settings(ctx.caller.key)


async def run(ctx: Context, text: str = "", negative: str | None = None) -> Outcome:
    """The panel; inline options (or a typed `negative`) change settings first."""
    current = await user_settings(ctx)
    try:
        changed = _typed(ctx, current, text, negative)
    except BadInput as exc:
        return Reply(str(exc), error=True)
    if changed != current:
        await ctx.services.store.set_user_settings(ctx.caller.key, changed)
    return panel(ctx, changed)


async def click(ctx: Context, data: str) -> Reply:
    """A press on the panel (or a choice in one of its menus): the panel as it is now."""
    match = _DATA.match(data)
    if match is None:
        return Reply(OUT_OF_DATE, error=True)
    what, value = match["what"], match["value"] or ""
    current = await user_settings(ctx)
    if what == "open":
        return panel(ctx, current, expanded=value)
    if what == "panel":
        return panel(ctx, current)
    try:
        changed = _pressed(ctx, current, what, value)
    except BadInput:
        return Reply(OUT_OF_DATE, error=True)
    if changed != current:
        await ctx.services.store.set_user_settings(ctx.caller.key, changed)
    return panel(ctx, changed)


def encode(what: str, value: str | None = None) -> str:
    return f"{PREFIX}:{what}" if value is None else f"{PREFIX}:{what}:{value}"


def is_panel_data(data: str) -> bool:
    return _DATA.match(data) is not None


# ---- changes ---------------------------------------------------------------------------


def _typed(ctx: Context, current: UserSettings, text: str, negative: str | None) -> UserSettings:
    given = params.parse(text, is_sampler=is_sampler)
    if given.prompt.strip().lower() == "reset":
        return UserSettings()
    if given.prompt.strip():
        raise BadInput(USAGE)
    values = dataclasses.asdict(given)
    others = [name for name, value in values.items() if value is not None]
    others = [name for name in others if name not in (*_SETTABLE, "prompt")]
    if others:
        raise BadInput(f"/settings keeps an aspect, steps, a sampler and a negative. {USAGE}")
    changed = current
    if given.size is not None:
        changed = dataclasses.replace(changed, aspect=_aspect(ctx, given.size))
    if given.steps is not None:
        check_steps(given.steps, ctx.services.config.limits.max_steps)
        changed = dataclasses.replace(changed, steps=given.steps)
    if given.sampler is not None:
        changed = dataclasses.replace(changed, sampler=_sampler(given.sampler))
    typed_negative = negative if negative is not None else given.negative
    if typed_negative is not None:
        check_prompt_length(ctx, typed_negative.strip(), "negative prompt")
        changed = dataclasses.replace(changed, negative=typed_negative.strip())
    return changed


def _pressed(ctx: Context, current: UserSettings, what: str, value: str) -> UserSettings:
    """The settings after pressing `what` = `value`; BadInput for data no panel sends."""
    match what:
        case "aspect":
            return dataclasses.replace(current, aspect=_aspect(ctx, value) if value else None)
        case "steps":
            steps = _whole(value) if value else None
            if steps is not None:
                check_steps(steps, ctx.services.config.limits.max_steps)
            return dataclasses.replace(current, steps=steps)
        case "sampler":
            return dataclasses.replace(current, sampler=_sampler(value) if value else None)
        case "remix" | "dm":
            if value not in ("on", "off"):
                raise BadInput(value)
            field = "remix" if what == "remix" else "dm_results"
            return dataclasses.replace(current, **{field: value == "on"})
        case "negative":
            return dataclasses.replace(current, negative="")
        case "reset":
            return UserSettings()
    raise BadInput(what)


def _aspect(ctx: Context, text: str) -> str:
    """An aspect ratio, written `W:H`; exact sizes depend on the model, so not those."""
    if "x" in text.lower() or "×" in text:
        raise BadInput("Settings keep an aspect ratio like 3:2 (sizes differ between models).")
    limits = ctx.services.config.limits
    parse_size(text, base_width=512, base_height=512, max_side=max(limits.max_side, 2048))
    width, height = (int(side) for side in text.split(":"))
    return f"{width}:{height}"


def _sampler(name: str) -> str:
    try:
        return canonical_sampler(name, ALL_SAMPLERS)
    except ValueError:
        raise BadInput(f"Unknown sampler '{name}'. Available: {', '.join(ALL_SAMPLERS)}.") from None


def _whole(value: str) -> int:
    if not value.isdecimal():
        raise BadInput(value)
    return int(value)


# ---- the panel -------------------------------------------------------------------------


def panel(ctx: Context, settings: UserSettings, *, expanded: str = "") -> Reply:
    """The settings as text, menus for the choices and buttons for the rest; private
    (ephemeral on Discord, a private chat on Telegram)."""
    max_steps = ctx.services.config.limits.max_steps
    steps = [n for n in STEP_CHOICES if n <= max_steps]
    menus = [
        _menu("aspect", "📐 Aspect", ASPECTS, settings.aspect, expanded),
        _menu("steps", "🔢 Steps", [str(n) for n in steps], _text(settings.steps), expanded),
        _menu("sampler", "🎲 Sampler", ALL_SAMPLERS, settings.sampler, expanded),
    ]
    toggles = [
        _toggle("remix", "🔀 Remix", settings.remix),
        _toggle("dm", "📬 Results to DMs", settings.dm_results),
    ]
    last = [Button("↩️ Reset all", encode("reset"))]
    if settings.negative:
        last.insert(0, Button("🚫 Clear negative", encode("negative")))
    return Reply(_describe(settings), buttons=[toggles, last], private=True, menus=menus)


def _menu(
    what: str, title: str, values: list[str] | tuple[str, ...], chosen: str | None, expanded: str
) -> Menu:
    choices = list(values)
    if chosen is not None and chosen not in choices:
        choices.append(chosen)  # typed, like --steps 25
    options = [Button(MODEL_DEFAULT, encode(what, ""))]
    options += [Button(value, encode(what, value)) for value in choices]
    index = 0 if chosen is None else choices.index(chosen) + 1
    return Menu(
        title=title,
        options=options,
        chosen=index,
        open=encode("open", what),
        back=encode("panel"),
        expanded=expanded == what,
    )


def _toggle(what: str, title: str, on: bool) -> Button:
    return Button(f"{title}: {'on' if on else 'off'}", encode(what, "off" if on else "on"))


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)


def _describe(settings: UserSettings) -> str:
    negative = settings.negative or "none (set one: /settings --no blurry, text)"
    where = "your private messages" if settings.dm_results else "the chat you asked in"
    return "\n".join(
        [
            "⚙️ Your settings, used when a command does not say otherwise:",
            f"📐 Aspect: {settings.aspect or 'the model’s own'}",
            f"🔢 Steps: {settings.steps or 'the model’s default'}",
            f"🎲 Sampler: {settings.sampler or 'the model’s default'}",
            f"🚫 Negative prompt, added to every picture: {negative}",
            f"🔀 Remix (buttons ask for a new prompt): {'on' if settings.remix else 'off'}",
            f"📬 Results go to {where}",
        ]
    )
