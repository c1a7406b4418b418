"""The files a result message carries: the PNGs, a grid for several, and smaller
encodings when Discord's upload limit would refuse them.

Everything here is blocking (Pillow): call it in a thread.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image

# Tried in order when the PNGs do not fit: WebP keeps far more detail per byte.
_QUALITIES = (90, 75, 60, 45)
_MIN_SIDE = 64


@dataclass(frozen=True)
class ResultFile:
    filename: str
    data: bytes


@dataclass(frozen=True)
class ResultPicture:
    png: bytes
    seed: int
    spoiler: bool = False


def result_files(pictures: list[ResultPicture], *, limit: int) -> list[ResultFile]:
    """Files for one result message, all together within `limit` bytes.

    One picture: its PNG. Several: a 2×2 grid PNG first, then each PNG. When that is
    too big: drop the grid, then WebP at falling quality, then smaller WebPs.
    """
    originals = [_named(p, f"atelier-{p.seed}.png", p.png) for p in pictures]
    candidates: list[list[ResultFile]] = []
    if len(pictures) > 1:
        grid = ResultPicture(grid_png(pictures), 0, any(p.spoiler for p in pictures))
        candidates.append([_named(grid, "atelier-grid.png", grid.png), *originals])
    candidates.append(originals)
    for attempt in candidates:
        if _total(attempt) <= limit:
            return attempt

    images = [_open(p.png) for p in pictures]
    scale = 1.0
    while True:
        for quality in _QUALITIES:
            files = [
                _named(p, f"atelier-{p.seed}.webp", _webp(image, scale, quality))
                for p, image in zip(pictures, images, strict=True)
            ]
            if _total(files) <= limit:
                return files
        if min(min(image.size) for image in images) * scale / 2 < _MIN_SIDE:
            return files  # as small as it gets; Discord will say if even this is too big
        scale /= 2


def grid_png(pictures: list[ResultPicture]) -> bytes:
    """The pictures side by side, two per row, in a PNG."""
    images = [_open(p.png) for p in pictures]
    cell_w = max(image.width for image in images)
    cell_h = max(image.height for image in images)
    columns = min(2, len(images))
    rows = math.ceil(len(images) / columns)
    grid = Image.new("RGB", (cell_w * columns, cell_h * rows), "black")
    for index, image in enumerate(images):
        grid.paste(image, ((index % columns) * cell_w, (index // columns) * cell_h))
    out = io.BytesIO()
    grid.save(out, format="PNG", optimize=False)
    return out.getvalue()


def _named(picture: ResultPicture, filename: str, data: bytes) -> ResultFile:
    # Discord blurs attachments whose name starts with SPOILER_ until clicked.
    return ResultFile(f"SPOILER_{filename}" if picture.spoiler else filename, data)


def _open(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB")


def _webp(image: Image.Image, scale: float, quality: int) -> bytes:
    if scale != 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=quality, method=4)
    return out.getvalue()


def _total(files: list[ResultFile]) -> int:
    return sum(len(f.data) for f in files)
