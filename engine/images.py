"""Pictures in and out of the pipelines: decoding inputs, sizes, inpaint compositing."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from engine.types import EngineError


def round_size(value: int, multiple: int) -> int:
    """The nearest multiple of `multiple` (at least one), since the UNet needs it."""
    return max(multiple, int(value / multiple + 0.5) * multiple)


def decode_image(
    data: bytes, size: tuple[int, int] | None = None, *, what: str = "image"
) -> Image.Image:
    """An RGB picture resized to `size` (None: as it is); the caller has already
    size-checked the bytes."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            picture = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise EngineError(f"the {what} is not a picture Pillow can read") from exc
    if size is not None and picture.size != size:
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    return picture


def decode_mask(data: bytes, size: tuple[int, int]) -> Image.Image:
    """A greyscale mask at `size`: white is repainted, black is kept."""
    return decode_image(data, size, what="mask").convert("L")


def paste_unmasked(generated: Image.Image, original: Image.Image, mask: Image.Image) -> Image.Image:
    """Keep the original pixels wherever the mask is black.

    diffusers blends the kept area in latent space only, so after the VAE decodes it
    those pixels drift from the input (a lot with a small VAE). Like AUTOMATIC1111, we
    paste the original back so nothing outside the mask changes.
    """
    return Image.composite(generated, original, mask)
