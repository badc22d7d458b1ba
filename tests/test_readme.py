"""README.md's chapter table says what is there: a row for every lecture, marked ready, with
exactly the `nclib reproduce` experiments its chapter registers."""
import re
from pathlib import Path

import pytest

from nclib.course import reproduce

ROOT = Path(__file__).resolve().parents[1]
LECTURES = sorted((ROOT / "lectures").glob("[0-9][0-9]_*.ipynb"))


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"\d\d", cells[0]):
            rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_every_lecture_is_a_ready_row_with_its_chapters_experiments(lecture):
    """The row of the lecture's number says "ready" and names the experiments whose code lives
    in its chapter's package (nclib/chapters/<first word of the lecture's name>/)."""
    reproduce._load_all()
    number, topic = lecture.stem.split("_")[:2]
    row = _rows().get(number)
    assert row is not None, f"README.md's chapter table has no row {number}"
    assert row[4] == "ready", row
    listed = set(re.findall(r"`([a-z0-9-]+)`", row[3]))
    registered = {name for name, e in reproduce.EXPERIMENTS.items()
                  if e.fn.__module__.startswith(f"nclib.chapters.{topic}.")}
    assert listed == registered, f"row {number} lists {sorted(listed)}; the chapter registers {sorted(registered)}"
