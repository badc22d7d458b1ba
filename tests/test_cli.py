"""The nclib command: info and zoo sub-commands, chapters' commands, and clean errors."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from nclib import cli, zoo
from nclib.course import commands

ROOT = Path(__file__).resolve().parents[1]


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


def test_zoo_list_names_the_chapters_recipes():
    """A fresh `nclib zoo list` names the recipes the chapters' experiments register."""
    out = subprocess.run([sys.executable, "-m", "nclib.cli", "zoo", "list"], capture_output=True,
                         text=True, check=True).stdout
    for name in ("han-lenet300-s0", "han-lenet5-s2", "vgg-scratch", "kd-teacher",
                 "kd-student-kd-T4-s1", "kd-member-3", "kd-ensemble-distilled-s0"):
        assert name in out, name


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


def _say(args) -> int:
    print(f"hello x{args.times}")
    return 0


def _say_arguments(parser) -> None:
    parser.add_argument("--times", type=int, default=1)


def _build_tiny(**_):
    return nn.Linear(2, 2)


def _fit_tiny(progress=True):
    torch.manual_seed(0)
    return _build_tiny(), {"test_accuracy": 0.5}


@pytest.fixture
def chapter(monkeypatch, tmp_cache):
    """A command and a zoo recipe registered as a chapter would, in copies of the registries."""
    monkeypatch.setattr(commands, "COMMANDS", dict(commands.COMMANDS))
    monkeypatch.setattr(zoo, "RECIPES", dict(zoo.RECIPES))
    commands.command("say", help="say hello (a test chapter's command)",
                     add_arguments=_say_arguments)(_say)
    zoo.register("tiny_linear", train=_fit_tiny, build=_build_tiny, settings={},
                 description="a test chapter's recipe")


def test_chapter_command_is_listed_and_runs(chapter, capsys):
    """A registered chapter command shows in `nclib --help` and runs with its options."""
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0 and "say hello (a test chapter's command)" in capsys.readouterr().out
    assert cli.main(["say", "--times", "3"]) == 0
    assert capsys.readouterr().out == "hello x3\n"


def test_chapter_zoo_recipe_is_listed_and_trained(chapter, capsys):
    """`nclib zoo list` and `nclib zoo train` see a recipe that a chapter registered."""
    assert cli.main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny_linear" in out and "a test chapter's recipe" in out and "not trained yet" in out
    assert cli.main(["zoo", "train", "tiny_linear"]) == 0
    assert "tiny_linear" in capsys.readouterr().out and zoo.cache_path("tiny_linear").exists()
    assert cli.main(["zoo", "train", "alexnet"]) == 2
    assert "name='alexnet'" in capsys.readouterr().err


def test_chapter_command_may_not_take_a_builtin_name(monkeypatch):
    """A chapter command named like a built-in one is a clear error, not a silent override."""
    monkeypatch.setattr(commands, "COMMANDS", dict(commands.COMMANDS))
    commands.command("zoo", help="a clash")(_say)
    with pytest.raises(ValueError, match="chapter command 'zoo' .*test_cli.*built-in `nclib zoo`"):
        cli.main(["info"])


def test_chapter_commands_cannot_share_a_name(monkeypatch):
    """Two different functions registered under one name: the second is refused."""
    monkeypatch.setattr(commands, "COMMANDS", dict(commands.COMMANDS))
    commands.command("say", help="first")(_say)
    commands.command("say", help="again")(_say)  # the same function (a reload): fine
    with pytest.raises(ValueError, match="'say': already registered by .*_say"):
        commands.command("say", help="second")(_say_arguments)


@pytest.fixture
def release(tmp_path):
    """A copy of the repository's exercises/ in a scratch folder."""
    shutil.copytree(ROOT / "exercises", tmp_path / "exercises")
    return tmp_path / "exercises"


def test_exercises_start_copies_all_then_never_overwrites(release, capsys):
    """`nclib exercises start` copies every exercise beside exercises/; a second run copies none
    and leaves a student's edited file byte-identical, naming it as kept."""
    names = sorted(p.name for p in release.glob("[0-9][0-9]_*.ipynb"))
    folder = release.parent / "my-exercises"
    assert len(names) >= 2 and cli.main(["exercises", "start", "--exercises", str(release)]) == 0
    out = capsys.readouterr().out
    assert f"copied {len(names)} exercise(s) into {folder}/" in out and "kept" not in out
    assert sorted(p.name for p in folder.iterdir()) == names
    assert all((folder / n).read_bytes() == (release / n).read_bytes() for n in names)
    edited = folder / names[0]
    edited.write_bytes(edited.read_bytes().replace(b"NotImplementedError", b"MyAnswer"))
    before = edited.read_bytes()
    (folder / names[1]).unlink()  # a deleted copy comes back
    assert cli.main(["exercises", "start", "--exercises", str(release)]) == 0
    out = capsys.readouterr().out
    assert f"copied 1 exercise(s) into {folder}/\n  {folder / names[1]}\n" in out
    assert f"kept {len(names) - 1} file(s) that already exist there" in out and f"  {edited}\n" in out
    assert edited.read_bytes() == before


def test_exercises_start_into_a_named_folder(release, tmp_path, capsys):
    """`nclib exercises start DIR` creates DIR (and its parents) and copies the exercises there."""
    folder = tmp_path / "work" / "mine"
    assert cli.main(["exercises", "start", str(folder), "--exercises", str(release)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in release.glob("*.ipynb"))
    assert not (release.parent / "my-exercises").exists()


@pytest.mark.parametrize("make_argv, match", [
    (lambda ex, f: ["exercises", "start", str(f), "--exercises", str(ex)],
     "DIR='{f}' is a file; expected a folder"),
    (lambda ex, f: ["exercises", "start", "--exercises", str(ex / "none")],
     "--exercises='{ex}/none': no exercises (NN_name.ipynb) there; expected the folder"),
    (lambda ex, f: ["exercises", "start", str(ex), "--exercises", str(ex)],
     "DIR='{ex}' is the release folder"),
    (lambda ex, f: ["exercises", "build", "mine"],
     "DIR='mine': only `nclib exercises start` takes a folder"),
])
def test_exercises_start_bad_input(release, make_argv, match, capsys):
    """A file as DIR, a folder without exercises, the release itself as DIR, or DIR with build:
    exit 2 with the argument, the value and what is allowed, and nothing copied."""
    file = release.parent / "notes.txt"
    file.write_text("mine")
    assert cli.main(make_argv(release, file)) == 2
    assert match.format(ex=release, f=file) in capsys.readouterr().err
    assert file.read_text() == "mine" and not (release.parent / "my-exercises").exists()
