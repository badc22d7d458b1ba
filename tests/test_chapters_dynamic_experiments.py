"""Chapter 06's experiments: settings that follow from the network, rows, and claims that hold."""
import pytest
import torch

from nclib import measure
from nclib.chapters.dynamic import experiments as E
from nclib.course.reproduce import Run, render, run_experiment
from nclib.dynamic import FBSNet, SkippingFBS
from nclib.models import SmallVGG
from nclib.pruning.structured import prune_l1_filters


def test_the_fixed_densities_and_sparsities_are_what_the_searches_give():
    """DENSITIES and SPARSITIES (fixed so that importing is free) equal density_for / static_sparsity_for."""
    assert {r: E.density_for(r) for r in E.REDUCTIONS} == E.DENSITIES
    assert {r: E.static_sparsity_for(r) for r in E.REDUCTIONS} == E.SPARSITIES


@pytest.mark.parametrize("reduction", E.REDUCTIONS)
def test_both_models_have_the_reduction_they_are_named_for(reduction):
    """FBS's MACs (predictors included, counted by SkippingFBS) and the L1-pruned network's
    (counted by nclib.measure) are at least `reduction` times fewer; one step less is not."""
    dense = measure.count_macs(SmallVGG(E.CFG), E.INPUT).total
    d = E.DENSITIES[reduction]
    fbs = SkippingFBS(FBSNet(E.CFG, d).eval()).forward_with_macs(torch.zeros(1, *E.INPUT))[1][0]
    assert fbs == E.fbs_macs(E.CFG, d) and fbs * reduction <= dense
    assert E.fbs_macs(E.CFG, d + 0.01) * reduction > dense
    s = E.SPARSITIES[reduction]
    assert measure.count_macs(prune_l1_filters(SmallVGG(E.CFG), s), E.INPUT).total * reduction <= dense
    assert measure.count_macs(prune_l1_filters(SmallVGG(E.CFG), s - 0.01), E.INPUT).total * reduction > dense


def test_run_fbs_on_small_models_reports_every_row_and_the_equality_claims():
    """With small untrained stand-ins the table has its rows and the skipping output equals masking."""
    torch.manual_seed(0)
    cfg = (8, "M", 16)
    base = SmallVGG(cfg).eval()
    run = Run("fbs", "test", "test")
    out = E.run_fbs(run, reductions=(2, 4), get_base=lambda: base,
                    get_fbs=lambda r: FBSNet.from_plain(base, 1 / r),
                    get_static=lambda r: prune_l1_filters(base, 1 - 1 / r), rounds=1,
                    timed_images=3)
    labels = [r.label for r in run.rows]
    assert any(label.startswith("4x: FBS accuracy drop") for label in labels)
    assert any(label.startswith("2x: batch-1 speed-up") for label in labels)
    equal = [c for c in run.claims if "equals the masked" in c.text]
    assert len(equal) == 2 and all(c.holds for c in equal)
    assert len(run.claims) == 4 and set(out["rows"]) == {2, 4}


@pytest.fixture(scope="module")
def fbs_run():
    return run_experiment("fbs")


def test_the_fbs_claims_hold(fbs_run):
    """Skipping equals masking and at 2x skipping pays; the 4x comparison with static pruning
    is made on this run's figures (on these digits the two tie within a point: closing note)."""
    equal = [c for c in fbs_run.claims if "equals the masked" in c.text]
    speed = [c for c in fbs_run.claims if "speed-up" in c.text]
    assert len(equal) == 3 and len(speed) == 1 and all(c.holds for c in equal + speed), render(fbs_run)
    (versus,) = [c for c in fbs_run.claims if "less accuracy than static" in c.text]
    fbs_drop, static_drop = versus.value, float(versus.target.removeprefix("< "))
    assert versus.holds == (fbs_drop < static_drop) and abs(fbs_drop - static_drop) <= 1.5


