"""Architecture design in figures: separable convolution speed, low-rank LeNet, MobileNet costs.

    NCLIB_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/arch.py

(a) Measured CPU latency (1 thread) of a standard 3x3 convolution vs a depthwise separable
    block, beside the MAC ratio: depthwise layers do few MACs per byte they read, so they
    are memory-bound and the measured speedup falls short of the MAC ratio.
(b) LeNet-300-100 (zoo) with fc1 factorized by truncated SVD at several ranks: test accuracy
    right after factorizing and after a short fine-tune.
(c) MobileNet v1 vs Conv MobileNet at 224, 1000 classes, against the paper's Table 4, and
    torchvision's VGG-16 and GoogLeNet against the paper's Table 8.
"""
import time

import torch
import torchvision
from torch import nn

import nclib
from nclib import arch, data, measure, train, zoo
from nclib.chapters.architecture.experiments import FINE_TUNE

THREADS = 1
BATCH, SIZE = 8, 56  # one MobileNet-sized feature map (56 x 56), 8 images
ROUNDS = 7  # latency rounds that take turns (see time_ms)


def time_ms(layers: dict[str, nn.Module], c: int, rounds: int, repeats: int) -> dict[str, float]:
    """Median latency of each layer, the best of `rounds` rounds that take turns.

    On a machine shared with other jobs a burst of their work slows whatever runs at that
    moment; taking turns and keeping each layer's least disturbed round compares the
    layers under the same conditions.
    """
    best = {name: float("inf") for name in layers}
    for _ in range(rounds):
        for name, layer in layers.items():
            lat = measure.measure_latency(layer, (c, SIZE, SIZE), batch_size=BATCH, warmup=2,
                                          repeats=repeats, threads=THREADS, device="cpu")
            best[name] = min(best[name], lat.median_ms)
    return best


def separable_latency() -> None:
    kept = measure.keep_freed_memory()
    print(f"(a) 3x3 conv C -> C vs depthwise separable, batch {BATCH} at {SIZE}x{SIZE}, "
          f"{THREADS} thread; ms: best of {ROUNDS} rounds' medians; freed memory kept: {kept}")
    print(f"{'C':>5} {'standard':>9} {'dw':>6} {'pw':>6} {'dw+pw':>6} {'MAC ratio':>10} "
          f"{'speedup':>8} {'short by':>9} {'dw share: MACs':>15} {'time':>5}"
          f"   GMAC/s: std   dw   pw")
    short = []
    for c in (32, 64, 128, 256):
        torch.manual_seed(0)
        standard = nn.Conv2d(c, c, 3, padding=1, bias=False)
        block = arch.DepthwiseSeparableConv(c, c, 3, batch_norm=False, relu=False)
        t = time_ms({"std": standard, "dw": block.depthwise, "pw": block.pointwise, "sep": block},
                    c, rounds=ROUNDS, repeats=10 if c <= 128 else 4)
        macs_std = arch.conv_macs(3, c, c, SIZE, SIZE) * BATCH
        macs_dw = arch.depthwise_macs(3, c, SIZE, SIZE) * BATCH
        macs_pw = arch.pointwise_macs(c, c, SIZE, SIZE) * BATCH
        mac_ratio = 1 / arch.separable_ratio(3, c)  # standard / (dw + pw) = 1 / (1/C + 1/9)
        speedup = t["std"] / t["sep"]
        short.append(mac_ratio / speedup)

        def rate(macs, ms):
            return macs / ms / 1e6  # MACs per ms -> GMAC/s

        print(f"{c:>5} {t['std']:>9.2f} {t['dw']:>6.2f} {t['pw']:>6.2f} {t['sep']:>6.2f} "
              f"{mac_ratio:>9.2f}x {speedup:>7.2f}x {short[-1]:>8.2f}x "
              f"{macs_dw / (macs_dw + macs_pw):>15.1%} {t['dw'] / (t['dw'] + t['pw']):>5.0%}   "
              f"{rate(macs_std, t['std']):>11.0f} {rate(macs_dw, t['dw']):>4.0f} "
              f"{rate(macs_pw, t['pw']):>4.0f}")
    print(f"The measured speedup is {min(short):.1f}x to {max(short):.1f}x below the MAC ratio. "
          "Neither part runs at the\nstandard conv's GMAC/s: the depthwise layer does 9 MACs per "
          "input value it reads (memory-bound),\nso its share of the time is several times its "
          "share of the MACs; the pointwise layer reuses each\nvalue C times, not 9C.\n")


