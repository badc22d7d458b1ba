"""Chapter 06 experiment `fbs`: Feature Boosting and Suppression against static filter pruning
of the same network at the same MACs (Gao et al., ICLR 2019, Table 2 at digit scale).

The network is `SmallVGG(CFG)` (conv-BN-ReLU, 2 x 2 max pools, global average pool, linear)
trained on the bundled digits. For each MAC reduction (2x, 3x, 4x):

* FBS: `FBSNet.from_plain` (the same weights, predictors that start at saliency 1) at the
  density whose MACs, predictors included, are that many times fewer; fine-tuned
  `FINE_TUNE` epochs with the lasso on the saliencies.
* Static: the same trained network with the smallest-L1 filters of every layer removed
  (Li et al., ICLR 2017, chapter 01's `prune_l1_filters`) to as few MACs, fine-tuned the
  same epochs at the same learning rate.

Width: gathering filters costs time at batch 1, so skipping pays only where convolutions
are big enough; at (64, M, 128, M, 128) the 2x model ran at 0.9-1.0x of dense here, at
`CFG` it gains (the lecture's per-width table shows why).
"""
from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from nclib import data, measure, train, zoo
from nclib.chapters.dynamic.experiments.blockdrop import per_image_ms
from nclib.course.papers import table
from nclib.course.reproduce import Run, experiment
from nclib.dynamic import FBSConv2d, FBSNet, SkippingFBS, kept_channels, winner_take_all
from nclib.models import SmallVGG
from nclib.pruning.structured import prune_l1_filters
from nclib.pruning.structured import num_kept
from nclib.pruning.surgery import fold_for_inference

CFG = (64, "M", 128, 128, "M", 256)
BASE = dict(epochs=8, lr=2e-3)  # SmallVGG from scratch (the lecture's vgg_small recipe)
FINE_TUNE = dict(epochs=2, lr=1e-3)  # both FBS and static pruning, from the trained base
LASSO = 1e-3  # weight of sum_l mean |s_l|: small, so that it sparsifies without costing accuracy
REDUCTIONS = (2, 3, 4)
INPUT = (1, 28, 28)

__all__ = ["CFG", "BASE", "FINE_TUNE", "LASSO", "REDUCTIONS", "INPUT", "base_name", "fbs_name",
           "static_name", "DENSITIES", "SPARSITIES", "fbs_macs", "density_for", "static_sparsity_for", "fbs_model",
           "static_model", "dense_for_inference", "skipping_difference", "gather_cost", "run_fbs"]


def base_name() -> str:
    return "dyn-cnn"


def fbs_name(reduction: int) -> str:
    return f"dyn-fbs-{reduction}x"


def static_name(reduction: int) -> str:
    return f"dyn-l1-{reduction}x"


def fbs_macs(cfg=CFG, density: float = 1.0, in_channels: int = 1, num_classes: int = 10) -> int:
    """MACs of one 28 x 28 image at `density`, predictors included (the same for every image):
    per layer k_in x C_out for the predictor and k_out x k_in x 9 x H x W for the kept filters,
    then k x classes. Counted as `SkippingFBS` counts them (a test compares)."""
    k_in, size, macs = in_channels, INPUT[1], 0  # the classifier reads k x H' x W' values
    for v in cfg:
        if v == "M":
            size //= 2
            continue
        k_out = kept_channels(v, density)
        macs += k_in * v + k_out * k_in * 9 * size * size
        k_in = k_out
    return macs + k_in * size * size * num_classes


def density_for(reduction: float, cfg=CFG) -> float:
    """The largest density (a multiple of 0.01) whose MACs are `reduction` times fewer than
    the plain network's."""
    dense = fbs_macs(cfg) - sum(c for c in _inputs_times_outputs(cfg))  # no predictors
    for step in range(100, 0, -1):
        if fbs_macs(cfg, step / 100) * reduction <= dense:
            return step / 100
    raise ValueError(f"reduction={reduction!r}: no density reaches it")


def _inputs_times_outputs(cfg) -> list[int]:
    convs = [v for v in cfg if v != "M"]
    return [a * b for a, b in zip([1, *convs], convs)]


