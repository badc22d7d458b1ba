"""The JupyterLab settings that `make lab` applies (jupyter/): every override names a real
setting of the installed JupyterLab, and a server started with the shipped server config
offers "Python (nclib)" as its default kernel."""
import json
import shutil
import sys
import urllib.request
from pathlib import Path

import pytest

from browser import Lab

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"


def test_overrides_name_settings_the_installed_jupyterlab_has():
    """Each plugin in overrides.json has a schema here, with every property it sets; news is off."""
    overrides = json.loads((ROOT / "jupyter" / "overrides.json").read_text())
    for plugin, values in overrides.items():
        package, name = plugin.split(":")
        schema = json.loads((SCHEMAS / package / f"{name}.json").read_text())
        assert set(values) <= set(schema["properties"]), (plugin, set(values) - set(schema["properties"]))
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def test_makefile_copies_the_settings_into_the_venv_only():
    """make lab installs both files under .venv and opens the overview lecture."""
    text = (ROOT / "Makefile").read_text()
    assert "LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json" in text
    assert "LAB_SERVER   := $(VENV)/etc/jupyter/jupyter_server_config.d/nclib.json" in text
    assert "jupyter lab lectures/00_overview.ipynb" in text


def test_shipped_server_config_makes_nclib_the_default_kernel(tmp_path):
    """A server reading jupyter/jupyter_server_config.json reports default kernel 'nclib'."""
    lab = Lab(tmp_path)
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "jupyter" / "jupyter_server_config.json", tmp_path / "config" / "jupyter_server_config.json")
    lab.start()
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{lab.port}/api/kernelspecs",
                                     headers={"Authorization": f"token {lab.token}"})
        specs = json.loads(urllib.request.urlopen(req, timeout=10).read())
    finally:
        assert lab.stop() == []
    if "nclib" not in specs["kernelspecs"]:
        pytest.skip("the 'Python (nclib)' kernel is not installed here (make install installs it)")
    assert specs["default"] == "nclib"
