"""Every lecture in JupyterLab in a real browser (Chromium through Playwright): all cells run
from the Run menu without an error, every widget renders, and every slider answers.

Runs when a Chromium is found (NCLIB_CHROMIUM, else chromium or chromium-browser on PATH);
otherwise it is skipped with one line saying how to enable it, except under CI=true, where
a missing browser fails. On a failure the screenshot, the page's console errors and the
report are saved under browser-failures/<notebook>/ (or NCLIB_BROWSER_ARTIFACTS), and the
failure names the folder. The server runs on copies of the lectures in a temporary
folder, so autosave never touches the committed notebooks, and it is stopped with every
kernel it started, also when a test fails; the module checks that none outlives it.
"""
import json
import os
from pathlib import Path

import pytest

from browser import Lab, expected_widgets, find_chromium, problems, run_notebook, save_failure

ROOT = Path(__file__).resolve().parents[1]
LECTURES = sorted((ROOT / "lectures").glob("[0-9][0-9]_*.ipynb"))
ARTIFACTS = Path(os.environ.get("NCLIB_BROWSER_ARTIFACTS", ROOT / "browser-failures"))
ENABLE = ("no Chromium found: install it (Debian: apt-get install chromium) or set "
          "NCLIB_CHROMIUM=/path/to/chromium to run the browser tests")


@pytest.fixture(scope="module")
def chromium_path():
    path = find_chromium()
    if path is None or not os.access(path, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {ENABLE} (NCLIB_CHROMIUM={os.environ.get('NCLIB_CHROMIUM')!r})")
        pytest.skip(ENABLE)
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra has it)")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    args = ["--disable-dev-shm-usage"] + (["--no-sandbox"] if os.geteuid() == 0 else [])  # no sandbox as root
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, headless=True, args=args)
        yield b
        b.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, chromium_path):
    server = Lab(tmp_path_factory.mktemp("lab")).start()
    yield server
    survivors = server.stop()
    assert not survivors, f"processes outlived the JupyterLab server: {survivors}"


def _check(browser, lab, name: str, source: Path, artifacts: Path = ARTIFACTS) -> dict:
    """Run the notebook `name` (copied from `source`) in a fresh page; fail with artifacts."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    try:
        report = run_notebook(page, lab, name)
        found = problems(report, expected_widgets(source))
        if found:
            folder = save_failure(page, artifacts / Path(name).stem, report, console)
            pytest.fail(f"{name} in JupyterLab: " + "; ".join(found) + f" (screenshot and console in {folder})")
        return report
    except Exception as e:
        if isinstance(e, pytest.fail.Exception):
            raise
        folder = save_failure(page, artifacts / Path(name).stem, {"exception": repr(e)}, console)
        raise AssertionError(f"{name} in JupyterLab: {e} (screenshot and console in {folder})") from e
    finally:
        page.close()
        lab.shutdown_kernels()  # one lecture's kernel at a time


@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_lecture_runs_in_jupyterlab_and_its_sliders_answer(browser, lab, lecture):
    """Run All from the menu: no cell shows an error, every widget renders, every slider moved
    by the keyboard changes what its widget shows within 2 seconds."""
    report = _check(browser, lab, lab.add(lecture), lecture)
    print(f"{lecture.name}: {report['seconds']} s in the browser, {report['rendered']} widgets, "
          f"{len(report['sliders'])} sliders")


PLANTED_RAISE = "raise RuntimeError('a planted fault')"
PLANTED_WIDGET = '''import ipywidgets as w
out = w.Output()
slider = w.IntSlider(1, min=0, max=5, description="broken")
def broken(change):
    raise ValueError("a planted fault in a callback")
slider.observe(broken, names="value")
with out:
    print("the figure")
w.VBox([slider, out])'''


def _planted(tmp_path: Path, code: str) -> Path:
    nb = json.loads((ROOT / "lectures" / "00_overview.ipynb").read_text())
    nb["cells"] = nb["cells"][:2] + [{"cell_type": "code", "metadata": {}, "outputs": [],
                                      "execution_count": None, "source": code}]
    path = tmp_path / "planted.ipynb"
    path.write_text(json.dumps(nb))
    return path


@pytest.mark.parametrize("code, expect", [(PLANTED_RAISE, "shows an error"),
                                          (PLANTED_WIDGET, "slider 0: ")],
                         ids=["cell_raises", "broken_callback"])
def test_planted_faults_fail_with_a_screenshot(browser, lab, tmp_path, code, expect):
    """A cell that raises, and a slider whose callback raises, each fail the check, and the
    failure leaves a screenshot and the console log in the folder it names."""
    source = _planted(tmp_path, code)
    name = lab.add(source, f"planted_{tmp_path.name}.ipynb")
    with pytest.raises(pytest.fail.Exception) as failed:
        _check(browser, lab, name, source, artifacts=tmp_path / "artifacts")
    assert expect in str(failed.value), str(failed.value)
    folder = tmp_path / "artifacts" / Path(name).stem
    assert (folder / "screenshot.png").stat().st_size > 1000 and (folder / "console.txt").exists()
    assert str(folder) in str(failed.value)


def test_no_server_or_kernel_outlives_its_lab(tmp_path, chromium_path):
    """A server with a running kernel, stopped: the server and the kernel process are gone."""
    import urllib.request

    server = Lab(tmp_path).start()
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/api/kernels", method="POST",
                                 data=b"{}", headers={"Authorization": f"token {server.token}",
                                                      "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()
    server.track()
    assert len(server.started) >= 2  # the server and its kernel
    pids = set(server.started)
    assert server.stop() == []
    import psutil

    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_find_chromium_prefers_nclib_chromium_then_the_path(monkeypatch, tmp_path):
    """NCLIB_CHROMIUM wins; else chromium, then chromium-browser on PATH; else None."""
    from browser import find_chromium

    for name in ("chromium-browser",):
        exe = tmp_path / name
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("NCLIB_CHROMIUM", raising=False)
    assert find_chromium() == str(tmp_path / "chromium-browser")
    monkeypatch.setenv("NCLIB_CHROMIUM", "/opt/my/chrome")
    assert find_chromium() == "/opt/my/chrome"
    monkeypatch.delenv("NCLIB_CHROMIUM")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert find_chromium() is None
