"""/vary end to end: a picture in, img2img out; bad attachments are refused early."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.commands import vary
from bot.commands.base import ImageInput, JobAccepted, Reply

from .harness import Harness, Upload, png_bytes


def inputs_in(harness: Harness) -> set[str]:
    folder = harness.services.config.data_dir / "inputs"
    return {p.name for p in folder.glob("*.png")} if folder.exists() else set()


async def test_vary_paints_from_the_picture(harness: Harness) -> None:
    ctx = harness.user()
    upload = Upload(png_bytes(96, 64))
    outcome = await vary.run(ctx, upload.as_input(), "a red fox --steps 4")
    assert isinstance(outcome, JobAccepted), outcome
    request = outcome.job.request
    assert request.kind == "vary" and request.strength == 0.6
    assert request.init_image is not None and request.init_image.startswith("inputs/")
    saved = harness.services.config.data_dir / request.init_image
    with Image.open(saved) as picture:
        assert (picture.format, picture.mode, picture.size) == ("PNG", "RGB", (96, 64))
    job = await harness.finished(outcome.job.id)
    assert job.status.painted, job.error
    with Image.open(harness.services.config.data_dir / job.images[0].path) as result:
        assert result.size == (request.width, request.height)
        assert result.text["parameters"].startswith("a red fox\n")


async def test_size_follows_the_pictures_shape(harness: Harness) -> None:
    # 2:1 at tiny2's 128x128 base area, rounded to 64.
    upload = Upload(png_bytes(200, 100))
    outcome = await vary.run(harness.user(), upload.as_input(), "--model tiny2")
    assert isinstance(outcome, JobAccepted), outcome
    assert (outcome.job.request.width, outcome.job.request.height) == (192, 64)
    assert outcome.job.request.prompt == ""
    await harness.drop(outcome)


async def test_typed_strength_wins_and_jpeg_is_accepted(harness: Harness) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 120, 200)).save(buffer, format="JPEG")
    upload = Upload(buffer.getvalue(), content_type="image/jpeg", filename="p.jpg")
    outcome = await vary.run(harness.user(), upload.as_input(), "sea --strength 0.3", 0.8)
    assert isinstance(outcome, JobAccepted), outcome
    assert outcome.job.request.strength == 0.8
    await harness.drop(outcome)


@pytest.mark.parametrize(
    ("upload", "message", "downloaded"),
    [
        (
            Upload(b"hello, I am a text file", content_type="text/plain", filename="a.txt"),
            vary.NOT_A_PICTURE,
            False,
        ),
        (
            Upload(b"%PDF-1.4", content_type="application/pdf", filename="a.pdf"),
            vary.NOT_A_PICTURE,
            False,
        ),
        # Declared as a picture, but the bytes are text.
        (Upload(b"definitely not a png"), vary.NOT_A_PICTURE, True),
        # A real PNG cut short: the header reads, the pixels do not.
        (Upload(png_bytes(64, 64)[:60]), "That picture is damaged and cannot be read.", True),
        (Upload(b""), "The file is empty.", True),
        # The platform says it is too big: refused before the download.
        (
            Upload(png_bytes(8, 8), size=300_000),
            "That picture is 0.3 MB; the limit is 0.2 MB.",
            False,
        ),
        # The platform did not say, and the bytes turn out too big.
        (
            Upload(b"\x89PNG" + b"0" * 250_000, size_known=False),
            "That picture is 0.3 MB; the limit is 0.2 MB.",
            True,
        ),
    ],
)
async def test_bad_attachments_are_refused(
    harness: Harness, upload: Upload, message: str, downloaded: bool
) -> None:
    ctx = harness.user()
    before = inputs_in(harness)
    outcome = await vary.run(ctx, upload.as_input(), "a fox")
    assert outcome == Reply(message, error=True)
    assert (upload.downloads > 0) == downloaded
    assert await harness.jobs_of(ctx) == []
    assert inputs_in(harness) == before


async def test_no_picture(harness: Harness) -> None:
    ctx = harness.user()
    outcome = await vary.run(ctx, None, "a fox")
    assert outcome == Reply("Attach a picture (or reply to one) with /vary.", error=True)
    assert await harness.jobs_of(ctx) == []


async def test_bad_options_are_refused_before_the_download(harness: Harness) -> None:
    ctx = harness.user()
    upload = Upload(png_bytes(64, 64))
    outcome = await vary.run(ctx, upload.as_input(), "a fox --strength 2")
    assert outcome == Reply("Strength must be between 0.05 and 1 (got 2).", error=True)
    assert upload.downloads == 0
    assert await harness.jobs_of(ctx) == []


async def test_filtered_prompt_leaves_no_input_behind(harness: Harness) -> None:
    ctx = harness.user()
    before = inputs_in(harness)
    upload = Upload(png_bytes(64, 64))
    outcome = await vary.run(ctx, upload.as_input(), "make it n u d e")
    assert outcome == Reply("That prompt isn't allowed here.", error=True)
    assert inputs_in(harness) == before


async def test_a_failed_download_is_answered_and_queues_nothing(harness: Harness) -> None:
    ctx = harness.user()
    before = inputs_in(harness)

    async def download() -> bytes:
        raise OSError("connection reset by peer")

    picture = ImageInput("picture.png", 1000, "image/png", download)
    outcome = await vary.run(ctx, picture, "a fox")
    assert outcome == Reply("I couldn't download that picture; please send it again.", error=True)
    assert await harness.jobs_of(ctx) == []
    assert inputs_in(harness) == before
