"""MobileNet v1 tools: the body table read from a model, and the paper's cost comparisons.

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications" (arXiv 1704.04861, 2017). The model itself is `nclib.models.MobileNetV1`.

* `body_table(model)` rebuilds the paper's Table 1 (type / stride, filter shape, input
  size) from the model itself, by running it once with hooks, so it is right for any
  width multiplier alpha and resolution rho (paper eq. 6 and 7 scale the channels by alpha
  and the feature maps by rho).
* `summarize_by_type(table)` gives the shares of MACs and parameters per layer type
  (paper Table 2: 95% of the MACs are in 1 x 1 convolutions).
* `compare_separable()` sets MobileNet beside "Conv MobileNet", the same body with full
  3 x 3 convolutions (paper Table 4), with the paper's numbers (`PAPER_COSTS`) beside ours.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nclib import measure

__all__ = ["BodyRow", "BodyTable", "body_table", "summarize_by_type", "PAPER_COSTS",
           "compare_separable"]

# (model, width multiplier alpha, resolution) -> (parameters, MACs) printed in the paper,
# for 1000 ImageNet classes: Table 4 (Conv MobileNet vs MobileNet), Table 6 (alpha) and
# Table 7 (resolution). The paper rounds to 0.1M parameters and 1M MACs.
PAPER_COSTS: dict[tuple[str, float, int], tuple[float, float]] = {
    ("Conv MobileNet", 1.0, 224): (29.3e6, 4866e6),
    ("MobileNet", 1.0, 224): (4.2e6, 569e6),
    ("MobileNet", 0.75, 224): (2.6e6, 325e6),
    ("MobileNet", 0.5, 224): (1.3e6, 149e6),
    ("MobileNet", 0.25, 224): (0.5e6, 41e6),
    ("MobileNet", 1.0, 192): (4.2e6, 418e6),
    ("MobileNet", 1.0, 160): (4.2e6, 290e6),
    ("MobileNet", 1.0, 128): (4.2e6, 186e6),
}


@dataclass(frozen=True)
class BodyRow:
    """One row of Table 1, plus the layer's name, type and costs."""

    layer: str  # name in model.named_modules()
    type_stride: str  # "Conv dw / s2"
    filter_shape: str  # "3 x 3 x 64 dw"
    input_size: str  # "112 x 112 x 64" (H x W x C, as in the paper)
    kind: str  # "Conv 1 x 1", "Conv DW 3 x 3", "Conv 3 x 3", "FC", "Pool", "Softmax"
    params: int
    macs: int


@dataclass(frozen=True)
class BodyTable:
    """The rows of `body_table`; `print()` it for the paper's Table 1 with costs added."""

    rows: tuple[BodyRow, ...]

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> BodyRow:
        return self.rows[i]

    def __str__(self) -> str:
        header = ("Type / Stride", "Filter Shape", "Input Size", "params", "MACs")
        body = [(r.type_stride, r.filter_shape, r.input_size, f"{r.params:,}", f"{r.macs:,}")
                for r in self.rows]
        body.append(("total", "", "", f"{sum(r.params for r in self.rows):,}",
                     f"{sum(r.macs for r in self.rows):,}"))
        widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
        align = [str.ljust, str.ljust, str.ljust, str.rjust, str.rjust]
        return "\n".join("  ".join(a(c, w) for a, c, w in zip(align, row, widths))
                         for row in [header] + body)

    __repr__ = __str__


def _size(*dims: int) -> str:
    return " x ".join(str(d) for d in dims)


