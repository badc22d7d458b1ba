"""What the browser tests drive: a JupyterLab server on copies of notebooks, and Chromium.

`Lab` starts JupyterLab from this Python (the project's .venv under `make test`) on a free
local port with a random token, in its own folder with its own settings (no news, every
cell in the page so that all can be inspected), and stops it with every kernel it started.
`run_notebook` opens a notebook in a Playwright page, runs all cells from the Run menu,
waits until the kernel is idle, and reports the cells with an error or a traceback, the
widgets that rendered and whether each slider, moved with the keyboard, changed what its
widget shows. `save_failure` writes a screenshot and the page's console errors.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
SETTINGS = {  # JupyterLab user settings of the test server
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def find_chromium() -> str | None:
    """NCLIB_CHROMIUM, else chromium or chromium-browser on PATH; None when there is none."""
    path = os.environ.get("NCLIB_CHROMIUM")
    if path:
        return path
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server in `folder` (the notebooks to open are copied into folder/nb)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.notebooks = self.folder / "nb"
        self.notebooks.mkdir(parents=True, exist_ok=True)
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.proc: subprocess.Popen | None = None
        self.started: set[int] = set()  # pids of the server and of every process it started

    def add(self, path: Path, name: str | None = None, outputs: bool = False) -> str:
        """Copy a notebook in (the committed one is never opened), by default without its
        outputs and saved widget state, so that everything the page shows comes from the run;
        returns its name there."""
        name = name or Path(path).name
        nb = json.loads(Path(path).read_text())
        if not outputs:
            for cell in nb["cells"]:
                if cell["cell_type"] == "code":
                    cell["outputs"], cell["execution_count"] = [], None
            nb["metadata"].pop("widgets", None)
        (self.notebooks / name).write_text(json.dumps(nb))
        return name

    def url(self, name: str) -> str:
        """The notebook in a workspace of its own, so that no tab of an earlier page comes back."""
        self.pages = getattr(self, "pages", 0) + 1
        return (f"http://127.0.0.1:{self.port}/lab/workspaces/page{self.pages}/tree/{name}"
                f"?reset&token={self.token}")

    def shutdown_kernels(self) -> None:
        """Shut down every running kernel (after remembering its process)."""
        self.track()
        for k in self._api("/api/kernels"):
            self._api(f"/api/kernels/{k['id']}", method="DELETE")

    def _api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def start(self, timeout: float = 60) -> "Lab":
        settings = self.folder / "settings"
        for rel, values in SETTINGS.items():
            f = settings / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(values))
        env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(self.folder / "workspaces"),
                   JUPYTER_CONFIG_DIR=str(self.folder / "config"),
                   JUPYTER_RUNTIME_DIR=str(self.folder / "runtime"))
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={self.notebooks}", "--ServerApp.port_retries=0"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")  # Jupyter refuses root (CI machines) unless told
        self.log = open(self.folder / "server.log", "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.started.add(self.proc.pid)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._api("/api/status")
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"JupyterLab did not start; its log: {self.folder / 'server.log'}")
                time.sleep(0.3)

    def track(self) -> None:
        """Remember every process the server runs now (its kernels), to check they end."""
        if self.proc is not None and self.proc.poll() is None:
            self.started |= {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}

    def stop(self) -> list[str]:
        """Shut down every kernel and the server; returns the processes that outlived it."""
        if self.proc is None:
            return []
        try:
            self.shutdown_kernels()
        except OSError:
            self.track()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down too
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.proc = None
        gone, alive = psutil.wait_procs([p for p in map(_process, self.started) if p], timeout=10)
        survivors = [f"{p.pid} {' '.join(p.cmdline()[:3])}" for p in alive if p.is_running()]
        for p in alive:
            p.kill()
        return survivors


def _process(pid: int):
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def expected_widgets(path: Path) -> int:
    """How many widget views the committed notebook displays (its saved outputs)."""
    nb = json.loads(Path(path).read_text())
    return sum(WIDGET_MIME in o.get("data", {}) for c in nb["cells"] if c["cell_type"] == "code"
               for o in c.get("outputs", []))


_DONE = """() => {
  const ind = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
  const prompts = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
      .map(p => p.textContent.trim());
  return ind && ind.dataset.status === 'idle' && prompts.length > 0 && /\\[\\d+\\]/.test(prompts[0])
      && !prompts.some(p => p.includes('*'));
}"""

_STARTED = """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
    .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""

