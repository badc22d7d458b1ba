"""Wall time of grading a folder of copies of a notebook with -j 1 and -j 2.

    python benchmarks/grading.py [--copies 10] [--notebook solutions/00_overview.ipynb]
"""
import argparse
import shutil
import tempfile
import time
from pathlib import Path

from nclib.course import grade

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--notebook", default=str(ROOT / "solutions" / "00_overview.ipynb"))
    args = parser.parse_args()
    src = Path(args.notebook)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.copies):
            shutil.copy(src, Path(tmp) / f"student{i:02d}_{src.name}")
        times = {}
        for jobs in (1, 2):
            t0 = time.perf_counter()
            results = grade.grade([tmp], jobs=jobs, release=ROOT / "exercises")
            times[jobs] = time.perf_counter() - t0
            scores = {f"{r.score:g}/{r.max_score:g}" for r in results}
            print(f"-j {jobs}: {len(results)} notebooks in {times[jobs]:.1f} s "
                  f"({times[jobs] / len(results):.1f} s each), scores {sorted(scores)}", flush=True)
    print(f"-j 2 takes {times[2] / times[1]:.2f}x the time of -j 1")


if __name__ == "__main__":
    main()