def _describe(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> tuple[str, str, str, str]:
    """(type / stride, filter shape, input size, kind) of one layer, from its attributes."""
    if isinstance(module, nn.Linear):
        c = module.in_features
        return "FC / s1", _size(c, module.out_features), _size(1, 1, c), "FC"
    _, C, H, W = x.shape  # (1, C, H, W)
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        stride = f"s{module.stride[0]}"
        if module.groups == module.in_channels == module.out_channels and module.groups > 1:
            # depthwise: one kh x kw filter per channel, written "3 x 3 x 32 dw" in the paper
            return (f"Conv dw / {stride}", f"{_size(kh, kw, C)} dw", _size(H, W, C),
                    f"Conv DW {_size(kh, kw)}")
        shape = _size(kh, kw, module.in_channels // module.groups, module.out_channels)
        return f"Conv / {stride}", shape, _size(H, W, C), f"Conv {_size(kh, kw)}"
    # a pooling layer: a global one (1 x 1 output) has one window, which the paper calls s1
    oh, ow = out.shape[2:]
    kh, kw = H // oh, W // ow
    stride = 1 if oh == ow == 1 else kh
    kind = "Avg Pool" if "Avg" in type(module).__name__ else "Max Pool"
    return f"{kind} / s{stride}", f"Pool {_size(kh, kw)}", _size(H, W, C), "Pool"


_POOLS = (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool2d, nn.AdaptiveMaxPool2d)


def body_table(model: nn.Module, input_size: int | None = None) -> BodyTable:
    """The paper's Table 1 for `model`, read from its layers while it runs once.

    Args:
        model: a CNN such as `nclib.models.MobileNetV1` (any width_mult, separable or not).
        input_size: the input's height and width; None takes ``model.resolution``. The
            input channels are the first convolution's.

    Returns:
        A `BodyTable`: one row per convolution, pooling and fully connected layer in the
        order they run, plus a "Softmax" row when the model ends in class scores (the model
        returns logits; the paper lists the softmax that turns them into probabilities).
    """
    if input_size is None:
        input_size = getattr(model, "resolution", None)
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"input_size={input_size!r}: expected a positive integer (the input's "
                         "height and width), or None for a model with a `resolution`")
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        raise TypeError(f"model: expected a CNN with an nn.Conv2d layer, got "
                        f"{type(model).__name__} without one")
    shape = (first.in_channels, input_size, input_size)
    macs = {l.name: l.macs for l in measure.count_macs(model, shape).layers}
    found: list[tuple[str, nn.Module, str, str, str, str]] = []
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear) + _POOLS):
            def hook(mod, inputs, out, name=name):
                found.append((name, mod, *_describe(mod, inputs[0], out)))
            handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(1, *shape, device=first.weight.device, dtype=first.weight.dtype)
            out = model(x)  # (1, classes)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    rows = [BodyRow(name, t, f, s, kind, sum(p.numel() for p in mod.parameters()),
                    macs.get(name, 0)) for name, mod, t, f, s, kind in found]
    if out.ndim == 2 and rows and rows[-1].kind == "FC":
        rows.append(BodyRow("", "Softmax / s1", "Classifier", _size(1, 1, out.shape[1]),
                            "Softmax", 0, 0))
    return BodyTable(tuple(rows))


def summarize_by_type(table: BodyTable) -> dict[str, tuple[float, float]]:
    """Share of the table's MACs and parameters in each layer type (paper Table 2).

    Shares are of the convolution and FC layers only (BatchNorm is folded into the
    convolutions at inference). MobileNet 1.0-224 in the paper: Conv 1 x 1 94.86% of the
    MACs and 74.59% of the parameters, Conv DW 3 x 3 3.06% / 1.06%, Conv 3 x 3 1.19% / 0.02%,
    FC 0.18% / 24.33%. Ours: the same, except Conv 3 x 3 has 1.91% of the MACs (the paper's
    1.19% is a swap of digits: only 1.91 makes the four shares sum to 100%), and FC has
    24.35% / 1 x 1 74.57% of the parameters because we count the FC's 1,000 biases.

    Returns:
        {kind: (fraction of MACs, fraction of parameters)}, largest MAC share first.
    """
    layers = [r for r in table if r.kind not in ("Pool", "Softmax")]
    total_macs = sum(r.macs for r in layers) or 1
    total_params = sum(r.params for r in layers) or 1
    shares: dict[str, tuple[float, float]] = {}
    for r in layers:
        m, p = shares.get(r.kind, (0.0, 0.0))
        shares[r.kind] = (m + r.macs / total_macs, p + r.params / total_params)
    return dict(sorted(shares.items(), key=lambda kv: -kv[1][0]))


def compare_separable(width_mult: float = 1.0, resolution: int = 224,
                      num_classes: int = 1000) -> measure.Table:
    """Conv MobileNet (full 3 x 3 convolutions) beside MobileNet: parameters and MACs.

    The paper's Table 4 at alpha = 1, 224 x 224: 29.3M parameters and 4866M MACs for Conv
    MobileNet, 4.2M and 569M for MobileNet (8x fewer, from the 1/C_out + 1/K^2 of each
    block), at 1.1 points less ImageNet accuracy. The paper's numbers are shown beside
    ours where `PAPER_COSTS` has them (1000 classes only).
    """
    from nclib.models import MobileNetV1

    rows = []
    for name, separable in (("Conv MobileNet", False), ("MobileNet", True)):
        model = MobileNetV1(num_classes, width_mult, resolution, separable=separable)
        paper = PAPER_COSTS.get((name, width_mult, resolution)) if num_classes == 1000 else None
        # the paper's numbers as printed: 0.1M parameters, 1M MACs
        extra = {"paper params": f"{paper[0] / 1e6:.1f}M" if paper else "-",
                 "paper MACs": f"{paper[1] / 1e6:,.0f}M" if paper else "-"}
        rows.append(measure.report(model, f"{name} {width_mult:g}-{resolution}",
                                   input_shape=model.input_shape, latency=False, extra=extra))
    return measure.compare(rows)
