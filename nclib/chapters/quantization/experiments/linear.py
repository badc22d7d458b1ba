"""Chapter 03 experiment `linear-quant`: linear (affine) quantization of LeNet-5 and SmallVGG,
after training (PTQ) and during it (QAT), on the bundled digits.

PTQ (`nclib.quant.quantized.quantize_model`): BatchNorm folded, weights symmetric and
signed (per tensor or per output channel), each layer's input asymmetric and unsigned,
its range the min and max over 8 training batches. QAT (`prepare_qat`): the same layers,
trained for `QAT_EPOCHS` epochs with the straight-through estimator. Because QAT trains
more, a control row gives the float model the same epochs.

Bytes are measured: the int8 state (integer weights, their scales, fp32 biases) saved
with torch.save, against the fp32 state_dict. 4-bit weights sit in int8 containers there
(two per byte would halve them again); the row says so.
"""
from __future__ import annotations

import copy
import io

import torch
from torch import nn

from nclib import data, measure, models, train, zoo
from nclib.course.reproduce import Run, experiment
from nclib.quant import quantized
from nclib.train import evaluate

DATASET = "MNIST, the 5,000 bundled digits (3,500 train / 500 val / 1,000 test)"
NETWORKS = {"lenet5": "LeNet-5", "vgg_small": "SmallVGG"}
PTQ_BITS = (8, 4, 3)  # 3 bits shows where PTQ breaks
QAT_BITS = 4
QAT = dict(epochs=2, lr=1e-4)  # Adam; 1e-3 undoes the float model's training in 2 epochs
CALIBRATION_BATCHES = 8  # of 64 training digits
MAX_PTQ8_DROP = 0.5  # points of test accuracy 8-bit PTQ may lose
MIN_RECOVERED = 0.5  # the fraction of 4-bit PTQ's loss that QAT must win back

__all__ = ["NETWORKS", "PTQ_BITS", "QAT_BITS", "QAT", "ptq", "qat", "int8_bytes", "run_linear",
           "qat_name"]


def ptq(model: nn.Module, num_bits: int, per_channel: bool) -> nn.Module:
    """Post-training quantization, calibrated on the chapter's training digits."""
    return quantized.quantize_model(model, data.loaders("mnist", seed=0).train, num_bits=num_bits,
                                    per_channel=per_channel, num_batches=CALIBRATION_BATCHES)


def qat(model: nn.Module, num_bits: int = QAT_BITS, per_channel: bool = False, seed: int = 0,
        epochs: int = QAT["epochs"]) -> nn.Module:
    """Quantization-aware training from the float model, `epochs` epochs of Adam (`QAT`)."""
    q = quantized.prepare_qat(model, num_bits=num_bits, per_channel=per_channel)
    torch.manual_seed(seed)
    train.fit(q, data.loaders("mnist", seed=seed).train, epochs=epochs, lr=QAT["lr"], progress=False)
    return q.eval()


def qat_name(name: str, num_bits: int = QAT_BITS) -> str:
    """The zoo name of a QAT model: 'qat4-lenet5'."""
    return f"qat{num_bits}-{name}"


def _build_qat(name: str, num_bits: int, **_) -> nn.Module:
    return quantized.prepare_qat(models.create(name), num_bits=num_bits).eval()


def _fit_qat(name: str, num_bits: int, dense_key: str, recipe: dict, progress: bool = True):
    """(`dense_key` and `recipe` are in the settings so that the cache key follows them.)"""
    return qat(zoo.trained(name, progress=progress), num_bits), {}


for _name in NETWORKS:
    zoo.register(qat_name(_name), train=_fit_qat, build=_build_qat,
                 settings=dict(name=_name, num_bits=QAT_BITS, dense_key=zoo.RECIPES[_name].key,
                               recipe=QAT),
                 depends_on=(qat,), description=f"chapter 03: {NETWORKS[_name]} after {QAT_BITS}-bit "
                 f"QAT, per tensor, {QAT['epochs']} epochs")


