"""A lecture read without a kernel (on a web page, or in JupyterLab before anything ran) is not
a blank box where a widget was: every widget it displays is in the notebook's saved widget
state, with the figures of its Output widgets, and is followed by a static version, a
picture or the printed summary of what the widget shows."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LECTURES = sorted((ROOT / "lectures").glob("[0-9][0-9]_*.ipynb"))
VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"


def _widget_cells(nb):
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return [(i, c) for i, c in enumerate(code) if any(VIEW in o.get("data", {}) for o in c.get("outputs", []))], code


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.stem)
def test_every_widget_has_saved_state_and_a_static_version(path):
    """Each displayed widget's model is in the saved state, each Output model there holds the
    output it showed, and the next code cell shows a picture or prints text."""
    nb = json.loads(path.read_text())
    cells, code = _widget_cells(nb)
    state = nb["metadata"].get("widgets", {}).get(STATE, {}).get("state", {})
    for i, cell in cells:
        for o in cell["outputs"]:
            if VIEW in o.get("data", {}):
                assert o["data"][VIEW]["model_id"] in state, f"{path.name}: code cell {i}'s widget is not saved"
        after = code[i + 1].get("outputs", []) if i + 1 < len(code) else []
        static = [o for o in after if "image/png" in o.get("data", {}) or o.get("name") == "stdout"]
        assert static, f"{path.name}: code cell {i} shows a widget, and the next cell no picture or text"
    for model_id, model in state.items():
        if model["model_name"] == "OutputModel":
            assert model["state"].get("outputs"), f"{path.name}: Output widget {model_id} was saved empty"