_REPORT = """() => {
  const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')];
  const bad = /Traceback \\(most recent call last\\)|^\\w*(Error|Exception)\\b[^\\n]*:/m;
  const errors = [];
  cells.forEach((cell, i) => {
    cell.querySelectorAll('.jp-OutputArea-output').forEach(o => {
      if (bad.test(o.innerText)) errors.push({cell: i, text: o.innerText.slice(0, 600)});
    });
  });
  const failed = /Error displaying widget|Loading widget|model not found/;
  const views = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output')]
      .filter(o => !o.parentElement.closest('.jp-OutputArea-output'))  // a cell's own outputs, not nested ones
      .filter(o => o.querySelector('.jupyter-widgets') || failed.test(o.innerText));
  const rendered = views.filter(v => v.querySelector('.jupyter-widgets') && !failed.test(v.innerText)).length;
  return {errors, views: views.length, rendered,
          sliders: document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output .widget-slider .noUi-handle').length};
}"""

_SNAPSHOT = """(handle) => {
  const area = handle.closest('.jp-OutputArea');
  const copy = area.cloneNode(true);
  copy.querySelectorAll('.widget-slider, .widget-readout').forEach(e => e.remove());
  return copy.innerHTML;
}"""


def run_notebook(page, lab: Lab, name: str, timeout_s: float = 900, slider_s: float = 2.0) -> dict:
    """Open `name`, Run > Run All Cells, wait for idle; then move every slider. The report:
    {"errors": [{cell, text}], "views", "rendered", "sliders": [{"index", "changed", "error"}],
    "seconds"}."""
    page.goto(lab.url(name))
    panel = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on show
    page.wait_for_selector(f"{panel} .jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    t0 = time.perf_counter()
    for attempt in range(3):  # a click that lands before the notebook is the active panel does nothing
        page.locator(f"{panel} .jp-Cell").first.click()  # make the notebook the current widget
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            page.wait_for_function(_STARTED, timeout=15_000, polling=200)
            break
        except Exception:
            if attempt == 2:
                raise RuntimeError("Run > Run All Cells did not start the notebook (3 tries)") from None
    page.wait_for_function(_DONE, timeout=timeout_s * 1000, polling=500)
    seconds = time.perf_counter() - t0
    lab.track()
    report = page.evaluate(_REPORT)
    moved = []
    handles = page.locator(f"{panel} .jp-OutputArea-output .widget-slider .noUi-handle")
    for i in range(handles.count()):
        handle = handles.nth(i)
        handle.scroll_into_view_if_needed()
        before = handle.evaluate(_SNAPSHOT)
        handle.focus()
        # aria-valuenow is rounded (to one decimal for a float slider), so a small step can
        # leave it as it was: decide the direction from the maximum, not from the readback
        at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
        changed, deadline = False, time.monotonic() + slider_s
        while time.monotonic() < deadline and not changed:
            page.wait_for_timeout(100)
            changed = handle.evaluate(_SNAPSHOT) != before
        after = handle.evaluate("(h) => h.closest('.jp-OutputArea').innerText")
        error = "Traceback (most recent call last)" in after or "Error" in after.split("\n")[0]
        moved.append({"index": i, "changed": changed, "error": error})
    report.update(sliders=moved, seconds=round(seconds, 1))
    return report


def problems(report: dict, expected_views: int) -> list[str]:
    """What is wrong in a report, in words (empty when the notebook passed)."""
    out = [f"cell {e['cell']} shows an error: {e['text'][:300]!r}" for e in report["errors"]]
    if report["rendered"] < max(expected_views, report["views"]):
        out.append(f"{report['rendered']} of {max(expected_views, report['views'])} widgets rendered")
    for s in report["sliders"]:
        if not s["changed"] or s["error"]:
            out.append(f"slider {s['index']}: " + ("its callback raised" if s["error"] else
                       "moving it changed nothing its widget shows within 2 seconds"))
    return out


def save_failure(page, folder: Path, report: dict, console: list[str]) -> Path:
    """A screenshot, the page's console errors and the report, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "screenshot.png"), full_page=True)
    (folder / "console.txt").write_text("\n".join(console) + "\n")
    (folder / "report.json").write_text(json.dumps(report, indent=1))
    return folder
