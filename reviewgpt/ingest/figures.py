"""Text drawn inside a figure: the boxes of a diagram, axis titles, legends, labels over an image.

It is not body text: left among the blocks, it lands between the two halves of a sentence that runs
from one column into the next past a figure ("...added aspect Input tokens Frozen encoder ..."). A
figure is found from its caption ("Fig. 1.", "Figure 3:") and the graphics (paths and images) drawn
just above it; the text lines inside those graphics, down to the caption, are set apart as `figure`
blocks, which the assembly keeps out of sentences and headings (emitted after the paragraph they
interrupt, with the caption).
"""

from __future__ import annotations

from reviewgpt.ingest.layout import FIGURE_CAPTION, Block, Box, column_of, two_columns

# The figure's graphics end at most this far above its caption (axis titles and tick labels, which
# are text, sit in between).
CAPTION_REACH_PT = 60.0
# Graphics this close to the figure's region are part of it (arrows between boxes, a legend).
TOUCH_PT = 4.0
# A line is in the figure when this share of its box is inside the region.
INSIDE_SHARE = 0.6


def _area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _touches(a: Box, b: Box, pad: float) -> bool:
    return a[0] - pad <= b[2] and b[0] - pad <= a[2] and a[1] - pad <= b[3] and b[1] - pad <= a[3]


def figure_regions(captions: list[Block], graphics: list[Box], page: tuple[float, float],
                   two_column_page: bool = False) -> list[Box]:
    """For each figure caption, the box of the graphics drawn just above it (grown over everything
    touching them, and over what stands beside them in the caption's column: the page's width on
    a one-column page), stretched down to the caption. `page`: its width and height."""
    width, height = page
    shapes = [g for g in graphics if _area(g) < 0.5 * width * height]  # not a page background
    regions = []
    for block in captions:
        cap = block.bbox
        side = column_of(block, width) if two_column_page else "F"
        col = (0.0, width / 2 + 10) if side == "L" else (width / 2 - 10, width) if side == "R" else (0.0, width)
        seeds = [g for g in shapes if cap[1] - CAPTION_REACH_PT <= g[3] <= cap[1] + 3
                 and min(g[2], cap[2]) - max(g[0], cap[0]) > 0]
        if not seeds:
            continue
        region = seeds[0]
        for g in seeds[1:]:
            region = _union(region, g)
        grown = True
        while grown:  # a few passes: each adds what touches the region so far, or what stands beside it
            grown = False  # above the caption (sub-figures side by side)
            for g in shapes:
                beside = g[1] >= region[1] - TOUCH_PT and col[0] <= g[0] and g[2] <= col[1]
                if (g[3] <= cap[1] + 3 and (beside or _touches(region, g, TOUCH_PT))
                        and _union(region, g) != region):
                    region, grown = _union(region, g), True
        if region[3] - region[1] >= 10 and region[2] - region[0] >= 20:
            regions.append((region[0], region[1], region[2], max(region[3], cap[1])))
    return regions


def set_apart_figure_text(blocks: list[Block], graphics: list[Box], page: tuple[float, float]) -> list[Block]:
    """The page's blocks with the lines inside a figure split off into blocks marked `figure`.
    `page`: its width and height."""
    captions = [b for b in blocks if FIGURE_CAPTION.match(b.text)]
    if not captions or not graphics:
        return blocks
    regions = figure_regions(captions, graphics, page, two_columns(blocks, page[0]))
    if not regions:
        return blocks

    def inside(box: Box) -> bool:
        a = _area(box)
        return a > 0 and any(_area((max(box[0], r[0]), max(box[1], r[1]), min(box[2], r[2]), min(box[3], r[3])))
                             >= INSIDE_SHARE * a for r in regions)

    out: list[Block] = []
    for b in blocks:
        if FIGURE_CAPTION.match(b.text):
            out.append(b)
            continue
        fig = [ln for ln in b.lines if inside(ln.bbox)]
        if not fig:
            out.append(b)
            continue
        rest = [ln for ln in b.lines if not inside(ln.bbox)]
        for lines, is_fig in ((rest, False), (fig, True)):
            if lines:
                part = Block(b.page, b.bbox, lines, table_cell=b.table_cell, figure=is_fig)
                part.refit()
                out.append(part)
    return out
