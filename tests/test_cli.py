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
