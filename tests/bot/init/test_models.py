"""How `init` turns the admin's answer into a [models.NAME] table."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.init.models import KNOWN_MODELS, BadModel, resolve_model


def test_known_names_hub_ids_and_paths(tmp_path: Path) -> None:
    config_dir = tmp_path / "atelier"
    (config_dir / "models" / "My Model").mkdir(parents=True)
    (config_dir / "models" / "My Model" / "model_index.json").write_text("{}")
    outside = tmp_path / "elsewhere" / "dreamshaper_8.safetensors"
    outside.parent.mkdir()
    outside.write_bytes(b"")

    def resolve(text: str) -> tuple[str, str]:
        choice = resolve_model(text, config_dir=config_dir, cwd=config_dir)
        return choice.name, choice.source

    assert resolve("sdxl") == ("sdxl", KNOWN_MODELS["sdxl"].source)
    assert resolve("runwayml/Realistic_Vision-V5.1") == (
        "realistic_vision-v5-1",
        "runwayml/Realistic_Vision-V5.1",
    )
    # Inside the config's folder: relative, with "./" so it never reads as a hub id.
    assert resolve("models/My Model") == ("my-model", "./models/My Model")
    assert resolve(str(outside)) == ("dreamshaper_8", str(outside))


@pytest.mark.parametrize(
    ("make", "text", "expected"),
    [
        (None, "./missing", "not one of sd15, sdxl, flux-schnell"),
        (None, "stable diffusion", "or a hub id (owner/name)"),
        ("folder", "empty", "not a diffusers model folder"),
        ("file", "notes.txt", "a single-file model is a .safetensors or .ckpt file"),
    ],
)
def test_what_is_not_a_model_is_refused_with_the_reason(
    make: str | None, text: str, expected: str, tmp_path: Path
) -> None:
    if make == "folder":
        (tmp_path / text).mkdir()
    elif make == "file":
        (tmp_path / text).write_text("hello")
    with pytest.raises(BadModel, match=expected.replace("(", r"\(").replace(")", r"\)")):
        resolve_model(text, config_dir=tmp_path, cwd=tmp_path)