def static_sparsity_for(reduction: float, cfg=CFG) -> float:
    """The smallest per-layer filter sparsity (a multiple of 0.01) whose L1-pruned network has
    `reduction` times fewer MACs (`num_kept` filters in every layer)."""
    dense = fbs_macs(cfg) - sum(_inputs_times_outputs(cfg))
    for step in range(100):
        widths = [v if v == "M" else num_kept(v, step / 100) for v in cfg]
        if (fbs_macs(widths) - sum(_inputs_times_outputs(widths))) * reduction <= dense:
            return step / 100
    raise ValueError(f"reduction={reduction!r}: pruning cannot reach it")


# What density_for and static_sparsity_for give for CFG (a test recomputes them): fixed here
# so that importing the chapter computes nothing.
DENSITIES = {2: 0.7, 3: 0.57, 4: 0.49}
SPARSITIES = {2: 0.3, 3: 0.43, 4: 0.51}


def _build_base(cfg: list, **_) -> nn.Module:
    return SmallVGG(tuple(cfg))


def _train_base(cfg: list, epochs: int, lr: float, progress: bool = True):
    torch.manual_seed(0)
    net = SmallVGG(tuple(cfg))
    L = data.loaders("mnist", seed=0)
    h = train.fit(net, L.train, L.val, epochs=epochs, lr=lr, progress=progress, desc="dyn-cnn")
    return net, {"test_accuracy": train.evaluate(net, L.test), "val_accuracy": h.val_acc[-1]}


class LassoLoss:
    """cross entropy + strength x sum_l mean |s_l| of the FBS net's last forward (Section 3.3)."""

    def __init__(self, net: FBSNet, strength: float = LASSO):
        self.net, self.strength = net, strength

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y) + self.strength * self.net.lasso()


def _build_fbs(cfg: list, density: float, **_) -> nn.Module:
    return FBSNet(tuple(cfg), density)


def _train_fbs(cfg: list, density: float, epochs: int, lr: float, lasso: float, base: dict,
               progress: bool = True):
    base = zoo.trained(base_name(), progress=progress)
    net = FBSNet.from_plain(base, density)
    L = data.loaders("mnist", seed=0)
    train.fine_tune(net, L.train, epochs, lr=lr, loss_fn=LassoLoss(net, lasso), progress=progress)
    return net, {"test_accuracy": train.evaluate(net, L.test)}


def _build_static(cfg: list, sparsity: float, **_) -> nn.Module:
    return prune_l1_filters(SmallVGG(tuple(cfg)), sparsity)  # the pruned shapes


def _train_static(cfg: list, sparsity: float, epochs: int, lr: float, base: dict, progress: bool = True):
    pruned = prune_l1_filters(zoo.trained(base_name(), progress=progress), sparsity)
    L = data.loaders("mnist", seed=0)
    train.fine_tune(pruned, L.train, epochs, lr=lr, progress=progress)
    return pruned, {"test_accuracy": train.evaluate(pruned, L.test)}


zoo.register(base_name(), train=_train_base, build=_build_base, settings=dict(cfg=list(CFG), **BASE),
             depends_on=(SmallVGG,),
             description=f"chapter 06: SmallVGG {CFG}, Adam {BASE['lr']:g}, {BASE['epochs']} epochs")
# The fine-tuned models start from the base: its recipe's key is part of their settings, so
# a changed base retrains them (the zoo hashes a recipe's own code and settings only).
_BASE_KEY = {"key": zoo.RECIPES[base_name()].key}
for _r in REDUCTIONS:
    _d = DENSITIES[_r]
    zoo.register(fbs_name(_r), train=_train_fbs, build=_build_fbs,
                 settings=dict(cfg=list(CFG), density=_d, lasso=LASSO, base=_BASE_KEY, **FINE_TUNE),
                 depends_on=(FBSNet, FBSConv2d, SmallVGG, winner_take_all, kept_channels, LassoLoss,
                             _train_base),
                 description=f"chapter 06: FBS of dyn-cnn at density {_d:g} ({_r}x fewer MACs), "
                             f"{FINE_TUNE['epochs']} epochs with the lasso")


for _r in REDUCTIONS:
    zoo.register(static_name(_r), train=_train_static, build=_build_static,
                 settings=dict(cfg=list(CFG), sparsity=SPARSITIES[_r], base=_BASE_KEY, **FINE_TUNE),
                 depends_on=(SmallVGG, _train_base, prune_l1_filters),
                 description=f"chapter 06: dyn-cnn without {100 * SPARSITIES[_r]:.0f}% of each "
                             f"layer's filters (L1, {_r}x fewer MACs), fine-tuned "
                             f"{FINE_TUNE['epochs']} epochs")