def test_the_blockdrop_claims_hold():
    """At most 0.6 of the blocks within 1 point of the full ResNet, and the saving is real
    time at batch 1 and in grouped batches of 64."""
    run = run_experiment("blockdrop")
    assert len(run.claims) == 4 and all(c.holds for c in run.claims), render(run)


def test_gather_cost_rows_count_the_kept_channels():
    """One row per width: ceil(d x C) channels kept, the MAC ratio (C / k)^2, two timings."""
    rows = E.gather_cost(widths=(16, 40), density=0.7, size=5, repeats=2, seconds=0)
    assert [r["channels"] for r in rows] == [16, 40] and [r["kept"] for r in rows] == [12, 28]
    assert rows[1]["mac_ratio"] == pytest.approx((40 / 28) ** 2)
    assert all(r["dense_ms"] > 0 and r["skipping_ms"] > 0 for r in rows)
    assert rows[0]["speedup"] == pytest.approx(rows[0]["dense_ms"] / rows[0]["skipping_ms"])


def test_gather_cost_alternates_the_two_ways_and_keeps_each_ones_fastest_call():
    """Calls alternate one by one (after 3 warm-up turns); slow calls of either way, even in
    most turns (where a median would take one), do not reach its figure: the fastest call."""
    import time

    order = []

    def way(name, slow_turns):
        def fn():
            order.append(name)
            if order.count(name) - 3 in slow_turns:  # that way's call in those timed turns
                time.sleep(0.03)
        return fn

    ms = E.fbs._fastest_ms((way("a", {1, 2, 3}), way("b", {2})), repeats=4, seconds=0)
    assert order == ["a", "b"] * 7 and all(m < 5 for m in ms)


def test_gather_cost_names_a_bad_repeats_or_seconds():
    """No turns, or a negative time budget: the error names the argument and its value."""
    with pytest.raises(ValueError, match="repeats=0"):
        E.gather_cost(widths=(16,), repeats=0)
    with pytest.raises(ValueError, match="seconds=-1"):
        E.gather_cost(widths=(16,), seconds=-1)


def test_per_image_ms_times_every_model_and_restores_the_threads():
    """A figure per model, in order; eight convolutions take longer than one; threads come back."""
    threads = torch.get_num_threads()
    one = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3, padding=1))
    eight = torch.nn.Sequential(*[torch.nn.Conv2d(1 if i == 0 else 32, 32, 3, padding=1) for i in range(8)])
    ms = E.per_image_ms([one, eight], torch.randn(6, 1, 28, 28), rounds=2)
    assert len(ms) == 2 and 0 < ms[0] < ms[1]
    assert torch.get_num_threads() == threads


def test_per_image_ms_keeps_each_images_fastest_run_so_a_slow_spell_costs_little():
    """One slow call in every pass, on a different image each time (image r in pass r): each
    image still has a fast run, so the figure stays far below what the best of whole passes
    would report (the slow call's share at least: 30 ms / 4 images = 7.5 ms). Image 0 opens
    the chunk (the untimed call that warms the model up runs it) and is never slow."""
    import time

    class SlowOncePerPass(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.seen = {}

        def forward(self, x):
            j = int(x.flatten()[0])
            self.seen[j] = self.seen.get(j, 0) + 1  # the warm-up is each image's first run
            if j > 0 and self.seen[j] == j + 1:  # image j's timed run in pass j (from 1)
                time.sleep(0.03)
            return x

    images = torch.arange(4.0).reshape(4, 1, 1, 1).expand(4, 1, 28, 28)
    model = SlowOncePerPass()
    (ms,) = E.per_image_ms([model], images, rounds=3, chunk=4)
    assert model.seen == {0: 7, 1: 4, 2: 4, 3: 4} and ms < 3.0


def test_per_image_ms_names_a_bad_rounds_or_chunk():
    """Zero rounds or images per turn would time nothing: the error names the value."""
    with pytest.raises(ValueError, match="chunk=0"):
        E.per_image_ms([torch.nn.Identity()], torch.randn(2, 1, 28, 28), chunk=0)
