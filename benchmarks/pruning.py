"""Print the pruning chapter's acceptance figures (a benchmark, not a test).

(a) LeNet-300-100 and LeNet-5: iterative magnitude pruning with retraining (Han et al.
    2015) to >= 12x and >= 10x fewer nonzero parameters; test accuracy against dense.
(b) SmallVGG, 50% of one conv layer's filters, layer by layer: next-layer reconstruction
    error and accuracy before fine-tuning, for ThiNet, L1-norm and random filters.
(c) SmallVGG filter-pruned to about half the MACs by surgery: params, MACs, bytes, CPU
    latency at batch 64 and accuracy after a short fine-tune; and an unstructured model of
    the same sparsity, which is not faster.

    NCLIB_THREADS=1 python benchmarks/pruning.py

Data: the 5,000 bundled MNIST digits (3,500 train / 500 val / 1,000 test), so one test
digit is 0.1 point of accuracy.
"""
import copy
import time

import torch

import nclib
from nclib import data, measure, train, zoo
from nclib.chapters.pruning.experiments import RETRAIN, SHAPE, one_layer_comparison, paper_kept
from nclib.pruning import magnitude, schedules, structured, surgery
from nclib.train import evaluate, fit

# Retraining (the chapter's RETRAIN): Adam 1e-3 with L2 1e-4 (Han et al., Section 3.1). The
# zoo's dense models were trained without L2, so the "dense, retrained" row gets the same
# extra epochs and L2: the fair comparison.


def lenets(L) -> None:
    print("(a) Iterative magnitude pruning with retraining (AGP schedule, Adam 1e-3, L2 1e-4)")
    # (model, final sparsity, prune steps, epochs per step, target compression)
    for name, final, num_steps, epochs, target in [("lenet300", 0.92, 8, 3, 12),
                                                   ("lenet5", 0.92, 6, 2, 10)]:
        dense = zoo.trained(name, progress=False)
        dense_acc = evaluate(dense, L.test)
        control = train.fine_tune(copy.deepcopy(dense), L.train, num_steps * epochs, **RETRAIN)
        han_kept = paper_kept(name)
        layers = list(han_kept)
        print(f"\n{name}: {measure.count_params(dense):,} params; {num_steps} prune steps x "
              f"{epochs} epochs of retraining; weights kept per layer beside Han et al.'s")
        print(f"  {'model':<26}{'test acc':>9}{'kept':>8}{'params/nnz':>11}{'sparse_relative':>17}  "
              + "".join(f"{l:>7}" for l in layers))
        print(f"  {'dense (zoo)':<26}{100 * dense_acc:>8.2f}%{'100%':>8}{'1.0x':>11}"
              f"{measure.storage_bytes(dense, 'dense_fp32'):>11,} fp32")
        print(f"  {'dense, retrained (same)':<26}{100 * evaluate(control, L.test):>8.2f}%")
        targets = {"global": final, "Han's rates": {l: 1 - k for l, k in han_kept.items()}}
        for label, sparsity in targets.items():
            model = copy.deepcopy(dense)
            torch.manual_seed(0)
            t0 = time.perf_counter()
            schedules.prune_iteratively(model, L.train, sparsity, num_steps, epochs,
                                        scope="global" if label == "global" else "layer",
                                        progress=False, **RETRAIN)
            seconds = time.perf_counter() - t0
            acc = evaluate(model, L.test)
            kept = 1 - magnitude.global_sparsity(model)
            factor = measure.count_params(model) / measure.count_nonzero(model)
            per_layer = magnitude.layer_sparsity(model)
            verdict = "PASS" if factor >= target and acc >= dense_acc - 0.003 else "FAIL"
            print(f"  {'pruned, ' + label:<26}{100 * acc:>8.2f}%{100 * kept:>7.1f}%{factor:>10.1f}x"
                  f"{measure.storage_bytes(model, 'sparse_relative'):>17,}  "
                  + "".join(f"{100 * (1 - per_layer[l]):>6.1f}%" for l in layers)
                  + f"   {seconds:.0f} s; >= {target}x and >= dense - 0.3 points: {verdict}")
        print(f"  {'Han et al. 2015':<26}{'':>9}{'8%':>8}{'12x':>11}{'':>17}  "
              + "".join(f"{100 * k:>6.0f}%" for k in han_kept.values()))


