"""Wall time of grading a folder of submissions with -j 1 and -j 2.

    python benchmarks/grading.py [--copies 10] [--notebook solutions/00_overview.ipynb]
    python benchmarks/grading.py --capstone [--copies 20]

``--capstone`` grades that many chapter 07 hand-ins made from its solution: most with
other widths and bits (so the leaderboard has something to rank), one saving the dense
LeNet-5, one writing a corrupt file and one writing nothing; each run prints the top of
the leaderboard it wrote.
"""
import argparse
import re
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from nclib.course import grade, leaderboard

ROOT = Path(__file__).resolve().parents[1]
CAPSTONE = ROOT / "solutions" / "07_capstone.ipynb"
SAVE = 'save_compressed(student, "submission.nclib", overwrite=True)'
BROKEN = {  # what a few hand-ins do instead of saving their student
    "dense": 'save_compressed(zoo.trained("lenet5", progress=False), "submission.nclib", overwrite=True)',
    "corrupt": 'open("submission.nclib", "wb").write(b"NCLIBCMP" + bytes(100))',
    "nothing": "pass",
}


def capstone_variants(n: int, folder: Path) -> list[Path]:
    """n hand-ins: the solution at other student widths and bits, and the three broken ones."""
    nb = nbformat.read(CAPSTONE, as_version=4)
    source = [c.source for c in nb.cells]
    widths = [(8, 16, 64), (6, 16, 48), (8, 12, 64), (10, 16, 64), (8, 16, 32), (6, 12, 48)]
    paths = []
    for i in range(n):
        kind = list(BROKEN)[i % len(BROKEN)] if i >= n - len(BROKEN) else None
        c1, c2, h = widths[i % len(widths)]
        bits = 3 + i % 3
        for cell, text in zip(nb.cells, source):
            text = text.replace("models.LeNet((8, 16), 64)", f"models.LeNet(({c1}, {c2}), {h})")
            text = re.sub(r"share_weights\(student, \d\)", f"share_weights(student, {bits})", text)
            cell.source = text.replace(SAVE, BROKEN[kind]) if kind else text
        name = f"student{i:02d}_{kind or f'{c1}-{c2}-{h}-{bits}bit'}.ipynb"
        nbformat.write(nb, folder / name)
        paths.append(folder / name)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=None)
    parser.add_argument("--notebook", default=str(ROOT / "solutions" / "00_overview.ipynb"))
    parser.add_argument("--capstone", action="store_true", help="grade chapter 07 hand-ins, with a leaderboard")
    args = parser.parse_args()
    copies = args.copies or (20 if args.capstone else 10)
    with tempfile.TemporaryDirectory() as tmp:
        if args.capstone:
            capstone_variants(copies, Path(tmp))
            release = ROOT / "exercises" / CAPSTONE.name
        else:
            src = Path(args.notebook)
            for i in range(copies):
                shutil.copy(src, Path(tmp) / f"student{i:02d}_{src.name}")
            release = ROOT / "exercises"
        times = {}
        for jobs in (1, 2):
            t0 = time.perf_counter()
            results = grade.grade([tmp], jobs=jobs, release=release)
            rows = leaderboard.rank(results)
            leaderboard.write_csv(rows, Path(tmp) / f"board-j{jobs}.csv")
            times[jobs] = time.perf_counter() - t0
            scores = {f"{r.score:g}/{r.max_score:g}" for r in results}
            print(f"-j {jobs}: {len(results)} notebooks in {times[jobs]:.1f} s "
                  f"({times[jobs] / len(results):.1f} s each), scores {sorted(scores)}", flush=True)
            if args.capstone:
                print(leaderboard.render([_short(r) for r in rows], top=5), flush=True)
    print(f"-j 2 takes {times[2] / times[1]:.2f}x the time of -j 1")


def _short(row):
    row.submission = Path(row.submission).name
    return row


if __name__ == "__main__":
    main()
