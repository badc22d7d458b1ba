"""Small helpers that every chapter's figures share (matplotlib is imported only on use)."""
from __future__ import annotations

from typing import Sequence

__all__ = ["axes", "same_length", "redraw_in"]


def axes(ax, figsize: tuple[float, float]):
    """`ax` when one is given, else the axes of a new figure of `figsize` inches."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


def same_length(**seqs: Sequence) -> int:
    """The common length of the named sequences; ValueError naming them if they differ."""
    lengths = {name: len(s) for name, s in seqs.items()}
    if len(set(lengths.values())) != 1 or not next(iter(lengths.values())):
        raise ValueError(f"expected non-empty sequences of one length, got lengths {lengths}")
    return next(iter(lengths.values()))


def redraw_in(out, fig) -> None:
    """Show `fig` in the ipywidgets Output `out` in place of what it showed (a slider's redraw;
    ``wait=True`` clears only when the new figure arrives, so the widget does not flicker)."""
    from IPython.display import display

    with out:
        out.clear_output(wait=True)
        display(fig)
