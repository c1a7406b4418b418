"""The `/avatar` wizard: one inline keyboard per preset step, buttons only.

The whole state lives in the callback data: who started the wizard and the index of
each choice made so far (`aw|show|<user id>|0.2.1`). A click therefore needs no memory
in the bot, works after a restart, and stays far below Telegram's 64 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.commands.base import Button

if TYPE_CHECKING:
    from bot.avatar import AvatarStep

PREFIX = "aw"
# The wizard's actions, named like the states in python-telegram-bot's examples.
SHOW = "show"  # show the step after the choices in the path (or the result, when complete)
CANCEL = "cancel"

PATTERN = rf"^{PREFIX}\|"
BUTTONS_PER_ROW = 3


@dataclass(frozen=True)
class WizardClick:
    action: str
    owner_id: int
    path: tuple[int, ...]  # index of the chosen option, one per step done


def encode(action: str, owner_id: int, path: tuple[int, ...] = ()) -> str:
    return f"{PREFIX}|{action}|{owner_id}|{'.'.join(map(str, path))}"


def decode(data: str) -> WizardClick | None:
    """None for data this wizard did not write (or that was tampered with)."""
    parts = data.split("|")
    if len(parts) != 4 or parts[0] != PREFIX or parts[1] not in (SHOW, CANCEL):
        return None
    try:
        owner_id = int(parts[2])
        path = tuple(int(p) for p in parts[3].split(".")) if parts[3] else ()
    except ValueError:
        return None
    return WizardClick(parts[1], owner_id, path)


def valid_path(steps: list[AvatarStep], path: tuple[int, ...]) -> bool:
    """Old buttons may point past the options if the presets changed since."""
    return len(path) <= len(steps) and all(
        0 <= index < len(step.options) for step, index in zip(steps, path, strict=False)
    )


def choices_of(steps: list[AvatarStep], path: tuple[int, ...]) -> dict[str, str]:
    return {step.key: step.options[index].value for step, index in zip(steps, path, strict=False)}


def step_text(steps: list[AvatarStep], path: tuple[int, ...]) -> str:
    step = steps[len(path)]
    lines = [f"🧑‍🎨 Avatar, step {len(path) + 1} of {len(steps)}: {step.title}"]
    lines += _summary(steps, path)
    return "\n".join(lines)


def summary_text(steps: list[AvatarStep], path: tuple[int, ...]) -> str:
    return "\n".join(["🧑‍🎨 Avatar", *_summary(steps, path)])


def step_buttons(
    steps: list[AvatarStep], path: tuple[int, ...], owner_id: int
) -> list[list[Button]]:
    step = steps[len(path)]
    options = [
        Button(option.label, encode(SHOW, owner_id, (*path, index)))
        for index, option in enumerate(step.options)
    ]
    rows = [options[i : i + BUTTONS_PER_ROW] for i in range(0, len(options), BUTTONS_PER_ROW)]
    # Back from the first step leaves the wizard, like Cancel.
    back = encode(SHOW, owner_id, path[:-1]) if path else encode(CANCEL, owner_id)
    rows.append([Button("⬅️ Back", back), Button("✖️ Cancel", encode(CANCEL, owner_id))])
    return rows


def _summary(steps: list[AvatarStep], path: tuple[int, ...]) -> list[str]:
    return [
        f"{step.title}: {step.options[index].label}"
        for step, index in zip(steps, path, strict=False)
    ]