def one_layer(L) -> None:
    print("\n(b) SmallVGG, 50% of one conv layer's filters (each layer alone): relative "
          "reconstruction error\n    of the next layer's outputs on 500 val digits / test "
          "accuracy before fine-tuning")
    model = zoo.trained("vgg_small", progress=False)
    print(f"    dense test accuracy {100 * evaluate(model, L.test):.2f}%; ThiNet samples 4,096 "
          "outputs of 256 train digits; random: mean of 3 seeds")
    X_train, X_val = L.train.dataset.tensors[0][:256], L.val.dataset.tensors[0]
    methods = {"ThiNet": [structured.ThiNetPruner(X_train)],
               "ThiNet, no rescale": [structured.ThiNetPruner(X_train, rescale=False)],
               "L1 norm": [structured.L1FilterPruner()],
               "random": [structured.RandomFilterPruner(seed) for seed in range(3)]}
    print(f"    {'layer':<13}" + "".join(f"{m:>22}" for m in methods))
    for name in surgery.channel_prunable_layers(model):
        cells = [f"{err:.3f} / {100 * acc:.1f}%" for err, acc in
                 (one_layer_comparison(model, name, p, X_val, L.test) for p in methods.values())]
        print(f"    {name:<13}" + "".join(f"{c:>22}" for c in cells))


def filters(L) -> None:
    print("\n(c) SmallVGG filter-pruned to about half the MACs (30% of every conv's filters), "
          "then 2 epochs of fine-tuning")
    dense = zoo.trained("vgg_small", progress=False)
    X_train = L.train.dataset.tensors[0][:256]
    slim = copy.deepcopy(dense)
    torch.manual_seed(0)  # slimming first trains with the L1 penalty on BN scales
    fit(slim, L.train, epochs=2, loss_fn=structured.SlimmingLoss(slim, strength=1e-3),
        progress=False)
    candidates = {"L1 filters 30%": structured.prune_l1_filters(dense, 0.3),
                  "ThiNet 30%": structured.prune_thinet(dense, 0.3, X_train),
                  "ThiNet 30%, round_to=8": structured.prune_thinet(dense, 0.3, X_train, round_to=8),
                  "slimming 30% (2+2 ep)": structured.prune_slimming(slim, 0.3, min_channels=4)}
    unstructured = copy.deepcopy(dense)
    magnitude.prune_model(unstructured, 0.5, scope="global")
    candidates["magnitude 50%, baked"] = unstructured
    models, before = [dense], {}
    for label, model in candidates.items():
        before[label] = evaluate(model, L.test)
        models.append(magnitude.bake(train.fine_tune(model, L.train, 2, lr=1e-3)))
    latencies = measure.best_latencies(models, input_shape=SHAPE, batch_size=64, rounds=5, repeats=20)
    dense_acc, dense_macs = evaluate(dense, L.test), measure.count_macs(dense, SHAPE).total
    rows, verdicts = [], []
    for label, model, lat in zip(["dense (zoo)"] + list(candidates), models, latencies):
        fmt = "sparse_relative" if label.startswith("magnitude") else "dense_fp32"
        row = measure.report(model, label, input_shape=SHAPE, accuracy=evaluate(model, L.test),
                             fmt=fmt, latency=False)
        row.latency = lat
        mac_ratio = dense_macs / row.macs
        speedup = latencies[0].median_ms / lat.median_ms
        row.extra = {"acc before FT": "-" if label not in before else f"{100 * before[label]:.1f}%",
                     "speedup / MAC ratio": f"{speedup:.2f} / {mac_ratio:.2f}"}
        rows.append(row)
        if label != "dense (zoo)" and not label.startswith("magnitude"):
            ok = row.accuracy >= dense_acc - 0.01 and speedup >= 0.6 * mac_ratio
            verdicts.append(f"    {label + ':':<24}cfg {model.cfg}; within 1 point of dense and "
                            f"speedup >= 0.6 x MAC ratio: {'PASS' if ok else 'FAIL'}")
    print(measure.compare(rows))
    print("\n".join(verdicts))
    print("    latency: fastest median over 5 alternating rounds of 20 runs. Time is not MACs here:"
          "\n    max pooling and BatchNorm cost time per channel (not per channel pair), and conv"
          "\n    kernels run fastest on channel counts that are multiples of 8 or 16. The unstructured"
          "\n    model computes every zero: no speed-up, only smaller sparse storage.")


def main() -> None:
    print(nclib.setup(seed=0, device="cpu"))
    t0 = time.perf_counter()
    L = data.loaders("mnist")
    lenets(L)
    one_layer(L)
    filters(L)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
