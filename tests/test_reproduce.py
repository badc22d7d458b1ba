"""nclib reproduce: the registry, the JSON schema, and claims that can fail."""
import json

import pytest

from nclib import cli
from nclib.course import papers, reproduce


def test_list_names_overview_sizes(capsys):
    """--list names every experiment, overview-sizes among them."""
    assert cli.main(["reproduce", "--list"]) == 0
    assert "overview-sizes" in capsys.readouterr().out


def test_overview_sizes_json_schema_and_claims(capsys):
    """--json prints one object of the documented shape; the lecture's size claims hold."""
    assert cli.main(["reproduce", "overview-sizes", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"experiment", "dataset", "scale", "seconds", "rows", "claims"}
    assert set(out["rows"][0]) == {"label", "paper", "ours", "unit"}
    assert set(out["claims"][0]) == {"text", "value", "target", "holds"}
    assert len(out["claims"]) >= 6 and all(c["holds"] for c in out["claims"])
    vgg = next(r for r in out["rows"] if r["label"] == "VGG-16 params")
    assert vgg["paper"] == 138e6 and abs(vgg["ours"] / 138e6 - 1) < 0.02


def test_failing_claim_is_reported_not_hidden(monkeypatch, capsys):
    """A claim that does not hold is printed as such, and the exit code is still 0."""
    monkeypatch.setattr(reproduce, "EXPERIMENTS", dict(reproduce.EXPERIMENTS))
    monkeypatch.setattr(reproduce, "_load_all", lambda: None)

    @reproduce.experiment("toy", dataset="none", scale="tiny", summary="test")
    def toy(run):
        run.row("x", paper=1.0, ours=2.0, unit="%")
        run.claim_close("x matches", 2.0, 1.0, 0.1)

    assert cli.main(["reproduce", "toy"]) == 0
    out = capsys.readouterr().out
    assert "[DOES NOT HOLD] x matches (off by 100.00%, allowed 10%)" in out
    assert "data set none; scale tiny" in out


def test_unknown_experiment(capsys):
    """An unknown name exits 2 and points to --list."""
    assert cli.main(["reproduce", "nope"]) == 2
    assert "--list" in capsys.readouterr().err


def test_paper_tables_have_sources_and_lookup():
    """Every paper table names its source; rows are found by label, unknown labels listed."""
    assert all(t.source and t.rows for t in papers.TABLES.values())
    assert papers.table("han2015").row("LeNet-5 Pruned")["compression"] == 12
    assert papers.table("mobilenet").row("MobileNet")["million_mult_adds"] == 569
    with pytest.raises(KeyError, match="LeNet-5 Ref"):
        papers.table("han2015").row("LeNet-7")
    with pytest.raises(ValueError, match="name='imagenet'"):
        papers.table("imagenet")
