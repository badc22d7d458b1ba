"""nclib.course.discover: chapters are found by looking at nclib/chapters, never by name."""
import sys

import pytest

from nclib.course import check, discover


def test_chapter_names_are_the_folders():
    """Every package under nclib/chapters is a chapter, sorted; modules and private names are not."""
    names = discover.chapter_names()
    assert names == sorted(names)
    assert {"overview", "pruning", "distillation", "architecture"} <= set(names)
    assert not any(n.startswith("_") for n in names)


def test_chapter_part_imports_what_exists_and_none_otherwise():
    """A chapter's part is imported on request; a missing part or chapter is None, not an error."""
    module = discover.chapter_part("pruning", "checks")
    assert module.__name__ == "nclib.chapters.pruning.checks" and hasattr(module, "magnitude_mask")
    assert discover.chapter_part("overview", "widgets") is None
    assert discover.chapter_part("no_such_chapter", "checks") is None
    assert discover.chapter_part("pruning").__name__ == "nclib.chapters.pruning"


def test_import_all_registers_every_chapters_experiments():
    """import_all('experiments') imports each chapter that has experiments, and only those."""
    modules = discover.import_all("experiments")
    names = {m.__name__ for m in modules}
    assert "nclib.chapters.distillation.experiments" in names
    assert all(n in sys.modules for n in names)
    assert "nclib.chapters.overview.widgets" not in names


def test_check_namespace_finds_chapters_and_names_them_when_asked_wrong():
    """check.<chapter> is the chapter's checks; an unknown chapter lists the ones there are."""
    assert check.overview.linear_params.key == "overview.linear_params"
    with pytest.raises(AttributeError, match="no chapter 'quantisation'.*architecture.*pruning"):
        check.quantisation
    assert "pruning" in dir(check)
