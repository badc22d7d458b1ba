"""Print params, MACs and measured CPU latency of every model in nclib.models, and the
wall time of training on the bundled MNIST digits.

    python benchmarks/models.py [--threads N]
"""
import argparse
import time

import torch

import nclib
from nclib import data, measure, models, train

SHAPES = {"lenet300": (1, 28, 28), "mlp": (1, 28, 28), "lenet5": (1, 28, 28), "lenet": (1, 28, 28), "vgg_small": (1, 28, 28),
          "resnet_small": (1, 28, 28), "mobilenet_v1": (3, 224, 224)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    print(nclib.setup(seed=0, threads=args.threads, device="cpu"))
    print(f"{'model':<14}{'params':>12}{'MACs':>14}{'latency b=1':>14}{'latency b=64':>14}")
    for name, make in models.MODELS.items():
        m = make()
        shape = SHAPES[name]
        lat1 = measure.measure_latency(m, shape, batch_size=1, repeats=20)
        lat64 = measure.measure_latency(m, shape, batch_size=64 if name != "mobilenet_v1" else 8,
                                        repeats=5)
        print(f"{name:<14}{measure.count_params(m):>12,}{measure.count_macs(m, shape).total:>14,}"
              f"{lat1.median_ms:>11.2f} ms{lat64.median_ms:>11.2f} ms"
              + ("  (b=8)" if name == "mobilenet_v1" else ""))

    t0 = time.perf_counter()
    L = data.loaders("mnist", batch_size=64)
    print(f"\nload_mnist + split + loaders: {time.perf_counter() - t0:.2f} s")
    for name in ("lenet300", "lenet5", "vgg_small", "resnet_small"):
        torch.manual_seed(0)
        m = models.create(name)
        h = train.fit(m, L.train, L.val, epochs=1, progress=False)
        print(f"one epoch of fit, {name:<13} on {len(L.train.dataset)} digits: {h.seconds[0]:.2f} s")
    torch.manual_seed(0)
    m = models.LeNet300100()
    t0 = time.perf_counter()
    train.fit(m, L.train, epochs=20, progress=False)
    seconds = time.perf_counter() - t0
    print(f"LeNet-300-100, 20 epochs (the zoo recipe): {seconds:.1f} s, "
          f"test accuracy {100 * train.evaluate(m, L.test):.2f}%")


if __name__ == "__main__":
    main()
