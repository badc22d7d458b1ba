"""ipywidgets demos for chapter 05 (neural architecture search), for live teaching.

Each demo is two parts: a plain update function (numbers in, text out), which holds all the
logic and is tested without a browser, and a small builder that wires sliders to it and
returns the widget for a notebook to show. ipywidgets is imported only when a builder runs.
"""
from __future__ import annotations

import html

from nclib.nas import Table, mnas_reward

__all__ = ["tradeoff_best", "tradeoff_summary", "reward_tradeoff"]


def tradeoff_best(table: Table, target_macs: float, w: float):
    """The architecture of the whole table that MnasNet's reward ACC x (MACs / T)^w ranks first."""
    return max(table.results, key=lambda r: (mnas_reward(r, target_macs, w), -r.macs))


def tradeoff_summary(table: Table, target_macs: float, w: float) -> str:
    """What a perfect search would return for this reward: the winner, beside the true best.

    This is the widget's update function; it is plain, so it can be called and tested directly.
    """
    won, best = tradeoff_best(table, target_macs, w), table.best()
    acc, top = 100 * max(won.val_acc), 100 * max(best.val_acc)
    return "\n".join([
        f"reward = accuracy x (MACs / {target_macs:,.0f})^{w:g}",
        f"winner:    {table.space.describe(won.tokens):<36} {won.macs:>10,} MACs  {acc:.1f}% val",
        f"true best: {table.space.describe(best.tokens):<36} {best.macs:>10,} MACs  {top:.1f}% val",
        f"the winner costs {top - acc:.1f} points for {best.macs / won.macs:.1f}x fewer MACs "
        f"(w = 0 ignores MACs; more negative w punishes them harder)"])


def reward_tradeoff(table: Table, target_macs: float = 300_000, w: float = -0.07):
    """Sliders for MnasNet's target T (MACs, log scale) and exponent w, and the winner they give.

    The defaults are MnasNet's w = -0.07 (Tan et al., CVPR 2019) and the exercise's budget.

    Returns:
        An ipywidgets VBox; its `.children[-1]` is the HTML with `tradeoff_summary`.
    """
    import ipywidgets as wd

    style = {"description_width": "90px"}
    target = wd.FloatLogSlider(target_macs, base=10, min=4.5, max=7, step=0.05,
                               description="target MACs", readout_format=".3s", style=style)
    exponent = wd.FloatSlider(w, min=-1.0, max=0.0, step=0.01, description="w", style=style)
    out = wd.HTML()

    def update(change=None) -> None:
        text = tradeoff_summary(table, target.value, exponent.value)
        out.value = f"<pre>{html.escape(text)}</pre>"

    target.observe(update, names="value")
    exponent.observe(update, names="value")
    update()
    return wd.VBox([target, exponent, out])
