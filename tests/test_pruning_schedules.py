"""nclib.pruning.schedules: AGP by hand, gradual pruning in fit, iterative pruning with retraining."""
import math

import pytest

from nclib import models, train
from nclib.pruning import magnitude as M
from nclib.pruning import schedules as S


def test_agp_schedule_values():
    """AGP eq. (1) by hand: s_f=0.9, n=4 gives 0.5203125, 0.7875, 0.8859375, 0.9; s_0 = s_i."""
    assert S.sparsity_schedule(0.9, 4) == pytest.approx([0.5203125, 0.7875, 0.8859375, 0.9])
    assert S.agp_sparsity(0, 10, 0.8, initial_sparsity=0.2) == pytest.approx(0.2)
    assert S.agp_sparsity(5, 10, 0.8, 0.2) == pytest.approx(0.8 - 0.6 * 0.125)
    assert S.agp_sparsity(99, 10, 0.8) == pytest.approx(0.8)
    assert S.sparsity_schedule(0.9, 3, "linear") == pytest.approx([0.3, 0.6, 0.9])
    kept = [1 - s for s in S.sparsity_schedule(0.9, 2, "geometric")]
    assert kept == pytest.approx([math.sqrt(0.1), 0.1])  # the same share of survivors each step
    with pytest.raises(ValueError, match="kind='cubic'.*'agp', 'linear', 'geometric'"):
        S.sparsity_schedule(0.9, 3, "cubic")
    with pytest.raises(ValueError, match="num_steps=0"):
        S.agp_sparsity(1, 0, 0.5)


def test_gradual_pruning_hook_reaches_final_sparsity(tiny_loaders):
    """GradualPruning as fit's step_hook: AGP targets at its steps, the final sparsity at the end."""
    model = models.LeNet300100()
    assert len(tiny_loaders.train) >= 10
    hook = S.GradualPruning(0.8, num_steps=4, frequency=2, start_step=2)  # steps 2, 4, .., 10
    targets = []

    def spy(m, step):
        hook(m, step)
        targets.append(M.global_sparsity(m))

    train.fit(model, tiny_loaders.train, epochs=1, step_hook=spy, progress=False)
    assert targets[0] == 0 and targets[1] == 0  # step 2 prunes to s_i = 0
    assert targets[3] == pytest.approx(S.agp_sparsity(1, 4, 0.8), abs=1e-3)  # step 4
    assert targets[-1] == pytest.approx(0.8, abs=1e-3)
    assert all(b >= a - 1e-9 for a, b in zip(targets, targets[1:]))


def test_prune_iteratively_retrains_between_steps(tiny_loaders):
    """prune_iteratively: one record per step, sparsity along the schedule, ends at the target."""
    model = models.LeNet300100()
    records = S.prune_iteratively(model, tiny_loaders.train, 0.9, num_steps=2, epochs_per_step=1,
                                  scope="global", val_loader=tiny_loaders.val, progress=False)
    assert [r["step"] for r in records] == [1, 2]
    assert records[0]["sparsity"] == pytest.approx(S.sparsity_schedule(0.9, 2)[0], abs=1e-4)
    assert records[1]["sparsity"] == pytest.approx(0.9, abs=1e-4)
    assert 0 <= records[1]["val_acc"] <= 1
    per_layer = models.LeNet300100()
    S.prune_iteratively(per_layer, tiny_loaders.train, {"fc1": 0.9, "fc3": 0.5}, num_steps=2,
                        epochs_per_step=1, progress=False)
    assert M.layer_sparsity(per_layer)["fc1"] == pytest.approx(0.9, abs=1e-4)
    assert M.layer_sparsity(per_layer)["fc2"] == 0
