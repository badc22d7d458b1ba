"""nclib.measure.latency: latency states its conditions, restores the model, compares fairly."""
import pytest
import torch

from nclib import measure, models


def test_measure_latency_reports_conditions():
    """Latency is positive, p10 <= median <= p90, and says batch, threads and device."""
    lat = measure.measure_latency(models.LeNet300100(), (1, 28, 28), batch_size=8, repeats=5,
                                  threads=1)
    assert 0 < lat.p10_ms <= lat.median_ms <= lat.p90_ms
    assert (lat.batch_size, lat.threads, lat.device) == (8, 1, "cpu")
    assert "batch 8" in str(lat)


def test_measure_latency_keeps_model_state():
    """Measuring leaves the model in training mode if it was, and restores threads."""
    m = models.LeNet300100().train()
    before = torch.get_num_threads()
    measure.measure_latency(m, (1, 28, 28), repeats=2, threads=2)
    assert m.training and torch.get_num_threads() == before


def test_best_latencies_takes_each_models_fastest_round():
    """best_latencies returns one Latency per model, each no slower than a single round."""
    ms = [models.LeNet300100(), models.LeNet5()]
    x = torch.zeros(2, 1, 28, 28)
    lats = measure.best_latencies(ms, x, rounds=3, repeats=3)
    assert len(lats) == 2 and all(l.batch_size == 2 and l.median_ms > 0 for l in lats)
    with pytest.raises(ValueError, match="rounds=0"):
        measure.best_latencies(ms, x, rounds=0)


def test_best_latencies_makes_the_batch_from_a_shape(monkeypatch):
    """With input_shape and batch_size, every model gets measure_latency's seeded batch."""
    seen = []
    real = measure.latency.measure_latency

    def spy(model, *args, inputs=None, **kwargs):
        seen.append(inputs)
        return real(model, *args, inputs=inputs, **kwargs)

    monkeypatch.setattr(measure.latency, "measure_latency", spy)
    ms = [models.LeNet300100(), models.LeNet5()]
    lats = measure.best_latencies(ms, input_shape=(1, 28, 28), batch_size=4, rounds=2, repeats=2)
    assert [l.batch_size for l in lats] == [4, 4] and len(seen) == 4
    expected = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(x, expected) for x in seen)


@pytest.mark.parametrize("call, match", [
    (lambda: measure.measure_latency(models.LeNet5(), (1, 28, 28), batch_size=-2), "batch_size=-2"),
    (lambda: measure.measure_latency(models.LeNet5()), "exactly one of input_shape or inputs"),
    (lambda: measure.best_latencies([models.LeNet5()]), "exactly one of input_shape or inputs"),
    (lambda: measure.best_latencies([models.LeNet5()], torch.zeros(1, 1, 28, 28),
                                    input_shape=(1, 28, 28)), "best_latencies: give exactly one"),
    (lambda: measure.best_latencies([models.LeNet5()], input_shape=(1, 28, 28), batch_size=0),
     "batch_size=0"),
    (lambda: measure.best_latencies([models.LeNet5()], input_shape=(0, 28)), "input_shape"),
])
def test_bad_input(call, match):
    """Both or neither of inputs and input_shape, bad sizes and shapes: ValueError naming them."""
    with pytest.raises(ValueError, match=match):
        call()
