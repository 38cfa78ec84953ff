"""PNG bar charts of results, drawn with matplotlib off-screen.

matplotlib is imported only when a chart is drawn: it is slow to import and most of the
bot never needs it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import textwrap

log = logging.getLogger(__name__)

Bars = list[tuple[str, int]]


def bar_chart(title: str, groups: list[tuple[str, Bars]]) -> bytes:
    """One horizontal bar chart per (question, [(option, votes)]), stacked in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # a Figure needs no pyplot state: safe to reuse

    groups = [(q, bars) for q, bars in groups if bars] or [("No answers yet", [("", 0)])]
    heights = [0.6 + 0.38 * len(bars) for _, bars in groups]
    figure = Figure(figsize=(8, sum(heights) + 0.6), dpi=100, layout="constrained")
    axes = figure.subplots(len(groups), 1, squeeze=False, height_ratios=heights)
    figure.suptitle(_wrap(title, 70), fontsize=12, fontweight="bold")
    for ax, (question, bars) in zip(axes[:, 0], groups, strict=True):
        labels = [_wrap(label, 40) for label, _ in bars]
        counts = [count for _, count in bars]
        positions = list(range(len(bars)))
        ax.barh(positions, counts, color="#3b7dd8")
        ax.set_yticks(positions, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(_wrap(question, 80), fontsize=9, loc="left")
        top = max(counts, default=0)
        ax.set_xlim(0, max(1, top) * 1.15)
        ax.xaxis.get_major_locator().set_params(integer=True)
        for y, count in zip(positions, counts, strict=True):
            ax.text(count, y, f" {count}", va="center", fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)[:3]) or " "


async def draw(title: str, groups: list[tuple[str, Bars]]) -> bytes | None:
    """Draw off the event loop; a chart that fails is logged and left out, never fatal."""
    try:
        return await asyncio.to_thread(bar_chart, title, groups)
    except Exception:
        log.exception("chart: could not draw %r", title)
        return None