def lowrank_lenet() -> None:
    L = data.loaders("mnist", seed=0)  # the zoo's split: 3,500 / 500 / 1,000 digits
    dense = zoo.trained("lenet300", progress=False)
    N, M = dense.fc1.out_features, dense.fc1.in_features
    acc_dense = train.evaluate(dense, L.test)
    print(f"(b) LeNet-300-100 (zoo), fc1 {M} -> {N} factorized by truncated SVD; fine-tune: "
          f"{FINE_TUNE['epochs']} epochs, Adam {FINE_TUNE['lr']:g}, all layers")

    def fine_tune(model: nn.Module) -> float:  # the chapter's recipe; test accuracy after it
        batches = data.loaders("mnist", seed=0).train  # fresh: every row sees the same batches
        return train.evaluate(train.fine_tune(model, batches, **FINE_TUNE), L.test)

    control = fine_tune(zoo.trained("lenet300", progress=False))
    print(f"dense: fc1 {N * M + N:,} params, test accuracy {100 * acc_dense:.2f}% "
          f"({100 * control:.2f}% after the same fine-tune)")
    print(f"{'rank':>5} {'fc1 params':>11} {'fc1 compression':>16} {'energy kept':>12} "
          f"{'model params':>13} {'acc factorized':>15} {'acc fine-tuned':>15} {'vs dense':>9}")
    S2 = torch.linalg.svdvals(dense.fc1.weight.detach().double()) ** 2
    for compression in (2, 5, 10, 20, 50):
        model = zoo.trained("lenet300", progress=False)
        layer = arch.factorize_linear(model, "fc1", compression=compression)
        K = layer.rank
        acc0 = train.evaluate(model, L.test)
        acc1 = fine_tune(model)
        params = measure.count_params(layer)
        energy = float(S2[:K].sum() / S2.sum())
        print(f"{K:>5} {params:>11,} {N * M / (K * (N + M)):>15.1f}x {energy:>12.1%} "
              f"{measure.count_params(model):>13,} {100 * acc0:>14.2f}% {100 * acc1:>14.2f}% "
              f"{100 * (acc1 - acc_dense):>+8.2f}")
    print("fc1 compression: of the weights, N*M / (K*(N+M)), as factorize_linear(compression=) "
          "reads it;\nfc1 params include the N biases, kept whole.\n")


def mobilenet_costs() -> None:
    print("(c) parameters and MACs at 224x224, 1000 classes (ours include BatchNorm's 2 values "
          "a channel)")
    print(f"{'model':<24} {'params':>8} {'MACs':>8}   {'paper params':>12} {'paper MACs':>10}")

    def row(name, params, macs, paper_params, paper_macs):
        print(f"{name:<24} {params / 1e6:>7.2f}M {macs / 1e6:>7,.0f}M   {paper_params:>12} "
              f"{paper_macs:>10}")

    for r in arch.compare_separable(1.0, 224, 1000).rows:  # paper Table 4
        row(r.name, r.params, r.macs, r.extra["paper params"], r.extra["paper MACs"])
    # MobileNet paper, Table 8 (the definitions only: no weights are downloaded)
    others = (("VGG-16 (torchvision)", lambda: torchvision.models.vgg16(weights=None), "138M",
               "15,300M"),
              ("GoogLeNet (torchvision)", lambda: torchvision.models.googlenet(
                  weights=None, aux_logits=False, init_weights=False), "6.8M", "1,550M"))
    for name, make, paper_params, paper_macs in others:
        model = make()
        row(name, measure.count_params(model), measure.count_macs(model, (3, 224, 224)).total,
            paper_params, paper_macs)
    print("torchvision's GoogLeNet is not exactly the paper's (Szegedy et al. 2014): it adds "
          "BatchNorm after\nevery convolution, its '5x5' branches use 3x3 kernels (a known bug "
          "kept for the pretrained\nweights), it has no local response normalization, and the "
          "auxiliary classifiers are off here.")


def main() -> None:
    t0 = time.perf_counter()
    print(nclib.setup(seed=0, threads=THREADS, device="cpu"))
    separable_latency()
    lowrank_lenet()
    mobilenet_costs()
    print(f"\ntotal time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
