"""Chapter 01 checks, tasks 4-6: L1 filter ranking, channel surgery on two convolutions and
Deep Compression's compression arithmetic."""
from __future__ import annotations

import copy
import random

import torch
from torch import nn

from nclib.chapters.pruning.checks.masks import _as_float, _weight
from nclib.course.checking import Mismatch, Text, call, close, describe, task
from nclib.pruning.structured import l1_filter_scores


# ---------------------------------------------------------------- task 4: L1 filter ranking
def ref_select_l1_filters(weight: torch.Tensor, num_keep: int) -> torch.Tensor:
    scores = l1_filter_scores(weight)  # s_j = sum |F_j|, (C_out,)
    return torch.argsort(scores, descending=True, stable=True)[:num_keep].sort().values


def _filter_cases() -> list[tuple[torch.Tensor, int]]:
    # Filter 0: L1 4, L2 2; filter 1: L1 3, L2 3; filter 2: L1 4.2 but signed sum -4.2.
    norms = torch.tensor([[1.0, 1.0, 1.0, 1.0], [3.0, 0.0, 0.0, 0.0],
                          [-2.1, -2.1, 0.0, 0.0], [0.5, -0.5, 0.2, 0.1]]).view(4, 1, 2, 2)
    fixed = [(norms, 2), (norms, 1), (norms, 4),
             (_weight((16, 8, 3, 3), 41), 8), (_weight((32, 16, 3, 3), 42), 1),
             (_weight((10, 20), 43), 3)]  # a Linear weight: one row per output neuron
    rng = random.Random(44)
    out = []
    for i in range(5):
        c_out = rng.randint(2, 40)
        out.append((_weight((c_out, rng.randint(1, 16), 3, 3), 400 + i), rng.randint(1, c_out)))
    return fixed + out


@task("pruning", points=1, hint="Lecture 01, section 5 (Filter pruning: remove whole filters "
      "(Li et al. 2017; ThiNet, Luo et al. 2017)) defines a filter's L1 score; compare your "
      "scores with nclib.pruning.structured.l1_filter_scores, and check which filters you keep "
      "and the order of the indices you return.")
def select_l1_filters(student):
    """select_l1_filters(weight, num_keep) -> indices of the kept filters, increasing."""
    for weight, num_keep in _filter_cases():
        shown = f"({describe(weight, 40)}, {num_keep})"
        expected = ref_select_l1_filters(weight, num_keep)
        got = call(student, shown, weight.clone(), num_keep)
        try:
            as_list = [int(i) for i in (got.flatten() if torch.is_tensor(got) else got)]
        except (TypeError, ValueError):
            raise Mismatch(shown, expected, got, "return a tensor (or list) of indices.")
        if as_list != expected.tolist():
            hint = ("sort the kept indices in increasing order (.sort().values)."
                    if sorted(as_list) == expected.tolist() else "")
            raise Mismatch(shown, expected, got, hint)
    return "Li et al. 2017 prune VGG-16's filters of smallest L1 norm this way."