def more_float_training(model: nn.Module, seed: int = 0, epochs: int = QAT["epochs"]) -> nn.Module:
    """The control: the float model trained for QAT's epochs at QAT's learning rate."""
    model = copy.deepcopy(model)
    torch.manual_seed(seed)
    train.fit(model, data.loaders("mnist", seed=seed).train, epochs=epochs, lr=QAT["lr"], progress=False)
    return model.eval()


def int8_bytes(qmodel: nn.Module) -> int:
    """Bytes of ``torch.save(int8_state_dict(qmodel))``, measured."""
    buf = io.BytesIO()
    torch.save(quantized.int8_state_dict(qmodel), buf)
    return buf.tell()


def run_linear(run: Run, networks=tuple(NETWORKS), ptq_bits=PTQ_BITS, qat_epochs: int = QAT["epochs"]
               ) -> dict:
    """PTQ at each width, per tensor and per channel, and QAT at 4 bits: rows and claims."""
    test = data.loaders("mnist").test
    results = {}
    for name in networks:
        label, model = NETWORKS[name], zoo.trained(name, progress=False)
        fp32 = 100 * evaluate(model, test)
        r = {"fp32": fp32, "ptq": {}}
        run.row(f"{label}: fp32 test accuracy", None, fp32, "%")
        run.row(f"{label}: fp32 state_dict bytes", None, measure.saved_bytes(model), "bytes")
        for bits in ptq_bits:
            for per_channel in (False, True):
                q = ptq(model, bits, per_channel)
                acc = 100 * evaluate(q, test)
                r["ptq"][bits, per_channel] = acc
                how = "per channel" if per_channel else "per tensor"
                run.row(f"{label}: PTQ {bits}-bit {how}, test accuracy", None, acc, "%")
                if bits == 8:
                    run.row(f"{label}: PTQ 8-bit {how}, int8 state bytes", None, int8_bytes(q), "bytes")
        q = qat(model, epochs=qat_epochs)
        r["qat"] = 100 * evaluate(q, test)
        r["control"] = 100 * evaluate(more_float_training(model, epochs=qat_epochs), test)
        run.row(f"{label}: QAT {QAT_BITS}-bit per tensor, {qat_epochs} epochs, test accuracy", None,
                r["qat"], "%")
        run.row(f"{label}: control, fp32 trained {qat_epochs} more epochs", None, r["control"], "%")
        run.row(f"{label}: {QAT_BITS}-bit int8-container state bytes", None, int8_bytes(q), "bytes")
        results[name] = r
    for name, r in results.items():
        label = NETWORKS[name]
        worst8 = min(r["ptq"][8, pc] for pc in (False, True))
        run.claim(f"{label}: 8-bit PTQ is within {MAX_PTQ8_DROP:g} points of fp32 (per tensor and per "
                  f"channel; worst {worst8:.1f}% vs {r['fp32']:.1f}%)", round(worst8 - r["fp32"], 2),
                  f">= -{MAX_PTQ8_DROP:g}", worst8 >= r["fp32"] - MAX_PTQ8_DROP - 1e-9)
        lost = r["fp32"] - r["ptq"][QAT_BITS, False]
        won = r["qat"] - r["ptq"][QAT_BITS, False]
        run.claim(f"{label}: 4-bit QAT wins back at least half of what 4-bit PTQ (per tensor) lost "
                  f"(PTQ lost {lost:.1f} points, QAT won {won:.1f})", round(won, 2),
                  f">= {MIN_RECOVERED:g} x {lost:.1f}", won >= MIN_RECOVERED * lost - 1e-9)
    return results


@experiment("linear-quant", dataset=DATASET,
            scale=f"LeNet-5 and SmallVGG (zoo); PTQ at {', '.join(map(str, PTQ_BITS))} bits, per "
                  f"tensor and per channel, {CALIBRATION_BATCHES} calibration batches of 64; QAT "
                  f"{QAT_BITS}-bit per tensor, {QAT['epochs']} epochs Adam {QAT['lr']:g}; one seed",
            summary="PTQ at 8/4/3 bits and QAT at 4 bits: accuracy and measured bytes")
def linear_quant(run: Run) -> None:
    run_linear(run)
