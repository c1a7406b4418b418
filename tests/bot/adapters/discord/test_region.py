"""The editing loop on Discord: the 🖌 Region grid edited in place (and after a
restart), Repaint, zoom out and pan, through discord.py and the fake Discord."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bot.commands import canvas, inpaint, region

from .fake_discord import FakeDiscord, FakeMessage
from .fake_routes import modal_inputs
from .harness import RunningBot, png_parameters


def button(message: FakeMessage, label: str) -> str:
    return message.custom_ids[message.labels.index(label)]


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


async def picture(bot: RunningBot, prompt: str, **options: object) -> FakeMessage:
    interaction = await bot.fake.slash(
        "imagine", bot.users.alice, prompt=prompt, steps=2, model="tiny2", **options
    )
    return await bot.result(interaction)


async def test_region_grid_survives_a_restart_and_repaints_only_the_chosen_cells(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    alice = bot.users.alice
    result = await picture(bot, "a red barn", seed=9)
    before = pixels(result.files[0].data)

    opened = await fake.click(result, button(result, "🖌 Region"), alice)
    grid = await fake.wait_reply(opened)
    assert grid.content.startswith(region.INTRO) and not grid.ephemeral
    assert grid.labels[:3] == ["⬜ 1", "⬜ 2", "⬜ 3"]
    assert grid.labels[-3:] == ["Repaint", "⬅️ Back", "✖️ Cancel"]

    nothing = await fake.click(grid, button(grid, "Repaint"), alice)
    refusal = await bot.private_reply(nothing)
    assert refusal.content == region.NOTHING_CHOSEN

    pressed = await fake.click(grid, button(grid, "⬜ 2"), alice)
    await fake.wait_for(lambda: pressed.callbacks, what="the toggle's answer")
    assert pressed.first_callback is not None and pressed.first_callback["type"] == 7
    assert "✅ 2" in grid.labels  # the grid message itself was edited

    await bot.restart()
    pressed = await fake.click(grid, button(grid, "⬜ 3"), alice)
    await fake.wait_for(lambda: "✅ 3" in grid.labels, what="a toggle after the restart")
    assert "✅ 2" in grid.labels

    repaint = await fake.click(grid, button(grid, "Repaint"), alice)
    repainted = await bot.result(repaint)
    after = pixels(repainted.files[0].data)
    assert after.shape == before.shape
    mask = np.asarray(canvas.cell_mask(0b110, before.shape[1], before.shape[0]))
    assert np.abs(after - before)[mask == 0].max() <= 2
    assert np.abs(after - before)[mask == 255].mean() > 3
    assert png_parameters(repainted.files[0].data).startswith("a red barn")
    assert "🖌 Region" in repainted.labels  # a repaint is a result like any other

    closed = await fake.click(grid, button(grid, "✖️ Cancel"), alice)
    await fake.wait_for(lambda: closed.callbacks, what="the cancel's answer")
    assert grid.content == region.CLOSED and grid.components == []


async def test_zoom_out_and_pan_buttons(bot: RunningBot, fake: FakeDiscord) -> None:
    alice = bot.users.alice
    result = await picture(bot, "a harbour", size="128x64")
    before = pixels(result.files[0].data)

    zoomed = await bot.result(await fake.click(result, button(result, "🔍 Zoom out"), alice))
    assert pixels(zoomed.files[0].data).shape == (64, 128, 3)

    panned = await bot.result(await fake.click(result, button(result, "➡️ Right"), alice))
    after = pixels(panned.files[0].data)
    assert after.shape == (64, 192, 3)
    feather = canvas.feather_width(128, 64)
    assert np.abs(after[:, : 128 - feather] - before[:, : 128 - feather]).max() <= 2

    up = await bot.result(await fake.click(result, button(result, "🔼 Up"), alice))
    assert pixels(up.files[0].data).shape == (96, 128, 3)


def png_of(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def test_inpaint_takes_an_image_and_a_mask(bot: RunningBot, fake: FakeDiscord) -> None:
    alice = bot.users.alice
    picture = png_of(Image.new("RGB", (64, 64), "orange"))
    black = png_of(Image.new("L", (64, 64), 0))
    refused = await fake.slash(
        "inpaint",
        alice,
        image=fake.upload(picture, "fox.png", "image/png"),
        mask=fake.upload(black, "mask.png", "image/png"),
        prompt="a cat",
    )
    assert (await bot.private_reply(refused)).content == inpaint.NOTHING_TO_REPAINT

    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (0, 0, 16, 32))  # the left half, at half the picture's size
    asked = await fake.slash(
        "inpaint",
        alice,
        image=fake.upload(picture, "fox.png", "image/png"),
        mask=fake.upload(png_of(mask), "mask.png", "image/png"),
        prompt="a cat --steps 2",
    )
    result = await bot.result(asked)
    after = pixels(result.files[0].data)
    assert after.shape == (64, 64, 3)
    assert np.abs(after[:, 34:] - np.array([255, 165, 0])).max() <= 2
    assert png_parameters(result.files[0].data).startswith("a cat")


async def test_remix_asks_for_the_prompt_in_a_prefilled_modal(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    bob = bot.users.bob
    asked = await fake.slash("imagine", bob, prompt="a red barn", steps=2, model="tiny2")
    result = await bot.result(asked)

    # Remix off: Re-roll runs at once; 🔀 Remix asks anyway.
    rerolled = await fake.click(result, button(result, "🔁 Re-roll"), bob)
    await bot.result(rerolled)
    assert rerolled.modal is None
    remixed = await fake.click(result, button(result, "🔀 Remix"), bob)
    await fake.wait_for(lambda: remixed.callbacks, what="the modal")
    assert remixed.first_callback is not None and remixed.first_callback["type"] == 9
    assert remixed.modal is not None and len(remixed.modal["title"]) <= 45
    assert [i["value"] for i in modal_inputs(remixed.modal)] == ["a red barn"]
    submitted = await fake.submit_modal(remixed, {"Prompt": "a blue barn"}, bob)
    painted = await bot.result(submitted)
    assert png_parameters(painted.files[0].data).startswith("a blue barn")

    # Remix on in /settings: Vary and Repaint ask first.
    panel = await fake.wait_reply(await fake.slash("settings", bob))
    pressed = await fake.click(panel, button(panel, "🔀 Remix: off"), bob)
    await fake.wait_for(lambda: "🔀 Remix: on" in panel.labels, what="remix on")
    assert pressed.first_callback is not None

    varied = await fake.click(result, button(result, "🎨 Vary"), bob)
    await fake.wait_for(lambda: varied.modal is not None, what="the modal")
    await bot.restart()  # the modal is still open on the user's screen
    painted = await bot.result(await fake.submit_modal(varied, {"Prompt": "a green barn"}, bob))
    parameters = png_parameters(painted.files[0].data)
    assert parameters.startswith("a green barn") and "Denoising strength: 0.6" in parameters

    grid = await fake.wait_reply(await fake.click(result, button(result, "🖌 Region"), bob))
    toggled = await fake.click(grid, button(grid, "⬜ 1"), bob)
    await fake.wait_for(lambda: toggled.callbacks, what="the toggle")
    repaint = await fake.click(grid, button(grid, "Repaint"), bob)
    await fake.wait_for(lambda: repaint.modal is not None, what="the modal")
    painted = await bot.result(await fake.submit_modal(repaint, {"Prompt": "a barn on fire"}, bob))
    assert png_parameters(painted.files[0].data).startswith("a barn on fire")
