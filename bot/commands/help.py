"""/help: how to use Atelier, with examples, the inline options and their ranges."""

from __future__ import annotations

from bot.commands.base import Context, Outcome, Reply
from bot.validation import CFG_RANGE, COUNT_RANGE, SEED_MAX, STRENGTH_RANGE


def help_text(ctx: Context) -> str:
    config = ctx.services.config
    limits = config.limits
    current = ctx.services.scheduler.current_model
    models = ", ".join(config.models) or current
    lines = [
        "🎨 Atelier paints pictures from your words.",
        "",
        "/imagine a red fox at dusk, oil painting",
        "/imagine a castle --ar 16:9 --steps 30 --no blurry, text",
        "/vary — attach a picture (or reply to one), optionally with a prompt",
        "/inpaint — a picture and a mask (white = repaint); Telegram: the mask as a reply",
        "/avatar — build a profile picture step by step",
        f"/plot a castle --x steps=10,20 --y cfg=4,7 — compare in one grid "
        f"(kinds: seed steps cfg sampler model size strength prompt; "
        f"at most {limits.max_plot_cells} cells)",
        "/queue — your place in the queue · /cancel [id] — stop a job",
        "/model — list models · /loras — list LoRAs",
        "/settings — your defaults (aspect, steps, sampler, negative, results to DMs)",
        "/whoami — your user id, for an admin's config",
        "",
        "Options, after the prompt:",
        f"--ar 3:2 or --size 768x512 (each side 64–{limits.max_side})",
        f"--steps N (1–{limits.max_steps})",
        f"--cfg N ({CFG_RANGE[0]:g}–{CFG_RANGE[1]:g})",
        f"--seed N (0–{SEED_MAX})",
        f"--n N pictures ({COUNT_RANGE[0]}–{COUNT_RANGE[1]})",
        '--sampler "Euler a" (which ones depends on the model)',
        "--no things to avoid (up to the next option)",
        f"--model NAME ({models})",
        f"--strength N for /vary, /inpaint ({STRENGTH_RANGE[0]:g}–{STRENGTH_RANGE[1]:g})",
        "",
        "{red|blue} picks one variant at random (the same again with the same --seed).",
        "(word:1.3) weighs a word more, [word] less; <lora:NAME:0.8> adds a LoRA.",
        f"Prompts: up to {limits.max_prompt_chars:,} characters. "
        f"Limits: {limits.jobs_per_minute} jobs a minute, "
        f"{limits.max_queued_per_user} waiting at once.",
        "Under each picture: 🔁 Re-roll, 🎨 Vary, ⬆️ Upscale, 📄 PNG, 🗑 Delete,",
        "🖌 Region (repaint chosen cells), 🔀 Remix (a new prompt), 🔍 Zoom out, and",
        "⬅️ ➡️ 🔼 🔽 to extend it. Remix on in /settings: Re-roll and Vary ask first.",
    ]
    if ctx.caller.is_admin:
        lines.append("Admins: /model NAME switches the model, /ban and /unban a user.")
    return "\n".join(lines)


async def run(ctx: Context) -> Outcome:
    return Reply(help_text(ctx))
