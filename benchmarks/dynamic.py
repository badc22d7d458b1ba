"""Batch-1 latency of an FBS network computing only the kept channels, against the same
network computing every channel, per width and density (one thread).

    python benchmarks/dynamic.py [--widths 16 32 64 128 256] [--densities 1.0 0.7 0.5]

The network is `FBSNet((C, "M", C, "M", C))` on 28 x 28 digits with random weights (time
does not depend on what the weights are). "dense" is the plain `SmallVGG` of the same
layers, BatchNorm folded (`fold_for_inference`), every channel computed; "skipping" is
`SkippingFBS` (built once per density), which gathers the kept filters and input slices of
each image. Gathering costs time, so at small widths skipping may be slower than computing
everything.
"""
import argparse
import statistics
import time

import torch

from nclib.dynamic import FBSNet, SkippingFBS
from nclib.models import SmallVGG
from nclib.pruning.surgery import fold_for_inference


def _ms(fn, x, repeats: int) -> float:
    for _ in range(5):
        fn(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--densities", type=float, nargs="+", default=[1.0, 0.7, 0.5, 0.25])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    x = torch.randn(1, 1, 28, 28)
    print(f"{'width':>5} {'density':>7} {'dense ms':>9} {'skip ms':>8} {'speed-up':>8} {'MAC ratio':>9}")
    for c in args.widths:
        torch.manual_seed(0)
        cfg = (c, "M", c, "M", c)
        net = FBSNet(cfg).eval()
        with torch.inference_mode():
            dense = _ms(fold_for_inference(SmallVGG(cfg).eval()), x, args.repeats)
            full_macs = SkippingFBS(net.set_density(1.0)).forward_with_macs(x)[1][0]
            for d in args.densities:
                skipping = SkippingFBS(net.set_density(d))
                skip = _ms(skipping, x, args.repeats)
                macs = skipping.forward_with_macs(x)[1][0]
                print(f"{c:>5} {d:>7.2f} {dense:>9.3f} {skip:>8.3f} {dense / skip:>7.2f}x "
                      f"{full_macs / macs:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()
