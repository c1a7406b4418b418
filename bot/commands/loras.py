"""/loras: the LoRAs an admin installed, and how to use them in a prompt."""

from __future__ import annotations

from bot.commands.base import Context, Outcome, Reply
from bot.config import Config
from engine.families import FAMILIES
from engine.loras import list_loras, lora_family

NONE_INSTALLED = "No LoRAs are installed. Admins put .safetensors files in the [loras] folder."


def installed(config: Config) -> dict[str, str]:
    """LoRA name -> the family label it was made for ("" when it cannot be told)."""
    found = list_loras(config.loras_dir)
    return {
        name: FAMILIES[family].label if (family := lora_family(path)) else ""
        for name, path in found.items()
    }


async def run(ctx: Context) -> Outcome:
    loras = installed(ctx.services.config)
    if not loras:
        return Reply(NONE_INSTALLED)
    lines = ["LoRAs:"]
    for name, label in loras.items():
        lines.append(f"▫️ {name}" + (f" — {label}" if label else ""))
    lines.append("Use one in a prompt: <lora:NAME:0.8> (the weight is optional, 1 by default).")
    return Reply("\n".join(lines))
