"""Chapter 01: the pruning tables of the lecture, at the scale of the bundled digits.

* `han2015-lenet300`, `han2015-lenet5`: Han et al., "Learning both Weights and Connections
  for Efficient Neural Networks" (NIPS 2015), Tables 1-3: iterative magnitude pruning with
  retraining; compression, test error and the weights kept per layer beside the paper's.
* `thinet`: Luo et al., "ThiNet" (ICCV 2017): half the filters of one SmallVGG layer chosen
  by ThiNet, by L1 norm (Li et al., ICLR 2017) and at random; the next layer's
  reconstruction error and the accuracy before fine-tuning.
* `filter-pruning-vgg`: SmallVGG filter-pruned by ThiNet to under half its MACs and
  fine-tuned: parameters, MACs, bytes and measured CPU latency, beside an unstructured
  model with as many nonzero weights, which is no faster.
* `rethinking`: Liu et al., "Rethinking the Value of Network Pruning" (ICLR 2019): the
  pruned architecture fine-tuned, trained from scratch for the dense model's epochs
  (Scratch-E) and for its compute budget (Scratch-B).

Data: the 5,000 bundled MNIST digits (3,500 train / 500 val / 1,000 test), so one test digit
is 0.1 point of accuracy; every training run gets fresh loaders with a fixed seed.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from nclib import data, measure, zoo
from nclib.course.papers import table
from nclib.course.reproduce import Run, experiment
from nclib.pruning import magnitude, schedules, structured, surgery
from nclib.pruning.surgery import fold_for_inference  # noqa: F401  (the lecture uses it from here)
from nclib.train import evaluate, fit

DATASET = "MNIST, the 5,000 bundled digits (3,500 train / 1,000 test)"
SHAPE = (1, 28, 28)

# ---------------------------------------------------------------- Han et al. 2015
# Retraining: Adam 1e-3 with L2 1e-4 (Han et al., Section 3.1: L2 regularization gives the
# best accuracy after retraining). The zoo's dense models were trained without L2, so a
# control row gives the dense model the same extra epochs.
RETRAIN = dict(lr=1e-3, weight_decay=1e-4, progress=False)
FINAL_SPARSITY = 0.92  # of the Linear and Conv2d weights, one global magnitude threshold
# (prune steps of the AGP schedule, epochs of retraining after each)
SCHEDULE = {"lenet300": (3, 2), "lenet5": (4, 1)}
# Han et al. 2015, Table 3: the fraction of LeNet-5's weights kept in each layer.
HAN_LENET5_KEPT = dict(table("han2015-lenet5-layers").rows)
PAPER_LABEL = {"lenet300": "LeNet-300-100", "lenet5": "LeNet-5"}


def _paper_kept(name: str) -> dict[str, float]:
    if name == "lenet300":
        return dict(table("han2015-lenet300-layers").rows)
    return dict(HAN_LENET5_KEPT)


def _prune_lenet(name: str, sparsity, scope: str) -> nn.Module:
    """The zoo model pruned iteratively (AGP schedule) with retraining."""
    num_steps, epochs = SCHEDULE[name]
    model = zoo.trained(name, progress=False)
    torch.manual_seed(0)
    schedules.prune_iteratively(model, data.loaders("mnist", seed=0).train, sparsity, num_steps,
                                epochs, scope=scope, **RETRAIN)
    return model


def _han(run: Run, name: str, min_rate: float, max_kept_pct: float | None = None) -> None:
    test = data.loaders("mnist").test
    han = table("han2015")
    label = PAPER_LABEL[name]
    num_steps, epochs = SCHEDULE[name]
    dense = zoo.trained(name, progress=False)
    dense_acc = evaluate(dense, test)
    control = zoo.trained(name, progress=False)
    torch.manual_seed(0)
    fit(control, data.loaders("mnist", seed=0).train, epochs=num_steps * epochs, **RETRAIN)
    pruned = _prune_lenet(name, FINAL_SPARSITY, "global")
    acc = evaluate(pruned, test)
    params, nonzeros = measure.count_params(pruned), measure.count_nonzero(pruned)
    kept = 1 - magnitude.global_sparsity(pruned)
    rate = params / nonzeros
    paper_kept = _paper_kept(name)
    han_rates = _prune_lenet(name, {l: 1 - k for l, k in paper_kept.items()}, "layer")

    run.row("dense params", han.row(f"{label} Ref")["params"], measure.count_params(dense), "params")
    run.row("pruned: nonzero params", han.row(f"{label} Pruned")["params"], nonzeros, "params")
    run.row("compression (params / nonzeros)", han.row(f"{label} Pruned")["compression"],
            round(rate, 2), "x")
    run.row("dense test error", han.row(f"{label} Ref")["top1_error_pct"], 100 * (1 - dense_acc), "%")
    run.row("pruned test error", han.row(f"{label} Pruned")["top1_error_pct"], 100 * (1 - acc), "%")
    run.row("dense + same retraining, test error", None,
            100 * (1 - evaluate(control, test)), "%")
    for layer, fraction in magnitude.layer_sparsity(pruned).items():
        run.row(f"{layer}: weights kept", 100 * paper_kept[layer], 100 * (1 - fraction), "%")
    run.row("all weights kept", None, 100 * kept, "%")
    run.row("size dense_fp32", None, measure.storage_bytes(dense, "dense_fp32"), "bytes")
    run.row("size of the pruned model, sparse_relative", None,
            measure.storage_bytes(pruned, "sparse_relative"), "bytes")
    run.row("Han's per-layer rates instead: compression", None,
            round(params / measure.count_nonzero(han_rates), 2), "x")
    run.row("Han's per-layer rates instead: test error", None,
            100 * (1 - evaluate(han_rates, test)), "%")
    if max_kept_pct is not None:
        run.claim(f"keeps at most {max_kept_pct:g}% of the weights ({100 * kept:.2f}% kept)",
                  round(100 * kept, 2), f"<= {max_kept_pct:g}", 100 * kept <= max_kept_pct)
    run.claim(f"at least {min_rate:g}x fewer nonzero parameters ({rate:.2f}x)", round(rate, 2),
              f">= {min_rate:g}", rate >= min_rate)
    run.claim(f"test accuracy no more than 0.3 points below dense ({100 * acc:.1f}% vs "
              f"{100 * dense_acc:.1f}%)", round(100 * (acc - dense_acc), 2), ">= -0.3",
              acc >= dense_acc - 0.003 - 1e-9)


_HAN_SCALE = ("zoo model; one global magnitude threshold to {s:.0%} of the weights in {n} "
              "AGP steps, {e} epoch(s) of retraining after each (Adam 1e-3, L2 1e-4)")


@experiment("han2015-lenet300", dataset=DATASET,
            scale=_HAN_SCALE.format(s=FINAL_SPARSITY, n=3, e=2),
            summary="LeNet-300-100 pruned 12x with retraining, beside Han et al. 2015")
def han2015_lenet300(run: Run) -> None:
    _han(run, "lenet300", min_rate=12, max_kept_pct=8.3)


@experiment("han2015-lenet5", dataset=DATASET,
            scale=_HAN_SCALE.format(s=FINAL_SPARSITY, n=4, e=1),
            summary="LeNet-5 pruned >= 10x with retraining, beside Han et al. 2015")
def han2015_lenet5(run: Run) -> None:
    _han(run, "lenet5", min_rate=10)


# ---------------------------------------------------------------- ThiNet, one layer
THINET_LAYER = "features.7"  # SmallVGG's third conv (32 filters, 14x14), read by features.10
NUM_RANDOM = 3  # random filters: the mean over this many seeds


def one_layer_comparison(model: nn.Module, name: str, pruners: list, X_val: torch.Tensor,
               test) -> tuple[float, float]:
    """Mean (reconstruction error, test accuracy) over `pruners`, half the filters removed."""
    num_keep = structured.num_kept(model.get_submodule(name).out_channels, 0.5)
    errors, accs = [], []
    for pruner in pruners:
        keep = pruner.compute_keep(model, name, num_keep).sort().values
        scales = pruner.compute_scales(model, name, keep)
        errors.append(structured.reconstruction_error(model, name, keep, X_val, scales))
        small = surgery.remove_channels(model, {name: keep},
                                        None if scales is None else {name: scales})
        accs.append(evaluate(small, test))
    return sum(errors) / len(errors), sum(accs) / len(accs)


@experiment("thinet", dataset=DATASET,
            scale=f"SmallVGG (zoo); 50% of the filters of one conv layer ({THINET_LAYER}, "
                  "and each other layer alone); ThiNet samples 4,096 outputs of 256 train "
                  "digits; errors on 500 val digits; random: mean of 3 seeds; no fine-tuning",
            summary="ThiNet vs L1-norm vs random filters: reconstruction error and accuracy")
def thinet(run: Run) -> None:
    L = data.loaders("mnist")
    model = zoo.trained("vgg_small", progress=False)
    X_train, X_val = L.train.dataset.tensors[0][:256], L.val.dataset.tensors[0]
    methods = {"ThiNet": [structured.ThiNetPruner(X_train)],
               "L1 norm": [structured.L1FilterPruner()],
               "random": [structured.RandomFilterPruner(seed) for seed in range(NUM_RANDOM)]}
    paper = table("thinet")
    run.row("VGG-16 (ImageNet) top-1, original", paper.row("Original")["top1_pct"], None, "%")
    run.row("VGG-16 (ImageNet) top-1, ThiNet-Conv fine-tuned",
            paper.row("ThiNet-Conv")["top1_pct"], None, "%")
    run.row("dense SmallVGG test accuracy", None, 100 * evaluate(model, L.test), "%")
    results = {m: one_layer_comparison(model, THINET_LAYER, p, X_val, L.test) for m, p in methods.items()}
    for method, (error, acc) in results.items():
        run.row(f"{THINET_LAYER} {method}: reconstruction error", None, round(error, 4))
        run.row(f"{THINET_LAYER} {method}: accuracy before fine-tuning", None, 100 * acc, "%")
    for name in surgery.channel_prunable_layers(model):
        if name == THINET_LAYER:
            continue
        cells = [one_layer_comparison(model, name, p, X_val, L.test) for p in methods.values()]
        run.row(f"{name} alone: error ThiNet / L1 / random", None,
                " / ".join(f"{e:.3f}" for e, _ in cells))
        run.row(f"{name} alone: accuracy ThiNet / L1 / random", None,
                " / ".join(f"{100 * a:.1f}%" for _, a in cells))
    (t_err, t_acc), (l_err, l_acc), (r_err, r_acc) = results.values()
    run.claim(f"on {THINET_LAYER}, ThiNet's reconstruction error ({t_err:.3f}) is below L1's "
              f"({l_err:.3f}) and random's ({r_err:.3f})", round(t_err, 4),
              f"< {min(l_err, r_err):.4f}", t_err < l_err and t_err < r_err)
    run.claim(f"on {THINET_LAYER}, ThiNet's accuracy before fine-tuning ({100 * t_acc:.1f}%) is "
              f"above L1's ({100 * l_acc:.1f}%) and random's ({100 * r_acc:.1f}%)",
              round(100 * t_acc, 2), f"> {100 * max(l_acc, r_acc):.2f}",
              t_acc > l_acc and t_acc > r_acc)


# ---------------------------------------------------------------- filter pruning, whole network
# Half the filters of the first conv of each block (16 -> 8, 32 -> 16, 64 -> 32): the MACs
# halve exactly. Removing 30% of every conv's filters instead (cfg 8, 8, 24, 24, 48) cut
# 2.33x the MACs but measured only 1.37-1.40x faster at batch 64 (0.59-0.60 of the MAC
# ratio); this plan measured 1.50x for 2.00x (0.75), because it also halves the inputs of
# the wide 28x28 layer and the time of small convolutions follows memory traffic.
FILTER_PLAN, ROUND_TO = {"features.0": 0.5, "features.7": 0.5, "features.14": 0.5}, 8
PLAN_TEXT = "half the filters of each block's first conv (features.0, .7, .14)"
FINE_TUNE = dict(epochs=2, lr=3e-4, progress=False)
LATENCY = dict(batch_size=64, rounds=5, repeats=20)


def best_latencies(models: list[nn.Module], batch_size: int, rounds: int,
                   repeats: int) -> list[measure.Latency]:
    """`measure.best_latencies` on one channels_last batch of digits-shaped inputs."""
    x = torch.randn(batch_size, *SHAPE, generator=torch.Generator().manual_seed(0))
    return measure.best_latencies(models, x.contiguous(memory_format=torch.channels_last),
                                  rounds=rounds, repeats=repeats)


def filter_pruned_vgg() -> tuple[nn.Module, nn.Module, float]:
    """(dense zoo SmallVGG, its ThiNet-pruned copy before fine-tuning, that copy's accuracy)."""
    L = data.loaders("mnist")
    dense = zoo.trained("vgg_small", progress=False)
    pruned = dense
    for layer, sparsity in FILTER_PLAN.items():  # layer by layer, as ThiNet does
        pruned = structured.prune_thinet(pruned, sparsity, L.train.dataset.tensors[0][:256],
                                         layers=[layer], round_to=ROUND_TO)
    return dense, pruned, evaluate(pruned, L.test)


def _num_weights(model: nn.Module) -> int:
    """Weights of the Linear and Conv2d layers (what magnitude pruning can remove)."""
    return sum(layer.weight.numel() for layer in magnitude.prunable_layers(model).values())


def _fine_tune(model: nn.Module, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    fit(model, data.loaders("mnist", seed=0).train, **{**FINE_TUNE, **kwargs})
    return model


@experiment("filter-pruning-vgg", dataset=DATASET,
            scale=f"SmallVGG (zoo); ThiNet removes {PLAN_TEXT}; fine-tune "
                  f"{FINE_TUNE['epochs']} epochs, Adam {FINE_TUNE['lr']:g}; latency: batch "
                  f"{LATENCY['batch_size']}, BatchNorm folded, channels_last, fastest median "
                  f"of {LATENCY['rounds']} alternating rounds of {LATENCY['repeats']} runs",
            summary="filter-pruned SmallVGG: params, MACs, bytes, CPU latency, accuracy")
def filter_pruning_vgg(run: Run) -> None:
    test = data.loaders("mnist").test
    dense, pruned, before = filter_pruned_vgg()
    _fine_tune(pruned)
    # Unstructured, for comparison: as many nonzero weights as the filter-pruned model.
    unstructured = copy.deepcopy(dense)
    magnitude.prune_model(unstructured, 1 - _num_weights(pruned) / _num_weights(dense),
                          scope="global")
    _fine_tune(unstructured)
    magnitude.bake(unstructured)

    models = {"dense": dense, "filter-pruned": pruned, "unstructured": unstructured}
    deployed = [fold_for_inference(m) for m in models.values()]
    lat = dict(zip(models, best_latencies(deployed, **LATENCY)))
    acc = {k: evaluate(m, test) for k, m in models.items()}
    macs = {k: measure.count_macs(m, SHAPE).total for k, m in models.items()}
    thinet = table("thinet")
    paper_flops = thinet.row("Original")["flops"] / thinet.row("ThiNet-Conv")["flops"]
    paper_speedup = thinet.row("Original")["forward_ms"] / thinet.row("ThiNet-Conv")["forward_ms"]
    mac_ratio = macs["dense"] / macs["filter-pruned"]
    speedup = lat["dense"].median_ms / lat["filter-pruned"].median_ms

    run.row("filter-pruned channels (cfg)", None, str(pruned.cfg))
    for k, m in models.items():
        run.row(f"{k}: params", None, measure.count_params(m), "params")
        run.row(f"{k}: nonzero params", None, measure.count_nonzero(m), "params")
        run.row(f"{k}: MACs", None, macs[k], "MACs")
        fmt = "sparse_relative" if k == "unstructured" else "dense_fp32"
        run.row(f"{k}: size ({fmt})", None, measure.storage_bytes(m, fmt), "bytes")
        run.row(f"{k}: model file (torch.save)", None, measure.saved_bytes(m), "bytes")
        run.row(f"{k}: latency", None, round(lat[k].median_ms, 3), "ms")
        run.row(f"{k}: test accuracy", None, 100 * acc[k], "%")
    run.row("filter-pruned: accuracy before fine-tuning", None, 100 * before, "%")
    run.row("MAC (FLOP) reduction", round(paper_flops, 2), round(mac_ratio, 2), "x")
    run.row("latency speed-up", round(paper_speedup, 2), round(speedup, 2), "x")
    run.row("speed-up / MAC reduction", round(paper_speedup / paper_flops, 2),
            round(speedup / mac_ratio, 2))
    run.row("unstructured: latency speed-up", None,
            round(lat["dense"].median_ms / lat["unstructured"].median_ms, 2), "x")
    run.row("latency conditions", None, f"{lat['dense'].threads} thread(s), {lat['dense'].device}")
    run.claim(f"MACs at most half of dense ({mac_ratio:.2f}x fewer)", round(mac_ratio, 2),
              ">= 2", mac_ratio >= 2)
    run.claim(f"after fine-tuning, test accuracy within 1 point of dense ({100 * acc['filter-pruned']:.1f}% "
              f"vs {100 * acc['dense']:.1f}%)", round(100 * (acc["filter-pruned"] - acc["dense"]), 2),
              ">= -1", acc["filter-pruned"] >= acc["dense"] - 0.01 - 1e-9)
    run.claim(f"measured latency speed-up ({speedup:.2f}x) >= 0.6 x the MAC reduction "
              f"({mac_ratio:.2f}x); a noisy measurement", round(speedup / mac_ratio, 2), ">= 0.6",
              speedup >= 0.6 * mac_ratio)
    run.claim("the baked unstructured model's file is no smaller than the dense one (zeros "
              "are stored as fp32 too)", measure.saved_bytes(unstructured),
              f">= {measure.saved_bytes(dense)}",
              measure.saved_bytes(unstructured) >= measure.saved_bytes(dense))


# ---------------------------------------------------------------- rethinking
SCRATCH_MAX_FACTOR = 3.0  # Scratch-B trains at most 3x the dense epochs (Liu et al.: 2x on ImageNet)


@experiment("rethinking", dataset=DATASET,
            scale=f"SmallVGG (zoo: {zoo.RECIPES['vgg_small'].description}); ThiNet "
                  f"removes {PLAN_TEXT}; fine-tuned "
                  f"{FINE_TUNE['epochs']} epochs at Adam {FINE_TUNE['lr']:g}; from scratch "
                  "with the zoo recipe: Scratch-E its epochs, Scratch-B epochs x MAC "
                  f"reduction, at most {SCRATCH_MAX_FACTOR:g}x (one run: with a constant "
                  "learning rate Scratch-E is Scratch-B's first epochs)",
            summary="Liu et al. 2019: fine-tuned vs Scratch-E vs Scratch-B on a pruned SmallVGG")
def rethinking(run: Run) -> None:
    test = data.loaders("mnist").test
    recipe = zoo.RECIPES["vgg_small"]
    dense, pruned, _ = filter_pruned_vgg()
    dense_acc = evaluate(dense, test)
    epochs = {"Fine-tuned": FINE_TUNE["epochs"], "Scratch-E": recipe.epochs,
              "Scratch-B": surgery.scratch_epochs(recipe.epochs,
                                                  measure.count_macs(dense, SHAPE).total,
                                                  measure.count_macs(pruned, SHAPE).total,
                                                  "B", SCRATCH_MAX_FACTOR)}
    acc = {"Fine-tuned": evaluate(_fine_tune(copy.deepcopy(pruned)), test)}
    # The recipe's learning rate is constant, so Scratch-E's run is exactly the first epochs
    # of Scratch-B's: one run (one optimizer, one loader), evaluated at both points.
    model = surgery.reinitialize(pruned, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    train = data.loaders("mnist", seed=0).train
    torch.manual_seed(0)
    done = 0
    for strategy in ("Scratch-E", "Scratch-B"):
        fit(model, train, epochs=epochs[strategy] - done, optimizer=optimizer, progress=False)
        done = epochs[strategy]
        acc[strategy] = evaluate(model, test)
    paper = {r[1]: r for r in table("rethinking").rows if r[0] == "VGG-Conv"}
    run.row("dense test accuracy", paper["Fine-tuned"][2], 100 * dense_acc, "%")
    for strategy, a in acc.items():
        run.row(f"{strategy} ({epochs[strategy]} epochs): change vs dense",
                paper[strategy][3], round(100 * (a - dense_acc), 2), "points")
        run.row(f"{strategy}: test accuracy", None, 100 * a, "%")
    run.row("epochs: dense (zoo recipe)", None, recipe.epochs)
    run.row("Scratch-B cap", None, f"{SCRATCH_MAX_FACTOR:g}x the dense epochs")
    worst = min(acc.values())
    run.claim(f"every strategy within 1 point of dense (lowest {100 * worst:.1f}% vs "
              f"{100 * dense_acc:.1f}%)", round(100 * (worst - dense_acc), 2), ">= -1",
              worst >= dense_acc - 0.01 - 1e-9)
    gap = acc["Scratch-B"] - acc["Fine-tuned"]
    run.claim(f"Scratch-B within 0.5 point of fine-tuning ({100 * acc['Scratch-B']:.1f}% vs "
              f"{100 * acc['Fine-tuned']:.1f}%; Liu et al.: +0.21 vs -1.23 on VGG-16)",
              round(100 * gap, 2), ">= -0.5", gap >= -0.005 - 1e-9)