def fbs_model(reduction: int) -> FBSNet:
    return zoo.trained(fbs_name(reduction), progress=False)


def static_model(reduction: int) -> nn.Module:
    return zoo.trained(static_name(reduction), progress=False)


def dense_for_inference(model: nn.Module) -> nn.Module:
    """A plain network as it is best run on a CPU: BatchNorm folded, channels-last."""
    return fold_for_inference(model)


def skipping_difference(net: FBSNet, x: torch.Tensor, dtype: torch.dtype = torch.float64) -> float:
    """max |masked logits - skipping logits| over the images `x`, both computed in `dtype`.

    In float64 the difference is the algorithms' alone; in float32 folding BatchNorm and
    summing in another order add rounding of about 1e-5 relative (7e-5 on logits near 30)."""
    net = copy.deepcopy(net).to(dtype).eval()
    with torch.no_grad():
        return (net(x.to(dtype)) - SkippingFBS(net)(x.to(dtype))).abs().max().item()


def _fastest_ms(fns, repeats: int, seconds: float) -> list[float]:
    """Each function's fastest call in ms, the functions taking turns call by call (a slow
    spell of the machine hits all alike) for at least `repeats` turns and `seconds` in all."""
    best = [float("inf")] * len(fns)
    with torch.inference_mode():
        for _ in range(3):
            for fn in fns:
                fn()
        turns, start = 0, time.perf_counter()
        while turns < repeats or time.perf_counter() - start < seconds:
            for i, fn in enumerate(fns):
                t0 = time.perf_counter()
                fn()
                best[i] = min(best[i], time.perf_counter() - t0)
            turns += 1
    return [1000 * b for b in best]


def gather_cost(widths=(16, 32, 64, 128, 256), density: float = 0.7, size: int = 14,
                repeats: int = 30, seconds: float = 0.05) -> list[dict]:
    """Batch-1 time of one 3 x 3 convolution of C channels to C on a `size` x `size` map,
    dense against the skipping way (gather ceil(d x C) filters and their input slices, then
    convolve only those), one thread; random weights (time does not depend on them).

    Each way's time is its fastest call, the two alternating for at least `repeats` turns and
    `seconds` (a 16-channel call takes about 20 microseconds: the median of 30 calls each
    way, one way after the other, put that row's speed-up anywhere from 0.6x to 1.5x inside
    lecture 06; the fastest of alternating calls held it at 0.85-0.93x in 8 runs, the
    256-channel row at 1.16-1.52x)."""
    if repeats < 1 or seconds < 0:
        raise ValueError(f"repeats={repeats!r}, seconds={seconds!r}: need repeats >= 1, seconds >= 0")
    rows, g, old = [], torch.Generator().manual_seed(0), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for c in widths:
            w, x = torch.randn(c, c, 3, 3, generator=g), torch.randn(1, c, size, size, generator=g)
            k = kept_channels(c, density)
            keep_in, keep_out = torch.randperm(c, generator=g)[:k], torch.randperm(c, generator=g)[:k]
            x_kept = x.index_select(1, keep_in)

            def dense(w=w, x=x):
                return F.conv2d(x, w, padding=1)

            def skipping(w=w, x_kept=x_kept, keep_in=keep_in, keep_out=keep_out):
                return F.conv2d(x_kept, w.index_select(0, keep_out).index_select(1, keep_in), padding=1)
            ms = _fastest_ms((dense, skipping), repeats, seconds)
            rows.append(dict(channels=c, kept=k, dense_ms=ms[0], skipping_ms=ms[1],
                             speedup=ms[0] / ms[1], mac_ratio=(c / k) ** 2))
    finally:
        torch.set_num_threads(old)
    return rows


