"""The slash commands: Discord's typed options translated into Atelier's commands.

Ranges and choices here only help people type; every value is checked again by
the commands layer (autocomplete suggestions included: users can send anything).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands

from bot.commands import (
    admin,
    cancel,
    imagine,
    inpaint,
    loras,
    model,
    plot,
    queue,
    settings,
    vary,
    whoami,
)
from bot.commands import avatar as avatar_command
from bot.commands import help as usage
from bot.commands.base import Context, ImageInput, Outcome, Reply
from bot.commands.generation import model_defaults
from bot.validation import CFG_RANGE, COUNT_RANGE, SEED_MAX, STRENGTH_RANGE

if TYPE_CHECKING:
    from bot.avatar import AvatarStep
    from bot.services import Services

# Discord shows at most 25 choices or suggestions for an option.
MAX_CHOICES = 25

Seed = app_commands.Range[int, 0, SEED_MAX]
# The upper bound is the configured [limits] max_steps, checked by the commands layer.
Steps = app_commands.Range[int, 1, None]
Cfg = app_commands.Range[float, CFG_RANGE[0], CFG_RANGE[1]]
Count = app_commands.Range[int, COUNT_RANGE[0], COUNT_RANGE[1]]
Strength = app_commands.Range[float, STRENGTH_RANGE[0], STRENGTH_RANGE[1]]
LoraWeight = app_commands.Range[float, -2.0, 2.0]
Aspect = Literal["1:1", "3:2", "2:3", "4:3", "3:4", "16:9", "9:16"]

Command = Callable[[Context], Awaitable[Outcome]]
# Acknowledges the interaction, runs the command, shows its outcome (privately or not).
RunCommand = Callable[[discord.Interaction[Any], Command, bool], Awaitable[None]]


def add_commands(
    tree: app_commands.CommandTree[Any], run_command: RunCommand, services: Services
) -> None:
    async def run(
        interaction: discord.Interaction[Any], command: Command, *, private: bool = False
    ) -> None:
        await run_command(interaction, command, private)

    async def model_suggestions(
        interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return _suggest(services.config.models, current)

    async def sampler_suggestions(
        interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        # Only what the model this command would paint with can use.
        chosen = getattr(interaction.namespace, "model", None)
        try:
            _, defaults = model_defaults(services, chosen or None)
        except ValueError:  # a model name still being typed
            _, defaults = model_defaults(services, None)
        return _suggest(defaults.traits.samplers, current)

    async def lora_suggestions(
        interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return _suggest(loras.installed(services.config), current)

    @tree.command(name="imagine", description="Paint a picture from your words")
    @app_commands.describe(
        prompt="What to paint (inline options like --ar 3:2 work too)",
        negative="What to keep out of the picture",
        seed="Same seed + same settings = same picture",
        steps="More steps: more detail, slower",
        cfg="How closely to follow the prompt",
        aspect="Shape of the picture",
        size="Exact size, like 768x512 (instead of aspect)",
        sampler="Sampling method",
        count="How many pictures (1-4)",
        model="Model to paint with",
        lora="A LoRA to paint with (more: <lora:NAME:0.8> in the prompt)",
        lora_weight="How strongly the LoRA applies (1 by default)",
    )
    @app_commands.autocomplete(
        sampler=sampler_suggestions, model=model_suggestions, lora=lora_suggestions
    )
    async def imagine_command(
        interaction: discord.Interaction[Any],
        prompt: str,
        negative: str | None = None,
        seed: Seed | None = None,
        steps: Steps | None = None,
        cfg: Cfg | None = None,
        aspect: Aspect | None = None,
        size: str | None = None,
        sampler: str | None = None,
        count: Count | None = None,
        model: str | None = None,
        lora: str | None = None,
        lora_weight: LoraWeight | None = None,
    ) -> None:
        text = prompt
        if lora:
            # The same tag a prompt would carry: one path for both ways of asking.
            weight = lora_weight if lora_weight is not None else 1.0
            text = f"{prompt} <lora:{lora.replace('>', '')}:{weight:g}>"

        async def command(ctx: Context) -> Outcome:
            if aspect is not None and size is not None:
                return Reply("Give either an aspect or a size, not both.", error=True)
            options = imagine.ImagineOptions(
                negative=negative,
                seed=seed,
                steps=steps,
                cfg=cfg,
                size=size if size is not None else aspect,
                sampler=sampler,
                count=count,
                model=model,
            )
            return await imagine.run(ctx, text, options)

        await run(interaction, command)

    @tree.command(name="vary", description="Paint a variation of a picture you attach")
    @app_commands.describe(
        image="The picture to start from (PNG, JPEG or WebP)",
        prompt="What the new picture should show (optional)",
        strength="How much to change: 0.05 a little, 1 everything",
    )
    async def vary_command(
        interaction: discord.Interaction[Any],
        image: discord.Attachment,
        prompt: str | None = None,
        strength: Strength | None = None,
    ) -> None:
        source = ImageInput(image.filename, image.size, image.content_type, image.read)
        await run(interaction, lambda ctx: vary.run(ctx, source, prompt or "", strength))

    @tree.command(name="inpaint", description="Repaint the white part of a mask over a picture")
    @app_commands.describe(
        image="The picture to repaint part of",
        mask="White where to repaint, black where to keep (scaled to the picture)",
        prompt="What to paint there (optional)",
        strength="How much of the masked part changes: 0.05 a little, 1 everything",
    )
    async def inpaint_command(
        interaction: discord.Interaction[Any],
        image: discord.Attachment,
        mask: discord.Attachment,
        prompt: str | None = None,
        strength: Strength | None = None,
    ) -> None:
        picture = ImageInput(image.filename, image.size, image.content_type, image.read)
        drawn = ImageInput(mask.filename, mask.size, mask.content_type, mask.read)
        await run(interaction, lambda ctx: inpaint.run(ctx, picture, drawn, prompt or "", strength))

    tree.add_command(_avatar_command(run_command, services.presets.steps))

    @tree.command(name="plot", description="Compare settings in one grid (A1111's X/Y/Z plot)")
    @app_commands.describe(
        prompt="What to paint (options like --steps 20 and --x work inline too)",
        x="Columns: KIND=v1,v2,… like steps=10,20,30 or prompt=fox,cat",
        y="Rows, like cfg=4,7,10 (kinds: seed steps cfg sampler model size strength prompt)",
        z="One grid per value, like seed=1,2",
        image="A picture to start from (needed for a strength axis)",
    )
    async def plot_command(
        interaction: discord.Interaction[Any],
        prompt: str,
        x: str | None = None,
        y: str | None = None,
        z: str | None = None,
        image: discord.Attachment | None = None,
    ) -> None:
        source = None
        if image is not None:
            source = ImageInput(image.filename, image.size, image.content_type, image.read)
        axes = {"x": x, "y": y, "z": z}
        await run(interaction, lambda ctx: plot.run(ctx, prompt, axes, source))

    @tree.command(name="queue", description="Where your pictures are in the queue")
    async def queue_command(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, queue.run, private=True)

    @tree.command(name="cancel", description="Stop your newest job, or one by its id")
    @app_commands.describe(job="The job id (from /queue); your newest job if empty")
    async def cancel_command(interaction: discord.Interaction[Any], job: str | None = None) -> None:
        await run(interaction, lambda ctx: cancel.run(ctx, job), private=True)

    @tree.command(name="help", description="How to use Atelier")
    async def help_command(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, usage.run, private=True)

    @tree.command(name="loras", description="The LoRAs you can use: <lora:NAME:0.8>")
    async def loras_command(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, loras.run, private=True)

    @tree.command(name="model", description="List the models; admins: switch to another")
    @app_commands.describe(name="The model to switch to (admins only)")
    @app_commands.autocomplete(name=model_suggestions)
    async def model_command(interaction: discord.Interaction[Any], name: str | None = None) -> None:
        await run(interaction, lambda ctx: model.run(ctx, name))

    @tree.command(name="ban", description="Admins: refuse a user's commands")
    @app_commands.describe(user="A user id (or telegram:ID)", reason="Why (kept in the log)")
    async def ban_command(
        interaction: discord.Interaction[Any], user: str, reason: str | None = None
    ) -> None:
        await run(interaction, lambda ctx: admin.ban(ctx, user, reason or ""), private=True)

    @tree.command(name="unban", description="Admins: accept a banned user's commands again")
    @app_commands.describe(user="A user id (or telegram:ID)")
    async def unban_command(interaction: discord.Interaction[Any], user: str) -> None:
        await run(interaction, lambda ctx: admin.unban(ctx, user), private=True)


def add_personal_commands(tree: app_commands.CommandTree[Any], run_command: RunCommand) -> None:
    """/settings and /whoami: about the caller, answered only to them."""

    @tree.command(name="settings", description="Your defaults: aspect, steps, sampler, DMs…")
    @app_commands.describe(negative="A negative prompt added to every picture you ask for")
    async def settings_command(
        interaction: discord.Interaction[Any], negative: str | None = None
    ) -> None:
        await run_command(interaction, lambda ctx: settings.run(ctx, "", negative), True)

    @tree.command(name="whoami", description="Your Discord user id, as [admins] wants it")
    async def whoami_command(interaction: discord.Interaction[Any]) -> None:
        await run_command(interaction, whoami.run, True)


def _avatar_command(run_command: RunCommand, steps: list[AvatarStep]) -> app_commands.Command:
    """/avatar with one option per preset step, so admins' extra steps appear too."""

    async def avatar(interaction: discord.Interaction[Any], **choices: str | None) -> None:
        picked = {key: value for key, value in choices.items() if value is not None}
        await run_command(interaction, lambda ctx: avatar_command.run(ctx, picked), False)

    # The options come from data, so the callback's signature is built from it.
    avatar.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                "interaction",
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=discord.Interaction,
            ),
            *(
                inspect.Parameter(
                    step.key, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=str | None
                )
                for step in steps
            ),
        ]
    )
    described = app_commands.describe(**{step.key: step.title[:100] for step in steps})(avatar)
    with_choices = app_commands.choices(
        **{
            step.key: [
                app_commands.Choice(name=option.label[:100], value=option.value)
                for option in step.options[:MAX_CHOICES]
            ]
            for step in steps
        }
    )(described)
    return app_commands.Command(
        name="avatar",
        description="Build a profile picture from presets (unset options: defaults)",
        callback=with_choices,
    )


def _suggest(names: Iterable[str], current: str) -> list[app_commands.Choice[str]]:
    needle = current.strip().lower()
    found = [name for name in names if needle in name.lower()]
    return [app_commands.Choice(name=name, value=name) for name in found[:MAX_CHOICES]]
