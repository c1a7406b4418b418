"""/plot on Discord: the slash options x, y, z; one labelled grid; cells by button."""

from __future__ import annotations

import io

from PIL import Image, ImageChops

from bot.plot_grid import BACKGROUND

from .fake_discord import FakeDiscord
from .harness import RunningBot, png_parameters

CELL = 64


def _has_ink(image: Image.Image) -> bool:
    blank = Image.new("RGB", image.size, BACKGROUND)
    return ImageChops.difference(image.convert("RGB"), blank).getbbox() is not None


async def test_plot_with_slash_options_delivers_one_grid(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    interaction = await fake.slash(
        "plot",
        bot.users.alice,
        prompt="a red fox --seed 8 --steps 1",
        x="steps=1,2,3",
        y="prompt=fox,owl",
    )
    message = await fake.wait_files(interaction, 1, timeout=120.0)  # several cells, busy CI
    (file,) = message.files
    grid = Image.open(io.BytesIO(file.data))
    left, top = grid.width - 3 * CELL, grid.height - 2 * CELL
    assert left > 0 and top > 0
    assert _has_ink(grid.crop((left, 0, grid.width, top)))
    assert _has_ink(grid.crop((0, top, left, grid.height)))
    cell = [
        grid.crop((left + c * CELL, top + r * CELL, left + (c + 1) * CELL, top + (r + 1) * CELL))
        for r in range(2)
        for c in range(3)
    ]
    assert ImageChops.difference(cell[0], cell[1]).getbbox() is not None  # along X
    assert ImageChops.difference(cell[0], cell[3]).getbbox() is not None  # along Y
    parameters = png_parameters(file.data)
    assert parameters.startswith("a red fox\n")
    assert 'X Type: Steps, X Values: "1,2,3"' in parameters
    assert 'Y Type: Prompt S/R, Y Values: "fox,owl"' in parameters
    assert [label for label in message.labels if label.startswith("U")] == [
        f"U{n}" for n in range(1, 7)
    ]

    # U5: the second row's middle cell, its own PNG with the replaced word.
    click = await fake.click(
        message, message.custom_ids[message.labels.index("U5")], bot.users.alice
    )
    reply = await fake.wait_files(click, 1)
    cell_parameters = png_parameters(reply.files[0].data)
    assert cell_parameters.startswith("a red owl\n") and "Steps: 2," in cell_parameters


async def test_plot_over_the_limit_or_with_an_unknown_kind_is_refused(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    before = await bot.job_count()
    interaction = await fake.slash(
        "plot", bot.users.bob, prompt="a fox", x="seed=1-6", y="cfg=1,2,3"
    )
    reply = await bot.private_reply(interaction)
    assert "That plot has 18 cells; the limit is 16" in reply.content
    interaction = await fake.slash("plot", bot.users.bob, prompt="a fox", x="colour=red")
    reply = await bot.private_reply(interaction)
    assert "Unknown axis kind 'colour'" in reply.content
    assert await bot.job_count() == before
