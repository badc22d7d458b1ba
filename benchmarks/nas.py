"""Wall time of an architecture search whose children are trained, not looked up: in-process
against a process pool of 2 workers (each child trained with one thread), same history.

    python benchmarks/nas.py [--budget 32] [--workers 2]

The children are trained by the chapter's recipe (`nclib.nas.ChildRecipe()`) with the cache
off, so every child is really trained; the pool's start-up (importing torch in each
spawned worker) is inside its time.
"""
import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from nclib.nas import ChildEvaluator, SearchSpace, random_search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    space = SearchSpace()
    evaluate = ChildEvaluator(space, cache=False)
    t0 = time.perf_counter()
    serial = random_search(space, args.budget, seed=0, evaluate=evaluate)
    t_serial = time.perf_counter() - t0
    print(f"in-process: {args.budget} children in {t_serial:.1f} s", flush=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        pooled = random_search(space, args.budget, seed=0, evaluate=evaluate, executor=pool)
    t_pool = time.perf_counter() - t0
    same = [t.val_acc for t in pooled.trials] == [t.val_acc for t in serial.trials]
    print(f"process pool of {args.workers}: {t_pool:.1f} s; same history: {same}")
    print(f"the pool takes {t_pool / t_serial:.2f}x the in-process time")


if __name__ == "__main__":
    main()
