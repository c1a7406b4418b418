"""Sampler names: A1111 spellings, loose matching, and no torch in the bot process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.samplers import SAMPLER_NAMES, canonical_sampler


def test_the_usual_a1111_samplers_are_offered() -> None:
    for name in ["Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras", "DDIM", "Heun", "UniPC"]:
        assert name in SAMPLER_NAMES
    for name in ["LMS", "LMS Karras", "DPM2", "PNDM", "DDPM"]:
        assert name in SAMPLER_NAMES


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("Euler a", "Euler a"),
        ("euler A", "Euler a"),
        ("EULER_A", "Euler a"),
        ("  dpm++ 2m karras ", "DPM++ 2M Karras"),
        ("DPM++2M", "DPM++ 2M"),
        ("unipc", "UniPC"),
        ("plms", "PNDM"),
    ],
)
def test_names_match_ignoring_case_spaces_and_underscores(typed: str, canonical: str) -> None:
    assert canonical_sampler(typed) == canonical


@pytest.mark.parametrize("typed", ["Euler b", "", "DPM++ 3M", "karras"])
def test_unknown_names_list_the_valid_ones(typed: str) -> None:
    with pytest.raises(ValueError, match=r"unknown sampler .*choose one of: Euler a, Euler, "):
        canonical_sampler(typed)


def test_importing_the_names_loads_neither_torch_nor_diffusers() -> None:
    code = (
        "import sys, engine.samplers as s; s.canonical_sampler('euler a');"
        "print(sorted(m for m in ('torch', 'diffusers') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
