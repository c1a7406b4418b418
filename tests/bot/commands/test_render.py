"""Status lines, captions and result buttons; button data encoding."""

from __future__ import annotations

import pytest

from bot.commands import buttons, render
from bot.commands.button_data import MAX_BYTES, ButtonData, decode
from bot.jobs.events import Cancelled, Failed, Finished, Progress, Queued, Started
from bot.records import GenerationRequest, Job, JobStatus, ResultImage
from bot.store import new_job_id


def make_job(count: int = 1, prompt: str = "a red fox at dusk", negative: str = "") -> Job:
    request = GenerationRequest(
        kind="imagine",
        prompt=prompt,
        negative=negative,
        model="sd15",
        seed=1234,
        steps=20,
        cfg=7.0,
        width=768,
        height=512,
        sampler="DPM++ 2M Karras",
        count=count,
    )
    job = Job(id=new_job_id(), platform="telegram", user_id="1", user_name="ann", request=request)
    job.status = JobStatus.DONE
    job.images = [
        ResultImage(f"images/{job.id}-{n + 1}.png", 1234 + n, "params") for n in range(count)
    ]
    return job


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (Queued(2, 40.0), "⏳ Queued: position 2, about 40 s"),
        (Queued(1, None), "⏳ Queued: next up"),
        (Queued(0, None), "🎨 Starting…"),
        (Started(), "🎨 Painting…"),
        (Progress(12, 20, None), "🎨 Painting… 12/20"),
        (Progress(3, 20, 95.0), "🎨 Painting… 3/20 (about 2 min left)"),
        (Finished([]), "✅ Done"),
        (Failed("The engine ran out of memory."), "⚠️ The engine ran out of memory."),
        (Cancelled(), "🛑 Cancelled"),
        (Cancelled(by_admin=True), "🛑 Cancelled by an admin"),
    ],
)
def test_status_text(event: object, text: str) -> None:
    assert render.status_text(event) == text  # type: ignore[arg-type]


def test_caption_lists_the_settings() -> None:
    caption = render.result_caption(make_job(negative="blurry"))
    assert caption.startswith("a red fox at dusk\n")
    assert "blurry" in caption
    for part in ("Seed: 1234", "Steps: 20", "Sampler: DPM++ 2M Karras", "CFG: 7", "768x512"):
        assert part in caption
    assert "Model: sd15" in caption


def test_caption_of_a_batch_lists_every_seed() -> None:
    caption = render.result_caption(make_job(count=4))
    assert "Seeds: 1234, 1235, 1236, 1237" in caption


@pytest.mark.parametrize("letter", ["a", "é", "🦊"])
def test_caption_stays_under_telegram_limit_with_a_long_prompt(letter: str) -> None:
    job = make_job(count=4, prompt=letter * 1000, negative="blurry " * 140)
    caption = render.result_caption(job)
    assert len(caption.encode("utf-16-le")) // 2 < 1024
    first_line = caption.split("\n")[0]
    assert first_line.endswith("…")  # shortened in the caption only
    assert job.request.prompt == letter * 1000
    assert "Seeds: 1234, 1235, 1236, 1237" in caption and "Model: sd15" in caption


def test_single_result_buttons() -> None:
    job = make_job()
    rows = render.result_buttons(job)
    labels = [[button.label for button in row] for row in rows]
    assert labels == [
        ["🔁 Re-roll", "🎨 Vary", "⬆️ Upscale", "🖌 Region", "🔀 Remix"],
        ["🔍 Zoom out", "⬅️ Left", "➡️ Right", "🔼 Up", "🔽 Down"],
        ["📄 PNG", "🗑 Delete"],
    ]
    assert decode(rows[0][1].data) == ButtonData("vary", job.id, 0)
    assert decode(rows[0][3].data) == ButtonData("region", job.id, 0)
    assert decode(rows[1][1].data) == ButtonData("left", job.id, 0)
    assert decode(rows[2][1].data) == ButtonData("delete", job.id, None)


def test_batch_result_buttons() -> None:
    job = make_job(count=4)
    rows = render.result_buttons(job)
    labels = [[button.label for button in row] for row in rows]
    assert labels[0] == ["🔁 Re-roll", "🔀 Remix"]
    assert labels[1] == ["V1", "V2", "V3", "V4"]
    assert labels[2] == ["U1", "U2", "U3", "U4"]
    assert labels[-1] == ["🗑 Delete"]
    assert decode(rows[2][3].data) == ButtonData("upscale", job.id, 3)
    every = [button.data for row in rows for button in row]
    assert len(every) == len(set(every))


@pytest.mark.parametrize("action", ["reroll", "vary", "upscale", "png", "delete"])
@pytest.mark.parametrize("index", [None, 0, 3])
def test_button_data_round_trips_within_64_bytes(action: str, index: int | None) -> None:
    job_id = new_job_id()
    data = buttons.encode(action, job_id, index)
    assert len(data.encode()) <= MAX_BYTES
    assert decode(data) == ButtonData(action, job_id, index)


def test_button_data_examples() -> None:
    assert buttons.encode("reroll", "abc123") == "r:abc123"
    assert buttons.encode("vary", "abc123", 2) == "v:abc123:2"


@pytest.mark.parametrize(
    "data", ["", "x:abc", "r:", "r:abc:", "v:abc:xyz", "r:a b", "hello", "r:abc:2:3"]
)
def test_malformed_button_data_decodes_to_none(data: str) -> None:
    assert decode(data) is None


def test_encode_refuses_what_would_not_fit() -> None:
    with pytest.raises(ValueError):
        buttons.encode("explode", "abc")
    with pytest.raises(ValueError):
        buttons.encode("vary", "x" * 70)
