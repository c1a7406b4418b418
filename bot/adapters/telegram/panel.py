"""A reply's menus as Telegram keyboards: one button per menu that opens its choices
in place of the keyboard (edited in place, see the adapter), the choices with Back.
"""

from __future__ import annotations

from telegram import InlineKeyboardMarkup

from bot.adapters.telegram.media import keyboard
from bot.commands.base import Button, Menu, Reply

CHOICES_PER_ROW = 3
BACK = "⬅️ Back"


def markup(reply: Reply) -> InlineKeyboardMarkup | None:
    """The reply's keyboard: its buttons, under a button per menu (or one menu's choices)."""
    expanded = next((menu for menu in reply.menus if menu.expanded), None)
    if expanded is not None:
        return keyboard(_choices(expanded))
    rows = [[Button(f"{menu.title}: {_chosen(menu)}", menu.open)] for menu in reply.menus]
    return keyboard([*rows, *reply.buttons])


def _choices(menu: Menu) -> list[list[Button]]:
    marked = [
        Button(f"✅ {option.label}" if index == menu.chosen else option.label, option.data)
        for index, option in enumerate(menu.options)
    ]
    rows = [marked[i : i + CHOICES_PER_ROW] for i in range(0, len(marked), CHOICES_PER_ROW)]
    return [*rows, [Button(BACK, menu.back)]]


def _chosen(menu: Menu) -> str:
    if menu.chosen is None or not 0 <= menu.chosen < len(menu.options):
        return "—"
    return menu.options[menu.chosen].label
