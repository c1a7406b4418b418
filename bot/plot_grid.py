"""Drawing a plot's grid: the cells side by side, axis names and values on the margins.

Pure Pillow, no I/O, so it is tested on its own. Labels are sized from the grid's
width, so they stay readable when a chat shows the whole grid at a few hundred pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
EMPTY = (200, 200, 200)  # a cell that was not painted (failed or blocked)
# A chat shows a grid about this wide; labels are sized to be ~14 px there.
CHAT_WIDTH = 512
CHAT_FONT_PX = 14
MIN_FONT_PX = 14
MAX_FONT_PX = 120

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class GridAxis:
    title: str  # "Steps"
    labels: list[str]  # one per row or column, e.g. ["10", "20", "30"]


def font_px(cells_width: int) -> int:
    """Label size for a grid `cells_width` pixels wide."""
    scaled = round(cells_width * CHAT_FONT_PX / CHAT_WIDTH)
    return max(MIN_FONT_PX, min(MAX_FONT_PX, scaled))


def draw_grid(
    cells: list[Image.Image | None],
    x: GridAxis,
    y: GridAxis | None = None,
    title: str = "",
) -> Image.Image:
    """Cells in rows (y) of columns (x), row by row; None is drawn as an empty cell.

    Cells of different sizes (a `size` axis) are centred in a slot as large as the
    largest. `title` (the z value) goes above the column labels.
    """
    columns = len(x.labels)
    rows = len(y.labels) if y is not None else 1
    if columns < 1 or len(cells) != columns * rows:
        raise ValueError(f"{len(cells)} cells do not make {rows} rows of {columns}")
    painted = [cell for cell in cells if cell is not None]
    cell_w = max((cell.width for cell in painted), default=64)
    cell_h = max((cell.height for cell in painted), default=64)
    size = font_px(columns * cell_w)
    font = ImageFont.load_default(size=size)
    pad = max(4, size // 2)
    line_h = _line_height(font)

    column_text = [_fit_lines(f"{x.title}: {label}", font, cell_w - pad) for label in x.labels]
    title_lines = _fit_lines(title, font, columns * cell_w) if title else []
    header_lines = len(title_lines) + max(len(lines) for lines in column_text)
    top = pad + header_lines * line_h + pad
    left = 0
    row_text: list[list[str]] = []
    if y is not None:
        # As wide as the labels need, within reason: a long prompt value wraps.
        room = max(cell_w, 8 * size)
        row_text = [_fit_lines(f"{y.title}: {label}", font, room) for label in y.labels]
        widest = max(_width(font, line) for lines in row_text for line in lines)
        left = pad + widest + pad

    grid = Image.new("RGB", (left + columns * cell_w, top + rows * cell_h), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for i, line in enumerate(title_lines):
        draw.text((left + pad, pad + i * line_h), line, fill=INK, font=font)
    labels_top = pad + len(title_lines) * line_h
    for column, lines in enumerate(column_text):
        for i, line in enumerate(lines):
            centre = left + column * cell_w + (cell_w - _width(font, line)) // 2
            draw.text((centre, labels_top + i * line_h), line, fill=INK, font=font)
    for row, lines in enumerate(row_text):
        middle = top + row * cell_h + (cell_h - len(lines) * line_h) // 2
        for i, line in enumerate(lines):
            draw.text((pad, middle + i * line_h), line, fill=INK, font=font)
    for index, cell in enumerate(cells):
        row, column = divmod(index, columns)
        x0, y0 = left + column * cell_w, top + row * cell_h
        if cell is None:
            draw.rectangle((x0, y0, x0 + cell_w - 1, y0 + cell_h - 1), fill=EMPTY)
            continue
        offset = (x0 + (cell_w - cell.width) // 2, y0 + (cell_h - cell.height) // 2)
        grid.paste(cell.convert("RGB"), offset)
    return grid


def _line_height(font: Font) -> int:
    box = font.getbbox("Ag")
    return int(box[3] - box[1]) + max(2, int(box[3]) // 4)


def _width(font: Font, text: str) -> int:
    return int(font.getlength(text))


def _fit_lines(text: str, font: Font, room: int) -> list[str]:
    """`text` on as few lines as fit `room` pixels (at most three; the last shortened)."""
    room = max(room, _width(font, "W…"))
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if _width(font, candidate) <= room or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    lines.append(current)
    if len(lines) > 3:
        lines = [*lines[:2], " ".join(lines[2:])]
    return [_shorten(line, font, room) for line in lines]


def _shorten(line: str, font: Font, room: int) -> str:
    if _width(font, line) <= room:
        return line
    while line and _width(font, line + "…") > room:
        line = line[:-1]
    return line + "…"