def run_fbs(run: Run, reductions=REDUCTIONS, get_base=None, get_fbs=fbs_model,
            get_static=static_model, rounds: int = 7, timed_images: int = 100) -> dict:
    """Accuracy, MACs and batch-1 latency of FBS and static pruning per reduction; the claims.

    Latency: `timed_images` test digits run one at a time, each choosing its own channels
    (`blockdrop.per_image_ms`: one thread, the models taking turns, each image its best of `rounds`)."""
    base = (get_base or (lambda: zoo.trained(base_name(), progress=False)))().eval()
    test = data.loaders("mnist").test
    X = torch.cat([x for x, _ in test])[:200]
    base_acc = 100 * train.evaluate(base, test)
    dense_macs = measure.count_macs(base, INPUT).total
    paper = {r[0]: r for r in table("fbs").rows}
    run.row("SmallVGG: test accuracy", None, round(base_acc, 1), "%")
    run.row("SmallVGG: MACs per image", None, dense_macs, "MACs")
    dense = dense_for_inference(base)
    out = {"base_acc": base_acc, "dense_macs": dense_macs, "rows": {}}
    for r in reductions:
        fbs, static = get_fbs(r).eval(), get_static(r).eval()
        fbs_acc, static_acc = 100 * train.evaluate(fbs, test), 100 * train.evaluate(static, test)
        macs = SkippingFBS(fbs).forward_with_macs(X[:1])[1][0]
        static_macs = measure.count_macs(static, INPUT).total
        ms = per_image_ms([dense, SkippingFBS(fbs), dense_for_inference(static)], X[:timed_images], rounds)
        row = dict(density=fbs.density, fbs_acc=fbs_acc, static_acc=static_acc,
                   ratio=dense_macs / macs, static_ratio=dense_macs / static_macs,
                   speedup=ms[0] / ms[1], static_speedup=ms[0] / ms[2],
                   difference=skipping_difference(fbs, X),
                   difference_fp32=skipping_difference(fbs, X, torch.float32))
        out["rows"][r] = row
        cols = {3: 2, 4: 3}.get(r)  # the paper's 3x and 4x columns
        run.row(f"{r}x: FBS at density {fbs.density:g}, MAC reduction (predictors counted)", r, round(row["ratio"], 2), "x")
        run.row(f"{r}x: FBS accuracy drop (paper: top-5 error increase)",
                paper["Feature Boosting and Suppression (FBS)"][cols] if cols else None,
                round(base_acc - fbs_acc, 1), "points")
        run.row(f"{r}x: L1 filter pruning accuracy drop (paper: Filter Pruning)",
                paper["Filter Pruning"][cols] if cols else None, round(base_acc - static_acc, 1), "points")
        run.row(f"{r}x: network slimming, paper only", paper["Network Slimming"][cols] if cols else None,
                None, "points")
        run.row(f"{r}x: max |masked - skipping| logit, float64 / float32", None,
                f"{row['difference']:.1e} / {row['difference_fp32']:.1e}", "")
        run.row(f"{r}x: batch-1 speed-up over {timed_images} digits, FBS skipping / static pruned", None,
                f"{row['speedup']:.2f} / {row['static_speedup']:.2f}", "x")
    for r, row in out["rows"].items():
        run.claim(f"{r}x: the skipping inference equals the masked one on 200 test digits (float64)",
                  f"{row['difference']:.1e}", "< 1e-5", row["difference"] < 1e-5)
    top = max(out["rows"])
    if top >= 4:
        row = out["rows"][top]
        run.claim(f"{top}x: FBS loses less accuracy than static L1 filter pruning "
                  f"({row['fbs_acc']:.1f}% vs {row['static_acc']:.1f}%)",
                  round(base_acc - row["fbs_acc"], 1), f"< {base_acc - row['static_acc']:.1f}",
                  row["fbs_acc"] > row["static_acc"])
    if 2 in out["rows"]:
        row = out["rows"][2]
        run.claim(f"2x: batch-1 speed-up at least half the MAC reduction ({row['ratio']:.2f}x)",
                  round(row["speedup"], 2), f">= {0.5 * row['ratio']:.2f}", row["speedup"] >= 0.5 * row["ratio"])
    return out


@experiment("fbs", dataset="MNIST, the 5,000 bundled digits (1,000 test)",
            scale=f"SmallVGG {CFG} and its FBS twin; fine-tune {FINE_TUNE['epochs']} epochs Adam "
                  f"{FINE_TUNE['lr']:g} for FBS and L1 filter pruning alike; latency batch 1 over "
                  "100 test digits, one thread; the paper: VGG-16 on ImageNet, top-5 error",
            summary="FBS vs static filter pruning at 2x/3x/4x fewer MACs, skipping really timed")
def fbs_experiment(run: Run) -> None:
    run_fbs(run)
