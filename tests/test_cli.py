"""The nclib command: info and zoo sub-commands, and clean errors."""
import subprocess
import sys

from nclib import cli


def test_info_prints_setup(capsys):
    """`nclib info` prints versions, device, threads and the cache folder."""
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "threads" in out and "cache:" in out


def test_zoo_list(capsys):
    """`nclib zoo list` names every recipe."""
    assert cli.main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "lenet300" in out and "vgg_small" in out


def test_console_script_help():
    """The installed module runs as a program and shows its help."""
    out = subprocess.run([sys.executable, "-m", "nclib.cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "zoo" in out


def test_run_executes_notebook_in_place(tmp_path, capsys):
    """`nclib run` executes a notebook in its own folder and saves the outputs into it."""
    import nbformat

    path = tmp_path / "demo.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nprint(sorted(os.listdir('.')))"),
                nbformat.v4.new_code_cell("6 * 7")]
    nbformat.write(nb, path)
    assert cli.main(["run", str(path)]) == 0
    out = nbformat.read(path, as_version=4)
    assert "demo.ipynb" in out.cells[0].outputs[0]["text"]
    assert out.cells[1].outputs[0]["data"]["text/plain"] == "42"
    assert cli.main(["run", str(tmp_path / "missing.ipynb")]) == 2
