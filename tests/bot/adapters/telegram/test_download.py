"""A first start on a hub model: a user who asks for a picture meanwhile hears that the
model is still downloading (and how far it is), then gets the picture.

The engine process downloads from the fake hub on 127.0.0.1 (`tests/engine/fake_hub.py`);
the hub is online only there.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest

from tests.engine.fake_hub import FakeHub, make_repo, pipeline_files, use_hub

from .fake_bot_api import FakeBotApi
from .harness import RunningBot, image_of, telegram_config

DOWNLOADING = re.compile(r"The model is still downloading \((\d+) %\)")


async def test_a_job_sent_during_the_download_says_so_and_is_painted_after_it(
    fake_api: FakeBotApi,
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    repo = make_repo(tiny_model_dir, tmp_path / "repo")
    size = sum((repo / path).stat().st_size for path in pipeline_files(repo))
    # The engine logs at the bot's level, and the download lines are INFO.
    caplog.set_level(logging.INFO)
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        f"""
[engine]
default_model = "hubtiny"
device = "cpu"

[models.hubtiny]
source = "atelier/tiny"
default_steps = 2
width = 64
height = 64

[storage]
path = "{tmp_path / "data"}"
{telegram_config(fake_api, tiny_model_dir)}
"""
    )
    with FakeHub({"atelier/tiny": repo}, bytes_per_second=size / 10) as hub:
        use_hub(monkeypatch, hub, tmp_path / "hub-cache")
        bot = await RunningBot.start(fake_api, config_path)
        try:
            scheduler = bot.services.scheduler
            async with asyncio.timeout(60):
                while scheduler.downloading is None:  # the start-up load is fetching
                    await asyncio.sleep(0.1)
            user = bot.new_user("Early Bird")
            chat = fake_api.private_chat(user)
            mark = fake_api.mark()
            await fake_api.send_text(user, chat, "/imagine a red fox --seed 3")

            status = await fake_api.next_call("sendMessage", since=mark, chat_id=chat["id"])
            first = DOWNLOADING.search(status.result["text"])
            assert first is not None, status.result["text"]
            assert 0 <= int(first[1]) < 100

            photo = await bot.result_photo(chat["id"], mark)
            assert image_of(photo.files["photo"].data).size == (64, 64)
            assert "Model: hubtiny" in photo.result["caption"]
            texts = [status.result["text"]] + [
                edit.params["text"]
                for edit in fake_api.calls_of("editMessageText", since=mark, chat_id=chat["id"])
                if edit.params["message_id"] == status.result["message_id"]
            ]
            # Told how far the download is until it is over, then painted: never timed out.
            shown = [int(found[1]) for text in texts if (found := DOWNLOADING.search(text))]
            assert shown == sorted(shown) and len(set(shown)) >= 2, texts
            last = max(i for i, text in enumerate(texts) if DOWNLOADING.search(text))
            assert any(text.startswith("🎨 Painting") for text in texts[last + 1 :]), texts
            assert not any("⚠️" in text for text in texts), texts
            assert len(hub.downloads) == len(pipeline_files(repo))
        finally:
            await bot.stop()

    log = capfd.readouterr().err
    assert re.search(r"downloading hubtiny from the Hugging Face hub: \d+ files, 4\.9 MB", log)
    assert "model hubtiny ready: SD 1.x/2.x on cpu, float32, loaded in " in log
