"""Chapter 03 check, task 10: which layers of an MLP to binarize, so that it fits a byte budget
and keeps an accuracy bar, with no retraining (XNOR-Net's binary-weight layers: sign(W)
times alpha = mean |W| per output, Rastegari et al. 2016, section 3.1).

The model is the `binary-mnist` experiment's fp32 MLP (the zoo's `bin-mlp-fp32`:
784-512-512-512-10, each Linear followed by BatchNorm). The student hands in the names of
the Linear layers to binarize; the check binarizes them (`binary.binarize_layers(model,
names, scale=True)`, weights only, activations stay fp32), counts the bytes with the binary
weights packed 64 to a word (`binary.binary_bytes`), and measures the accuracy on the
1,000 bundled test digits.

Measured when the budget was chosen (bytes, test accuracy; fp32: 3,754,184 B, 95.2%):
  fc1 alone          2,203,848   92.2%   over the budget (fc2, fc3: 1.05 MB each in fp32)
  fc1 fc2            1,190,088   86.6%   below the bar
  fc1 fc3            1,190,088   92.3%   the solution: 10 kB under, 2.3 points over
  fc1 fc3 fc4        1,170,288   86.6%   below the bar (the 10 outputs binarized)
  fc1 fc2 fc3          176,328   67.8%
  all four             156,528   49.7%
A binarized layer without retraining costs accuracy, more where the layer's rows are
unlike +-alpha (fc2, the classifier fc4); the budget forces fc1 and one of fc2 / fc3.
"""
from __future__ import annotations

from nclib import data, train, zoo
from nclib.chapters.quantization.experiments import binary as binary_mlp
from nclib.course.checking import Failure, describe, task
from nclib.quant import binary

__all__ = ["binarize_to_budget", "ref_binarize_to_budget", "BUDGET_BYTES", "MIN_ACCURACY",
           "LAYERS", "model", "measure_choice"]

BUDGET_BYTES = 1_200_000
MIN_ACCURACY = 0.90
LAYERS = ("fc1", "fc2", "fc3", "fc4")


def model():
    """The fp32 MLP of the task (the zoo's bin-mlp-fp32), in eval mode."""
    return zoo.trained(binary_mlp.mlp_name("fp32"), progress=False)


def measure_choice(names, loader=None) -> tuple[int, float]:
    """(bytes with the named layers binarized and packed, accuracy on `loader`: default test)."""
    b = binary.binarize_layers(model(), names, scale=True).eval()
    return binary.binary_bytes(b), train.evaluate(b, loader or data.loaders("mnist").test, device="cpu")


def ref_binarize_to_budget() -> set[str]:
    """The choice a measurement makes: of the subsets within the budget, the most accurate on
    the validation digits."""
    import itertools

    val = data.loaders("mnist").val
    best = None
    for k in range(1, len(LAYERS) + 1):
        for names in itertools.combinations(LAYERS, k):
            size, acc = measure_choice(names, val)
            if size <= BUDGET_BYTES and (best is None or acc > best[0]):
                best = (acc, set(names))
    return best[1]


def _names(student) -> list[str]:
    if isinstance(student, str):
        student = [student]
    if not isinstance(student, (set, list, tuple, frozenset)):
        raise Failure(f"hand in the names of the layers to binarize, e.g. {{'fc1', 'fc4'}}; got "
                      f"{describe(student)}.")
    names = list(student)
    bad = [n for n in names if n not in LAYERS]
    if bad:
        raise Failure(f"{bad} {'is not a layer' if len(bad) == 1 else 'are not layers'} of the MLP; "
                      f"its Linear layers are {', '.join(LAYERS)} (print(model) shows them).")
    return sorted(set(names))


@task("quantization", points=2, hint="Lecture 03, section 8 (Binary weights): bytes follow from "
      "the layer sizes (binary.binary_bytes), accuracy you must measure: try each choice that fits "
      "the budget on the validation digits, as the check does on the test digits.")
def binarize_to_budget(student):
    """binarize_to_budget(names): the Linear layers of bin-mlp-fp32 to binarize (with alpha, no
    retraining) so that the model takes at most BUDGET_BYTES with binary weights packed and
    keeps at least MIN_ACCURACY on the 1,000 test digits."""
    names = _names(student)
    size, acc = measure_choice(names)
    measured = (f"binarizing {', '.join(names) or 'nothing'}: {size:,} bytes (budget "
                f"{BUDGET_BYTES:,}) and {acc:.1%} test accuracy (bar {MIN_ACCURACY:.0%})")
    if size > BUDGET_BYTES:
        fp32 = [n for n in LAYERS if n not in names]
        raise Failure(f"{measured}: over the byte budget. Hint: the fp32 layers {', '.join(fp32)} "
                      "still take 4 bytes a weight; fc1 (784 x 512) is the largest, and "
                      "binarizing a layer stores 1 bit a weight instead of 32.")
    if acc < MIN_ACCURACY:
        raise Failure(f"{measured}: below the accuracy bar. Hint: every binarized layer costs "
                      "accuracy without retraining, some much more than others; binarize only "
                      "what the budget needs, and measure which of those choices keeps the most.")
    return f"{measured}: {binary.binary_bytes(model()) / size:.1f}x smaller than fp32."
