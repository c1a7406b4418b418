"""/plot on Telegram: one labelled grid of cells, each cell pulled out by its button."""

from __future__ import annotations

import asyncio

from PIL import Image, ImageChops

from bot.plot_grid import BACKGROUND
from bot.records import JobStatus

from .fake_bot_api import ApiCall
from .harness import RunningBot, button_labels, image_of, png_bytes, png_parameters

CELL = 64  # the tiny model's pictures
# Seconds to wait for a plot's grid: several cells on a shared, busy CI machine.
SLOW = 120.0


async def photo_of(bot: RunningBot, chat_id: int, since: int) -> ApiCall:
    return await bot.fake.next_call("sendPhoto", since=since, chat_id=chat_id, timeout=SLOW)


def _has_ink(image: Image.Image) -> bool:
    blank = Image.new("RGB", image.size, BACKGROUND)
    return ImageChops.difference(image.convert("RGB"), blank).getbbox() is not None


def _cell(grid: Image.Image, columns: int, rows: int, column: int, row: int) -> Image.Image:
    left, top = grid.width - columns * CELL, grid.height - rows * CELL
    x0, y0 = left + column * CELL, top + row * CELL
    return grid.crop((x0, y0, x0 + CELL, y0 + CELL))


def _differ(a: Image.Image, b: Image.Image) -> bool:
    return ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is not None


async def grid_png(bot: RunningBot, user: dict, photo: dict) -> tuple[Image.Image, str]:
    mark = await bot.click_button(user, photo, "📄 PNG")
    document = await bot.fake.next_call("sendDocument", since=mark, chat_id=photo["chat"]["id"])
    data = document.files["document"].data
    return image_of(data), png_parameters(data)


