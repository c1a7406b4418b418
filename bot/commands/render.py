"""Text and buttons the adapters show for jobs: status lines, captions, result buttons."""

from __future__ import annotations

from bot.commands import button_data
from bot.commands.base import Button
from bot.jobs.events import (
    Cancelled,
    Downloading,
    Failed,
    Finished,
    JobEvent,
    Progress,
    Queued,
    Started,
)
from bot.jobs.limits import format_wait
from bot.records import Job

# Telegram's caption limit is 1,024 (counted in UTF-16 units); stay under it.
CAPTION_LIMIT = 1023


def status_text(event: JobEvent) -> str:
    match event:
        case Queued(position=position, eta_seconds=eta):
            if position <= 0:
                return "🎨 Starting…"
            where = "next up" if position == 1 else f"position {position}"
            about = f", about {format_wait(eta)}" if eta is not None else ""
            return f"⏳ Queued: {where}{about}"
        case Started():
            return "🎨 Painting…"
        case Progress(step=step, total=total, eta_seconds=eta):
            left = f" (about {format_wait(eta)} left)" if eta is not None else ""
            return f"🎨 Painting… {step}/{total}{left}"
        case Downloading(percent=percent, eta_seconds=eta):
            left = f", about {format_wait(eta)} left" if eta is not None else ""
            return f"⏳ The model is still downloading ({percent} %){left}"
        case Finished(images=images):
            return "✅ Done" if len(images) <= 1 else f"✅ Done: {len(images)} pictures"
        case Failed(message=message):
            return f"⚠️ {message}"
        case Cancelled(by_admin=by_admin):
            return "🛑 Cancelled by an admin" if by_admin else "🛑 Cancelled"
    raise TypeError(f"not a job event: {event!r}")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _shorten(text: str, budget: int) -> str:
    """`text` cut to `budget` UTF-16 units, ending in an ellipsis when cut."""
    if _utf16_len(text) <= budget:
        return text
    cut = text[: max(0, budget - 1)]
    while cut and _utf16_len(cut) > budget - 1:
        cut = cut[:-1]
    return cut.rstrip() + "…"


def result_caption(job: Job) -> str:
    """The prompt (shortened if need be) and the settings that made the pictures."""
    request = job.request
    seeds = [image.seed for image in job.images] or [request.seed]
    seed_text = f"Seed: {seeds[0]}" if len(seeds) == 1 else f"Seeds: {', '.join(map(str, seeds))}"
    details = [
        seed_text,
        f"Steps: {request.steps}",
        f"Sampler: {request.sampler}",
        f"CFG: {request.cfg:g}",
        f"Size: {request.width}x{request.height}",
        f"Model: {request.model}",
    ]
    if request.strength is not None:
        details.append(f"Strength: {request.strength:g}")
    tail = " · ".join(details)
    # The settings always fit; the prompt and negative share what is left.
    budget = CAPTION_LIMIT - _utf16_len(tail) - 2
    negative = request.negative
    negative_budget = min(_utf16_len(negative) + 8, budget // 3) if negative else 0
    prompt = _shorten(request.prompt, budget - negative_budget) or "(no prompt)"
    lines = [prompt]
    if negative:
        lines.append(_shorten(f"🚫 {negative}", max(0, negative_budget - 1)))
    lines.append(tail)
    return "\n".join(line for line in lines if line)


def result_buttons(job: Job) -> list[list[Button]]:
    count = max(1, len(job.images) or job.request.count)
    job_id = job.id
    if count == 1:
        return [
            [
                Button("🔁 Re-roll", button_data.encode("reroll", job_id)),
                Button("🎨 Vary", button_data.encode("vary", job_id, 0)),
                Button("⬆️ Upscale", button_data.encode("upscale", job_id, 0)),
                Button("🖌 Region", button_data.encode("region", job_id, 0)),
                Button("🔀 Remix", button_data.encode("remix", job_id)),
            ],
            edit_buttons(job_id, 0),
            [
                Button("📄 PNG", button_data.encode("png", job_id, 0)),
                Button("🗑 Delete", button_data.encode("delete", job_id)),
            ],
        ]
    return [
        [
            Button("🔁 Re-roll", button_data.encode("reroll", job_id)),
            Button("🔀 Remix", button_data.encode("remix", job_id)),
        ],
        [Button(f"V{i + 1}", button_data.encode("vary", job_id, i)) for i in range(count)],
        [Button(f"U{i + 1}", button_data.encode("upscale", job_id, i)) for i in range(count)],
        # Telegram recompresses photos; the original PNGs (with metadata) are here.
        [Button(f"📄 {i + 1}", button_data.encode("png", job_id, i)) for i in range(count)],
        [Button("🗑 Delete", button_data.encode("delete", job_id))],
    ]


# The editing loop's outpainting buttons (`bot/commands/edit.py`); `⬆️` stays Upscale's.
OUTPAINT_LABELS = {
    "zoom": "🔍 Zoom out",
    "left": "⬅️ Left",
    "right": "➡️ Right",
    "up": "🔼 Up",
    "down": "🔽 Down",
}


def edit_buttons(job_id: str, index: int) -> list[Button]:
    """Zoom out and pan for one picture: one row of five (Discord's widest)."""
    return [
        Button(label, button_data.encode(action, job_id, index))
        for action, label in OUTPAINT_LABELS.items()
    ]
