"""nclib.train: fit learns, hooks are called, and mistakes fail early and clearly."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nclib import models, train


def test_fit_learns_and_records_history(tiny_loaders):
    """A LeNet-300-100 trained for 3 epochs on 400 digits beats 70% (chance: 10%) and the history has one entry an epoch."""
    m = models.LeNet300100()
    h = train.fit(m, tiny_loaders.train, tiny_loaders.val, epochs=3, progress=False)
    assert h.epochs == 3 and len(h.val_acc) == 3 and len(h.seconds) == 3
    assert h.train_loss[-1] < h.train_loss[0]
    assert train.evaluate(m, tiny_loaders.test) > 0.7
    assert set(h.as_dict()) == {"train_loss", "train_acc", "val_loss", "val_acc", "seconds"}


def test_fit_is_reproducible(tiny_loaders):
    """Same seed, same data order: the same weights after training."""
    from nclib import data

    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        m = models.LeNet300100()
        L = data.loaders(data.Splits(*[tuple(t for t in p) for p in [
            tiny_loaders.train.dataset.tensors, tiny_loaders.val.dataset.tensors,
            tiny_loaders.test.dataset.tensors]]), batch_size=32, seed=3)
        train.fit(m, L.train, epochs=1, progress=False)
        weights.append(m.fc3.weight.detach().clone())
    assert torch.equal(*weights)


def test_step_hook_called_every_step(tiny_loaders):
    """step_hook gets the model and a step counter after every optimizer step."""
    steps = []
    train.fit(models.LeNet300100(), tiny_loaders.train, epochs=2, progress=False,
              step_hook=lambda model, step: steps.append(step))
    assert steps == list(range(1, 2 * len(tiny_loaders.train) + 1))


def test_custom_loss_and_loss_with_inputs(tiny_loaders):
    """loss_fn replaces cross-entropy; with uses_inputs it also receives the batch inputs."""
    seen = {}

    class InputAware:
        uses_inputs = True

        def __call__(self, logits, y, x):
            seen["x"] = x.shape
            return F.cross_entropy(logits, y)

    train.fit(models.LeNet300100(), tiny_loaders.train, epochs=1, progress=False,
              loss_fn=InputAware())
    assert seen["x"][1:] == (1, 28, 28)
    calls = []
    train.fit(models.LeNet300100(), tiny_loaders.train, epochs=1, progress=False,
              loss_fn=lambda logits, y: calls.append(1) or F.cross_entropy(logits, y))
    assert len(calls) == len(tiny_loaders.train)


def _loader(x, y):
    return DataLoader(TensorDataset(x, y), batch_size=4)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"epochs": -1}, ValueError, "epochs=-1"),
    ({"epochs": 2.5}, ValueError, "epochs=2.5"),
    ({"lr": 0}, ValueError, "lr=0"),
    ({"optimizer": "adagrad"}, ValueError, "optimizer='adagrad'"),
    ({"device": "cuda:7" if not torch.cuda.is_available() else "tpu"}, ValueError, "device="),
])
def test_fit_rejects_bad_arguments(kwargs, exc, match):
    """Bad epochs, lr, optimizer or device raise errors naming the argument and value."""
    loader = _loader(torch.zeros(8, 1, 28, 28), torch.zeros(8, dtype=torch.long))
    args = {"epochs": 1, "progress": False, **kwargs}
    with pytest.raises(exc, match=match):
        train.fit(models.LeNet300100(), loader, **args)


@pytest.mark.parametrize("x, y, exc, match", [
    (torch.zeros(8, 3, 32, 32), torch.zeros(8, dtype=torch.long), ValueError, r"inputs of shape \(4, 3, 32, 32\)"),
    (torch.zeros(8, 1, 28, 28), torch.full((8,), 12), ValueError, "outputs only 10 classes"),
    (torch.zeros(8, 1, 28, 28), torch.zeros(8), TypeError, "integer class indices"),
    (torch.zeros(8, 1, 28, 28), torch.zeros(8, 2, dtype=torch.long), ValueError, r"shape \(batch,\)"),
])
def test_fit_explains_shape_and_label_mistakes(x, y, exc, match):
    """Wrong input shapes and out-of-range or float labels fail before training, clearly."""
    with pytest.raises(exc, match=match):
        train.fit(models.LeNet300100(), _loader(x, y), epochs=1, progress=False)


def test_evaluate_checks_batches_and_restores_mode():
    """evaluate() returns a fraction, keeps training mode, and rejects an empty loader."""
    m = models.LeNet300100().train()
    acc = train.evaluate(m, _loader(torch.zeros(8, 1, 28, 28), torch.zeros(8, dtype=torch.long)))
    assert 0 <= acc <= 1 and m.training
    with pytest.raises(ValueError, match="no samples"):
        train.evaluate(m, [])


def test_history_plot():
    """History.plot draws loss and accuracy curves."""
    import matplotlib
    matplotlib.use("Agg")
    h = train.History([1.0, 0.5], [0.5, 0.8], [1.1, 0.6], [0.4, 0.7], [0.1, 0.1])
    ax = h.plot()
    assert len(ax[0].lines) == 2 and len(ax[1].lines) == 2


def test_fine_tune_is_seeded_and_trains_in_place(tiny_loaders):
    """fine_tune trains the model it is given and returns it; the same seed gives the same weights, another seed others."""
    def tuned(seed):
        torch.manual_seed(123)  # the caller's random state must not matter
        m = models.LeNet300100()
        torch.manual_seed(999)
        noisy = DataLoader(tiny_loaders.train.dataset, batch_size=32, shuffle=True)  # global RNG order
        before = m.fc1.weight.detach().clone()
        out = train.fine_tune(m, noisy, epochs=1, lr=1e-3, seed=seed)
        assert out is m and not torch.equal(before, m.fc1.weight)
        return m.fc1.weight.detach().clone()

    assert torch.equal(tuned(0), tuned(0))
    assert not torch.equal(tuned(0), tuned(1))
    with pytest.raises(ValueError, match="epochs=-1"):
        train.fine_tune(models.LeNet300100(), tiny_loaders.train, epochs=-1, lr=1e-3)
