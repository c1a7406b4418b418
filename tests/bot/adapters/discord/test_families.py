"""An SDXL model behind /model, end to end through discord.py: the switch, pictures at
its native size with its family's defaults, the lora option, family-aware suggestions."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_families import build_tiny_lora

from .fake_discord import FakeDiscord
from .harness import RunningBot, png_parameters


@pytest.fixture(scope="module")
def extra_config(
    tiny_sdxl_dir: Path, tiny_flux_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    loras = tmp_path_factory.mktemp("discord-loras")
    build_tiny_lora(tiny_sdxl_dir, loras / "xldetail.safetensors")
    return f"""
[models.xl]
source = "{tiny_sdxl_dir}"
max_steps = 30

[models.flux]
source = "{tiny_flux_dir}"

[loras]
path = "{loras}"
"""


async def test_an_sdxl_model_behind_model_paints_with_its_own_defaults(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    scheduler = bot.services.scheduler
    try:
        switched = await fake.wait_reply(await fake.slash("model", bot.users.root, name="xl"))
        assert "Switched to xl" in switched.content and scheduler.current_model == "xl"
        interaction = await fake.slash("imagine", bot.users.bob, prompt="a lighthouse", steps=2)
        parameters = png_parameters((await bot.result(interaction)).files[0].data)
        for expected in ("Sampler: DPM++ 2M Karras", "CFG scale: 6", "Size: 64x64", "Model: xl"):
            assert expected in parameters

        interaction = await fake.slash(
            "imagine", bot.users.bob, prompt="a fox", steps=2, lora="xldetail", lora_weight=0.5
        )
        parameters = png_parameters((await bot.result(interaction)).files[0].data)
        assert parameters.startswith("a fox <lora:xldetail:0.5>\n")
        assert 'Lora hashes: "xldetail: ' in parameters
    finally:
        await scheduler.switch_model("tiny")


async def test_suggestions_follow_the_model(bot: RunningBot, fake: FakeDiscord) -> None:
    flow = await fake.autocomplete(
        "imagine", bot.users.alice, "sampler", prompt="x", model="flux", sampler="eul"
    )
    assert {c["value"] for c in flow} == {"Euler", "Euler a", "Euler Karras", "Euler Beta"}
    unet = await fake.autocomplete(
        "imagine", bot.users.alice, "sampler", prompt="x", model="xl", sampler="dpm++ 2m"
    )
    assert "DPM++ 2M Karras" in {c["value"] for c in unet}
    loras = await fake.autocomplete("imagine", bot.users.alice, "lora", prompt="x", lora="xl")
    assert [c["value"] for c in loras] == ["xldetail"]


async def test_a_sampler_the_model_cannot_use_is_refused(
    bot: RunningBot, fake: FakeDiscord
) -> None:
    interaction = await fake.slash(
        "imagine", bot.users.alice, prompt="a fox", model="flux", sampler="DDIM"
    )
    reply = await bot.private_reply(interaction)
    assert "cannot use the sampler 'DDIM'" in reply.content and "Euler Beta" in reply.content
