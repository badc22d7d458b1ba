"""Print real int8 vs fp32 CPU latency of Linear layers (a benchmark, not a test).

    NCLIB_THREADS=1 python benchmarks/quant.py

Square Linear layers (size x size) at batch 1 and 64, one torch thread: nn.Linear in fp32
against torch's int8 kernel ``quantized::linear_dynamic`` (`nclib.quant.int8`; the int8
time includes quantizing the input at every call). Each time is the fastest of 3 medians
of 30 runs after warm-up, fp32 and int8 taking turns. "error" is the int8 output's
relative error against fp32.

Then packed binary products (`nclib.quant.bitspeed`): x @ w.T for w (n, n) in fp32 against
xor-popcount on packed signs (`bitpack.binary_matmul`), with the time to pack x apart.

Then the coding side: Huffman encode and decode of 400,000 labels of 32 classes (a big
layer), and `save_compressed` / `load_compressed` of a pruned, weight-shared LeNet-300-100.
"""
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

import nclib
from nclib import models
from nclib.quant import bitspeed, coding, compressed, int8, kmeans

SIZES, BATCHES = (64, 256, 1024, 4096), (1, 64)
BINARY_SIZES = (256, 512, 1024, 2048, 4096)


def main() -> None:
    print(nclib.setup(seed=0, device="cpu"))
    t0 = time.perf_counter()
    kernel = int8.int8_kernel()
    print(f"int8 kernel: {kernel['name']} | torch {kernel['torch']} | engine {kernel['engine']} "
          f"(supported: {', '.join(kernel['supported_engines'])}) | "
          f"CPU {kernel['cpu_capability']}")
    print(f"  {kernel['description']}")
    if not kernel["available"]:
        print(f"  NOT AVAILABLE: {kernel['reason']}")
    print("  warning torch raised while building an int8 layer:")
    print(textwrap.indent(textwrap.fill(kernel["warning"] or "(none)", 92), "    "))
    rows = int8.speed_sweep(SIZES, BATCHES, repeats=30, threads=1, rounds=3)
    print(f"\n{'size':>6}{'batch':>7}{'fp32 ms':>11}{'int8 ms':>11}{'speed-up':>10}{'error':>8}")
    for r in rows:
        if r["int8_ms"] is None:
            print(f"{r['in_features']:>6}{r['batch']:>7}{r['fp32_ms']:>11.4f}"
                  f"{'-':>11}{'-':>10}{'-':>8}")
            continue
        print(f"{r['in_features']:>6}{r['batch']:>7}{r['fp32_ms']:>11.4f}{r['int8_ms']:>11.4f}"
              f"{r['speedup']:>9.2f}x{100 * r['rel_error']:>7.1f}%")
    print("\n1 thread. Small layers: quantizing the input and rescaling the output cost more "
          "than the\nproducts, so int8 loses. Large layers: 4x fewer weight bytes to read and 4x "
          "more int8\nMACs per vector instruction. At batch 1 fp32 is memory-bound, and the gain "
          "can pass 4x\nwhere the int8 weight still fits a cache that the fp32 one does not.")
    packed_binary_speed()
    coding_speed()
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


def packed_binary_speed() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # numpy's xor and popcount use one thread: compare with one
    try:
        rows = bitspeed.speed_sweep(BINARY_SIZES, BATCHES)
    finally:
        torch.set_num_threads(threads)
    print(f"\nPacked binary x @ w.T, w (n, n), {rows[0]['threads']} thread: fp32 against xor-popcount "
          "on packed signs")
    print(f"{'n':>6}{'batch':>7}{'fp32 ms':>11}{'packed ms':>11}{'pack ms':>9}{'speed-up':>10}"
          f"{'with packing':>14}")
    for r in rows:
        print(f"{r['n']:>6}{r['batch']:>7}{r['fp32_ms']:>11.4f}{r['packed_ms']:>11.4f}"
              f"{r['pack_ms']:>9.4f}{r['speedup']:>9.2f}x{r['speedup_with_packing']:>13.2f}x")
    print("Batch 1: fp32 reads 4 bytes a weight from memory, packed 1 bit. Batch 64: fp32 reuses "
          "the\nweights from cache at full vector speed; numpy's popcount is about a word a cycle.")


def _best_ms(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - start))
    return min(times)


def coding_speed() -> None:
    rng = np.random.default_rng(0)
    symbols = rng.choice(32, size=400_000, p=rng.dirichlet(np.ones(32)))
    enc = coding.huffman_encode(symbols)
    print(f"\nHuffman, 400,000 symbols of 32 classes ({enc.bit_length / enc.count:.3f} bits a "
          f"symbol): encode {_best_ms(lambda: coding.huffman_encode(symbols)):.0f} ms, decode "
          f"{_best_ms(lambda: coding.huffman_decode(enc)):.0f} ms (best of 5)")
    model = models.LeNet300100()
    with torch.no_grad():
        for layer in (model.fc1, model.fc2, model.fc3):  # 95% of each layer pruned at random
            layer.weight.mul_(torch.rand_like(layer.weight) < 0.05)
    kmeans.share_weights(model, 5)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lenet300.nclib"
        save = _best_ms(lambda: compressed.save_compressed(model, path, overwrite=True))
        load = _best_ms(lambda: compressed.load_compressed(path))
        print(f"LeNet-300-100, 95% pruned, 5-bit labels: file {path.stat().st_size:,} bytes, "
              f"save_compressed {save:.0f} ms, load_compressed {load:.0f} ms (best of 5)")


if __name__ == "__main__":
    main()
