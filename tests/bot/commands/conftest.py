"""One running Atelier (real store, real engine process on the tiny model) shared by
the command tests of this package: starting the engine process is the slow part.

Tests act as different users (`harness.user()` gives a fresh one), so their limits
and queues do not interfere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.config import load_config
from bot.services import Services

from .harness import ADMIN_ID, BLOCKED, Harness


def _extra_config(tiny_model_dir: Path, presets_file: Path, families: dict[str, Path]) -> str:
    return f"""
[models.tiny2]
source = "{tiny_model_dir}"
default_steps = 3
width = 128
height = 128

# Defaults left out: they come from the model (family, native size).
[models.xl]
source = "{families["xl"]}"
max_steps = 40  # SDXL's 30 default steps are over this package's [limits] max_steps

[models.flux]
source = "{families["flux"]}"

[loras]
path = "{families["loras"]}"

[limits]
jobs_per_minute = 1000
max_queued_per_user = 50
max_prompt_chars = 300
max_steps = 10
max_side = 256
max_attachment_mb = 0.2

[safety]
blocked_words = {BLOCKED!r}

[avatar]
presets_file = "{presets_file}"

[admins]
telegram = ["{ADMIN_ID}"]
"""


# An admin's extra style that slipped a blocked word in: the filter must still apply.
_EXTRA_PRESETS = """
[[steps]]
key = "style"

  [[steps.options]]
  value = "risque"
  label = "🔥 Risqué"
  prompt = "(nude:1.2) statue"
"""


@pytest.fixture(scope="package")
async def harness(
    tiny_model_dir: Path,
    tiny_sdxl_dir: Path,
    tiny_flux_dir: Path,
    write_config: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Harness]:
    from tiny_families import build_tiny_lora

    folder = tmp_path_factory.mktemp("commands")
    presets_file = folder / "more_presets.toml"
    presets_file.write_text(_EXTRA_PRESETS, encoding="utf-8")
    loras = folder / "loras"
    build_tiny_lora(tiny_sdxl_dir, loras / "xldetail.safetensors")
    build_tiny_lora(tiny_flux_dir, loras / "fluxstyle.safetensors")
    families = {"xl": tiny_sdxl_dir, "flux": tiny_flux_dir, "loras": loras}
    extra = _extra_config(tiny_model_dir, presets_file, families)
    config = load_config(write_config(folder, extra))
    services = await Services.start(config)
    yield Harness(services)
    await services.close()
