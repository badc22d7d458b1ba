"""How many torch threads should nclib.setup choose? Time one training epoch of the small
VGG with 1 and 2 threads, on an idle machine and while another process keeps one core busy.

    python benchmarks/threads.py
"""
import multiprocessing as mp
import time

import torch

import nclib
from nclib import data, models, train


def _busy(stop):
    x = 0
    while not stop.is_set():
        x += 1


def epoch_seconds(threads: int, loaders) -> float:
    nclib.setup(seed=0, threads=threads, device="cpu")
    m = models.SmallVGG()
    t0 = time.perf_counter()
    train.fit(m, loaders.train, epochs=1, progress=False)
    return time.perf_counter() - t0


def main() -> None:
    L = data.loaders("mnist", batch_size=64)
    print(f"cores: {mp.cpu_count()}, default threads: {nclib.default_threads()}")
    epoch_seconds(1, L)  # warm-up: first-call costs (allocator, kernels) are not counted
    results = {}
    for busy in (False, True):
        stop = mp.Event()
        proc = mp.Process(target=_busy, args=(stop,)) if busy else None
        if proc:
            proc.start()
        for threads in (1, 2):
            results[busy, threads] = epoch_seconds(threads, L)
            print(f"{'one core busy' if busy else 'idle':<14} threads={threads}: "
                  f"{results[busy, threads]:.2f} s per epoch", flush=True)
        if proc:
            stop.set()
            proc.join()
    print(f"idle: 2 threads are {results[False, 1] / results[False, 2]:.2f}x faster than 1; "
          f"busy: 2 threads take {results[True, 2] / results[True, 1]:.2f}x the time of 1")


if __name__ == "__main__":
    main()
