"""nclib.measure.tables: report() fills a row, compare() shows ratios; human() shortens numbers."""
import pytest
import torch

from nclib import measure, models


def test_report_and_compare():
    """report() fills a row; compare() shows ratios to the baseline as text and HTML."""
    dense = models.LeNet300100()
    sparse = models.LeNet300100()
    with torch.no_grad():
        sparse.fc1.weight.mul_(torch.rand_like(sparse.fc1.weight) > 0.9)
    rows = [measure.report(dense, "dense", input_shape=(1, 28, 28), accuracy=0.95, repeats=3),
            measure.report(sparse, "masked", input_shape=(1, 28, 28), accuracy=0.94, repeats=3,
                           extra={"sparsity": 0.9})]
    assert rows[0].params == rows[1].params == 266_610
    assert rows[1].nonzeros < 0.25 * rows[0].nonzeros  # fc1 (88% of weights) keeps ~10%
    assert rows[0].macs == 266_200 and rows[0].latency is not None
    text = str(measure.compare(rows))
    assert "dense" in text and "x less" in text and "95.00%" in text and "sparsity" in text
    html = measure.compare(rows)._repr_html_()
    assert html.startswith("<table>") and "masked" in html


def test_report_bytes_in_the_named_format():
    """report's bytes column is storage_bytes in the format it names (here a sparse one)."""
    model = models.LeNet300100()
    row = measure.report(model, fmt="sparse_relative", latency=False)
    assert row.bytes == measure.storage_bytes(model, "sparse_relative")
    assert row.fmt == "sparse_relative"
    assert row.macs is None and row.latency is None


@pytest.mark.parametrize("call, match", [
    (lambda: measure.report(models.LeNet5(), accuracy=95.0), "accuracy=95.0"),
    (lambda: measure.compare([]), "at least one row"),
])
def test_bad_input(call, match):
    """Accuracies outside [0, 1] and empty tables raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=match):
        call()


def test_human():
    """human() shortens counts and byte sizes."""
    assert measure.human(1_230_000) == "1.23M"
    assert measure.human(2048, "B") == "2.05 kB"
    assert measure.human(552e6, "B") == "552 MB"
    assert measure.human(None) == "-"
