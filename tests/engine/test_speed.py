"""Aspect buckets for a compiled denoiser: every size maps to one of a few shapes."""

from __future__ import annotations

from engine.inspect import family_defaults
from engine.speed import snap_to_bucket


def test_sizes_snap_to_the_nearest_bucket_at_the_native_area() -> None:
    sdxl = family_defaults("sdxl")
    assert snap_to_bucket(1920, 1080, sdxl) == (1344, 768)
    assert snap_to_bucket(1000, 1030, sdxl) == (1024, 1024)
    assert snap_to_bucket(600, 900, sdxl) == (832, 1280)
    shapes = {
        snap_to_bucket(w, h, sdxl) for w in range(256, 2049, 64) for h in range(256, 2049, 64)
    }
    assert len(shapes) == 7
