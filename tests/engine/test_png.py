"""The A1111 `parameters` text and the PNG that carries it."""

from __future__ import annotations

import io

from PIL import Image

from engine.png import ImageParameters, encode_png, format_parameters

CAT = ImageParameters(
    prompt="a cat in a hat",
    negative_prompt="blurry",
    steps=20,
    sampler="Euler a",
    cfg=7.0,
    seed=1234,
    width=512,
    height=512,
    model="sd15",
)


def test_parameters_match_a1111_exactly() -> None:
    assert format_parameters(CAT) == (
        "a cat in a hat\n"
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, Model: sd15"
    )


def test_empty_negative_prompt_leaves_its_line_out() -> None:
    params = ImageParameters(**{**CAT.__dict__, "negative_prompt": "", "cfg": 7.5})
    assert format_parameters(params) == (
        "a cat in a hat\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 1234, Size: 512x512, Model: sd15"
    )


def test_img2img_adds_denoising_strength() -> None:
    params = ImageParameters(**{**CAT.__dict__, "denoising_strength": 0.75, "width": 768})
    assert format_parameters(params).splitlines()[-1] == (
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 768x512, "
        "Model: sd15, Denoising strength: 0.75"
    )


def test_png_carries_the_text_and_the_pixels() -> None:
    picture = Image.new("RGB", (8, 4), (10, 200, 30))
    text = format_parameters(CAT)
    with Image.open(io.BytesIO(encode_png(picture, text))) as read:
        assert read.format == "PNG"
        assert read.size == (8, 4)
        assert read.text["parameters"] == text
        assert read.convert("RGB").getpixel((7, 3)) == (10, 200, 30)


def test_non_latin_prompts_survive_the_png() -> None:
    params = ImageParameters(**{**CAT.__dict__, "prompt": "кот в шляпе 🎩"})
    text = format_parameters(params)
    with Image.open(io.BytesIO(encode_png(Image.new("RGB", (4, 4)), text))) as read:
        assert read.text["parameters"] == text