# ---------------------------------------------------------------- task 5: channel surgery
def ref_remove_conv_channels(conv: nn.Conv2d, next_conv: nn.Conv2d,
                             keep: torch.Tensor) -> tuple[nn.Conv2d, nn.Conv2d]:
    def like(layer: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Conv2d:
        new = nn.Conv2d(weight.shape[1], weight.shape[0], layer.kernel_size, layer.stride,
                        layer.padding, layer.dilation, bias=bias is not None)
        with torch.no_grad():
            new.weight.copy_(weight)
            if bias is not None:
                new.bias.copy_(bias)
        return new

    bias = None if conv.bias is None else conv.bias.detach()[keep]
    first = like(conv, conv.weight.detach()[keep], bias)  # (K, C_in, k, k): kept filters
    nb = None if next_conv.bias is None else next_conv.bias.detach()
    second = like(next_conv, next_conv.weight.detach()[:, keep], nb)  # (O, K, k, k)
    return first, second


def _surgery_cases() -> list[tuple[str, nn.Conv2d, nn.Conv2d, torch.Tensor]]:
    torch.manual_seed(51)
    cases = [("conv 3->8 (3x3, padding 1) then conv 8->4 (3x3)", nn.Conv2d(3, 8, 3, padding=1),
              nn.Conv2d(8, 4, 3), torch.tensor([0, 2, 5])),
             ("no biases, stride 2", nn.Conv2d(2, 6, 3, stride=2, bias=False),
              nn.Conv2d(6, 5, 1, bias=False), torch.tensor([1, 4])),
             ("keep one channel", nn.Conv2d(1, 4, 5), nn.Conv2d(4, 2, 3, padding=2),
              torch.tensor([3])),
             ("keep every channel", nn.Conv2d(3, 5, 3), nn.Conv2d(5, 2, 3), torch.arange(5))]
    rng = random.Random(52)
    for i in range(3):
        c_in, c, c_out = rng.randint(1, 6), rng.randint(2, 16), rng.randint(1, 8)
        k = rng.choice([1, 3, 5])
        keep = torch.tensor(sorted(rng.sample(range(c), rng.randint(1, c))))
        cases.append((f"random case {i + 1}: conv {c_in}->{c} ({k}x{k}) then conv {c}->{c_out}",
                      nn.Conv2d(c_in, c, k, padding=k // 2, bias=rng.random() < 0.5),
                      nn.Conv2d(c, c_out, 3, padding=1), keep))
    return cases


def _same_layer(got, want: nn.Conv2d, what: str, shown: str) -> None:
    if not isinstance(got, nn.Conv2d):
        raise Mismatch(shown, Text(f"{what}: an nn.Conv2d"), Text(type(got).__name__))
    for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                 "groups"):
        if getattr(got, attr) != getattr(want, attr):
            hint = ("the first conv keeps len(keep) output channels, and the next conv must "
                    "read only those: its in_channels is len(keep) too." if "channels" in attr
                    else "build each new nn.Conv2d with the old layer's kernel_size, stride, "
                         "padding and dilation.")
            raise Mismatch(shown, Text(f"{what}.{attr} = {getattr(want, attr)}"),
                           Text(f"{getattr(got, attr)}"), hint)
    if not close(got.weight.detach(), want.weight.detach()):
        hint = ("the first conv keeps rows weight[keep] (its output filters); the next conv "
                "keeps columns weight[:, keep] (its input channels).")
        raise Mismatch(shown, Text(f"{what}.weight = the kept slices of the old weight"),
                       Text(f"{what}.weight of shape {tuple(got.weight.shape)} with other values"),
                       hint)
    if (got.bias is None) != (want.bias is None) or (
            want.bias is not None and not close(got.bias.detach(), want.bias.detach())):
        raise Mismatch(shown, Text(f"{what}.bias = {describe(want.bias)}"),
                       Text(describe(got.bias)),
                       "the first conv keeps bias[keep]; the next conv keeps its whole bias "
                       "(one per OUTPUT channel); no bias stays no bias.")


@task("pruning", points=2, hint="Lecture 01, section 5 (Filter pruning: remove whole filters "
      "(Li et al. 2017; ThiNet, Luo et al. 2017)) says which dimension of each layer's weight "
      "loses channel j; check the channels, kernel size, stride, padding and bias of both new "
      "layers against the old ones.")
def remove_conv_channels(student):
    """remove_conv_channels(conv, next_conv, keep) -> (smaller conv, smaller next conv)."""
    g = torch.Generator().manual_seed(53)
    for label, conv, next_conv, keep in _surgery_cases():
        shown = f"({label}, keep={keep.tolist()})"
        before = (copy.deepcopy(conv), copy.deepcopy(next_conv))
        want = ref_remove_conv_channels(conv, next_conv, keep)
        got = call(student, shown, conv, next_conv, keep.clone())
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Mismatch(shown, Text("a pair (new conv, new next conv)"), got)
        for old, copied in zip((conv, next_conv), before):
            if not close(old.weight.detach(), copied.weight.detach()):
                raise Mismatch(shown, Text("the original layers unchanged"),
                               Text("an original layer was modified"),
                               "build new layers; slicing copies the weights you need.")
        _same_layer(got[0], want[0], "new conv", shown)
        _same_layer(got[1], want[1], "new next conv", shown)
        # The point of it all: the smaller pair computes what the big pair computes when the
        # removed channels are zero.
        x = torch.randn(2, conv.in_channels, 9, 9, generator=g)
        with torch.no_grad():
            zeroed = torch.relu(conv(x)) * torch.isin(torch.arange(conv.out_channels),
                                                      keep).view(1, -1, 1, 1)
            ours = got[1](torch.relu(got[0](x)))
            if not close(ours, next_conv(zeroed), rtol=1e-4, atol=1e-5):
                raise Mismatch(shown, Text("the same outputs as the big pair with the removed "
                                            "channels set to zero"), Text("other outputs"))
    return "nclib.pruning.surgery.remove_channels does this for whole networks, BatchNorm included."


# ---------------------------------------------------------------- task 6: compression arithmetic
def ref_compression_rates(num_weights, kept_fractions, index_bits: int = 5,
                          value_bits: int = 32) -> tuple[float, float]:
    total = sum(num_weights)
    kept = sum(n * k for n, k in zip(num_weights, kept_fractions))  # weights that stay
    dense_bits = 32 * total  # fp32: 32 bits a weight
    sparse_bits = kept * (value_bits + index_bits)  # each kept weight: its value + a gap
    return total / kept, dense_bits / sparse_bits


def _rate_cases() -> list[tuple[tuple, dict]]:
    lenet300 = ([784 * 300, 300 * 100, 100 * 10], [0.08, 0.09, 0.26])  # Han et al., Table 2
    lenet5 = ([500, 25000, 400000, 5000], [0.66, 0.12, 0.08, 0.19])  # Han et al., Table 3
    fixed = [(lenet300, {}), (lenet5, {}), (lenet300, {"index_bits": 4}),
             (lenet300, {"value_bits": 8}),  # Deep Compression: 8-bit shared weights
             (([1000], [1.0]), {"index_bits": 0}),  # nothing pruned, no index: 1x and 1x
             (([10, 90], [0.5, 0.1]), {"index_bits": 8, "value_bits": 16})]
    rng = random.Random(61)
    for _ in range(5):
        n = rng.randint(1, 5)
        fixed.append((([rng.randint(10, 10**6) for _ in range(n)],
                       [round(rng.uniform(0.01, 1.0), 3) for _ in range(n)]),
                      {"index_bits": rng.randint(2, 8), "value_bits": rng.choice([4, 8, 16, 32])}))
    return fixed


@task("pruning", points=1, hint="Lecture 01, section 3 (A masked model is not a smaller model: "
      "sparse storage) counts the bits a kept weight costs with relative indices (Deep "
      "Compression, Section 2); check your weights rate on Han et al.'s LeNet-300-100 fractions "
      "(their Table 2) against the paper's 12x.")
def compression_rates(student):
    """compression_rates(num_weights, kept_fractions, index_bits=5, value_bits=32) ->
    (weights rate, storage rate)."""
    for (num_weights, kept), kwargs in _rate_cases():
        shown = f"({num_weights}, {kept}" + "".join(f", {k}={v}" for k, v in kwargs.items()) + ")"
        expected = ref_compression_rates(num_weights, kept, **kwargs)
        got = call(student, shown, list(num_weights), list(kept), **kwargs)
        got = tuple(_as_float(v) for v in got) if isinstance(got, (tuple, list)) else got
        if not close(got, expected, rtol=1e-4):
            raise Mismatch(shown, expected, got)
    return "Han et al.'s 12x for LeNet-300-100 is about 10.6x in bytes once each weight " \
           "carries a 5-bit index."