async def test_plot_sends_one_labelled_grid_and_each_cell(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user("Plotter")
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(user, chat, "/plot a red fox --seed 3 --steps 1 --x steps=1,3 --y cfg=1,9")
    photo = (await photo_of(running_bot, chat["id"], mark)).result
    # One picture for the whole plot: the cells are not sent one by one.
    await asyncio.sleep(0.5)
    assert len(fake.calls_of("sendPhoto", since=mark, chat_id=chat["id"])) == 1
    statuses = [c.params.get("text", "") for c in fake.calls_of("sendMessage", since=mark)]
    statuses += [c.params.get("text", "") for c in fake.calls_of("editMessageText", since=mark)]
    assert any("/4 cells" in text for text in statuses), statuses
    assert "a red fox" in photo["caption"] and "X: Steps 1, 3" in photo["caption"]
    labels = button_labels(photo)
    assert [label for label in labels if label.startswith("U")] == ["U1", "U2", "U3", "U4"]
    assert "📄 PNG" in labels

    grid, parameters = await grid_png(running_bot, user, photo)
    # Two columns and two rows of 64 px cells, plus margins holding the labels.
    left, top = grid.width - 2 * CELL, grid.height - 2 * CELL
    assert left > 0 and top > 0
    assert _has_ink(grid.crop((left, 0, grid.width, top)))
    assert _has_ink(grid.crop((0, top, left, grid.height)))
    cells = {(c, r): _cell(grid, 2, 2, c, r) for c in range(2) for r in range(2)}
    assert _differ(cells[0, 0], cells[1, 0])  # along X (steps)
    assert _differ(cells[0, 0], cells[0, 1])  # along Y (cfg)
    # The first cell's A1111 parameters, then the axes as A1111's X/Y/Z plot writes them.
    assert parameters.startswith("a red fox\n")
    assert "Steps: 1," in parameters and "CFG scale: 1," in parameters and "Seed: 3" in parameters
    assert 'X Type: Steps, X Values: "1,3"' in parameters
    assert 'Y Type: CFG Scale, Y Values: "1,9"' in parameters

    # U4: the last cell's own PNG (steps 3, cfg 9), the same picture as in the grid.
    mark = await running_bot.click_button(user, photo, "U4")
    document = await fake.next_call("sendDocument", since=mark, chat_id=chat["id"])
    cell_parameters = png_parameters(document.files["document"].data)
    assert "Steps: 3," in cell_parameters and "CFG scale: 9," in cell_parameters
    assert not _differ(image_of(document.files["document"].data), cells[1, 1])

    jobs = await running_bot.jobs_of(user)
    assert sorted(job.status for job in jobs) == [JobStatus.DONE] * 5  # the grid and 4 cells


async def test_prompt_search_and_replace_changes_the_word_in_each_cell(
    running_bot: RunningBot,
) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(
        user, chat, '/plot a red fox on a hill --steps 1 --seed 4 --x "prompt=fox,owl"'
    )
    photo = (await photo_of(running_bot, chat["id"], mark)).result
    grid, parameters = await grid_png(running_bot, user, photo)
    assert grid.width == 2 * CELL and grid.height > CELL  # one axis: labels on top only
    assert 'X Type: Prompt S/R, X Values: "fox,owl"' in parameters
    mark = await running_bot.click_button(user, photo, "U2")
    document = await fake.next_call("sendDocument", since=mark, chat_id=chat["id"])
    assert png_parameters(document.files["document"].data).startswith("a red owl on a hill\n")
    prompts = sorted(job.request.prompt for job in await running_bot.jobs_of(user))
    assert prompts == ["a red fox on a hill", "a red fox on a hill", "a red owl on a hill"]


async def test_bad_plots_are_refused_with_the_reason_and_queue_nothing(
    running_bot: RunningBot,
) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    for command, reason in [
        ("/plot a fox --x colour=red,blue", "Unknown axis kind 'colour'"),
        ("/plot a fox --x seed=1-5 --y steps=1-4", "That plot has 20 cells; the limit is 16"),
        ("/plot a fox --x steps=1,x", "'x' is not a whole number"),
        ("/plot a fox --x prompt=cat,dog", "'cat' (the first value) is not in the prompt"),
        ("/plot a fox --x strength=0.3,0.6", "needs a picture"),
        ("/plot a fox", "at least an X axis"),
    ]:
        mark = fake.mark()
        await fake.send_text(user, chat, command)
        reply = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
        assert reason in reply.result["text"], (command, reply.result["text"])
    assert await running_bot.jobs_of(user) == []


async def test_a_strength_axis_paints_from_the_replied_to_picture(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    original = await fake.send_photo(user, chat, png_bytes(64, 64, "orange"))
    mark = fake.mark()
    await fake.send_text(
        user, chat, "/plot a fox --steps 2 --x strength=0.3,0.9", reply_to=original
    )
    photo = (await photo_of(running_bot, chat["id"], mark)).result
    assert "Denoising" in photo["caption"]
    cells = [job for job in await running_bot.jobs_of(user) if job.request.kind == "vary"]
    assert sorted(job.request.strength for job in cells) == [0.3, 0.9]
    assert all(job.request.init_image for job in cells)


async def test_a_z_axis_sends_one_grid_per_value_as_an_album(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(user, chat, "/plot a fox --steps 1 --x seed=1,2 --y steps=1,2 --z cfg=1,8")
    album = await fake.next_call("sendMediaGroup", since=mark, chat_id=chat["id"], timeout=SLOW)
    grids = [image_of(upload.data) for upload in album.files.values()]
    assert len(grids) == 2
    assert grids[0].size == grids[1].size
    assert grids[0].width > 2 * CELL and grids[0].height > 2 * CELL
    assert grids[0].tobytes() != grids[1].tobytes()
    keyboard = await fake.next_call(
        "sendMessage", since=mark, chat_id=chat["id"], where=lambda c: "reply_markup" in c.result
    )
    labels = button_labels(keyboard.result)
    assert {"U1", "U8", "📄 1", "📄 2"} <= set(labels)
    assert "Z: CFG Scale 1, 8" in keyboard.result["text"]


async def test_model_sampler_and_size_axes(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    mark = fake.mark()
    await fake.send_text(
        user, chat, '/plot a fox --steps 1 --x size=64x64,128x64 --y "sampler=euler a,ddim"'
    )
    photo = (await photo_of(running_bot, chat["id"], mark)).result
    assert "Y: Sampler Euler a, DDIM" in photo["caption"]  # as the model names them
    grid, _ = await grid_png(running_bot, user, photo)
    assert grid.width > 2 * 128 and grid.height > 2 * 64  # slots as large as the largest
    cells = [job for job in await running_bot.jobs_of(user) if job.request.kind == "imagine"]
    shapes = sorted((job.request.width, job.request.sampler) for job in cells)
    assert shapes == [(64, "DDIM"), (64, "Euler a"), (128, "DDIM"), (128, "Euler a")]

    mark = fake.mark()
    await fake.send_text(user, chat, "/plot a fox --steps 1 --x model=tiny,TINY2")
    photo = (await photo_of(running_bot, chat["id"], mark)).result
    assert "X: Checkpoint name tiny, tiny2" in photo["caption"]
    jobs = await running_bot.jobs_of(user)
    models = sorted(
        j.request.model for j in jobs if j.request.model_given and j.request.kind != "plot"
    )
    assert models == ["tiny", "tiny2"]


async def test_cancel_stops_the_whole_plot(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    scheduler = running_bot.services.scheduler
    user = running_bot.new_user()
    chat = fake.private_chat(user)
    await scheduler.stop()  # the cells wait
    try:
        mark = fake.mark()
        await fake.send_text(user, chat, "/plot a fox --steps 1 --x seed=1,2,3")
        status = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
        assert "3 cells" in status.result["text"]
        mark = fake.mark()
        await fake.send_text(user, chat, "/cancel")
        reply = await fake.next_call("sendMessage", since=mark, chat_id=chat["id"])
        assert "Cancelled the plot" in reply.result["text"]
    finally:
        await scheduler.start()
    final = await fake.next_call(
        "editMessageText",
        since=mark,
        chat_id=chat["id"],
        where=lambda c: (
            c.params["message_id"] == status.result["message_id"]
            and "Cancelled" in c.params["text"]
        ),
        timeout=SLOW,
    )
    assert final.params["text"].startswith("🛑")
    statuses = {job.status for job in await running_bot.jobs_of(user)}
    assert statuses == {JobStatus.CANCELLED}
    assert fake.calls_of("sendPhoto", since=mark, chat_id=chat["id"]) == []
