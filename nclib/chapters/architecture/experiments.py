"""Chapter 04: MobileNet's cost table and low-rank LeNet-300-100, beside the lecture.

* `mobilenet-table`: Howard et al. 2017 (MobileNets, arXiv 1704.04861), Tables 4 and 8:
  parameters and MACs of MobileNet v1, Conv MobileNet, GoogLeNet and VGG-16 counted on
  model definitions; the ImageNet accuracies are the paper's, quoted (we train nothing).
* `lowrank-lenet300`: LeNet-300-100's fc1 (784 -> 300) factorized by truncated SVD at
  several compressions, test accuracy right after and after a short fine-tune (on the
  bundled digits, or with ``--dataset mnist`` on the full files, from a LeNet-300-100
  trained there by the zoo's recipe).
"""
from __future__ import annotations

import torch
import torchvision

from nclib import arch, measure, models, train, zoo
from nclib.course.papers import table
from nclib.course.reproduce import Run, Source, experiment

# torchvision's GoogLeNet against the paper's (Szegedy et al. 2014, Table 1)
GOOGLENET_DIFFERENCES = ("BatchNorm after every convolution, 3x3 kernels in the '5x5' branches "
                         "(a bug kept for the pretrained weights), no local response "
                         "normalization, auxiliary classifiers off")


def _costs(model: torch.nn.Module) -> tuple[int, int]:
    """(parameters, MACs) of one 224 x 224 RGB image."""
    return measure.count_params(model), measure.count_macs(model, (3, 224, 224)).total


@experiment("mobilenet-table", dataset="none (model definitions only, no weights)",
            scale="full-size models, 224x224 input, 1000 classes; accuracies quoted from "
                  "the paper (ImageNet), not measured",
            summary="MobileNet vs Conv MobileNet vs GoogLeNet vs VGG-16: params and MACs")
def mobilenet_table(run: Run) -> None:
    paper = table("mobilenet")
    # "meta": shapes without memory or arithmetic; the counts need nothing else
    with torch.device("meta"):
        nets = {
            "MobileNet": (models.MobileNetV1(1000, 1.0, 224), 0.01),
            "Conv MobileNet": (models.MobileNetV1(1000, 1.0, 224, separable=False), 0.01),
            "GoogleNet": (torchvision.models.googlenet(weights=None, aux_logits=False,
                                                       init_weights=False), 0.05),
            "VGG 16": (torchvision.models.vgg16(weights=None), 0.02),
        }
    for label, (model, tolerance) in nets.items():
        params, macs = _costs(model)
        ref = paper.row(label)
        source = " (torchvision)" if label in ("GoogleNet", "VGG 16") else ""
        run.row(f"{label}{source} params", ref["million_params"] * 1e6, params, "params")
        run.row(f"{label}{source} MACs", ref["million_mult_adds"] * 1e6, macs, "MACs")
        run.row(f"{label} ImageNet top-1", ref["top1_pct"], None, "% (quoted)")
        what = label if label != "GoogleNet" else f"GoogleNet (torchvision: {GOOGLENET_DIFFERENCES})"
        run.claim_close(f"{what} parameters", params, ref["million_params"] * 1e6, tolerance)
        run.claim_close(f"{label} MACs", macs, ref["million_mult_adds"] * 1e6, tolerance)


# Fine-tune: all layers, a tenth of the zoo recipe's learning rate (the net is trained, only
# the factors must adapt), few epochs.
COMPRESSIONS = (2, 5, 10, 20, 50)
FINE_TUNE = dict(epochs=2, lr=1e-4)  # `train.fine_tune` settings, in the lecture too


def _fine_tuned_accuracy(model: torch.nn.Module, source: Source) -> float:
    """Test accuracy after the chapter's fine-tune (every model sees the same batches)."""
    L = source.loaders(seed=0)
    return train.evaluate(train.fine_tune(model, L.train, **FINE_TUNE), L.test)


def _scale(dense: str) -> str:
    return (f"LeNet-300-100 ({dense}), fc1 factorized by truncated SVD; fine-tune "
            f"{FINE_TUNE['epochs']} epochs, Adam {FINE_TUNE['lr']:g}, all layers")


@experiment("lowrank-lenet300", dataset="MNIST, the 5,000 bundled digits (1,000 test)",
            scale=_scale("zoo"), datasets=("bundled", "mnist"),
            summary="low-rank fc1 of LeNet-300-100: compression vs accuracy, with fine-tune")
def lowrank_lenet300(run: Run) -> None:
    source = run.source
    if source.name != "bundled":
        run.scale = _scale(f"trained on these digits as the zoo's: {zoo.RECIPES['lenet300'].description}")
    test = source.loaders(seed=0).test
    dense = source.dense("lenet300")
    N, M = dense.fc1.out_features, dense.fc1.in_features
    acc_dense = 100 * train.evaluate(dense, test)
    run.row("dense fc1 params", None, measure.count_params(dense.fc1), "params")
    run.row("dense test accuracy", None, acc_dense, "%")
    run.row("dense, same fine-tune", None,
            100 * _fine_tuned_accuracy(source.dense("lenet300"), source), "%")
    at_10x = None
    for compression in COMPRESSIONS:
        model = source.dense("lenet300")
        layer = arch.factorize_linear(model, "fc1", compression=compression)
        K = layer.rank
        layer_compression = N * M / (K * (N + M))  # of the weights: N M / (K (N + M))
        before = 100 * train.evaluate(model, test)
        after = 100 * _fine_tuned_accuracy(model, source)
        run.row(f"rank {K}: fc1 params", None, measure.count_params(layer), "params")
        run.row(f"rank {K}: fc1 compression", None, round(layer_compression, 2), "x")
        run.row(f"rank {K}: accuracy, factorized", None, before, "%")
        run.row(f"rank {K}: accuracy, fine-tuned", None, after, "%")
        if compression == 10:
            at_10x = (K, layer_compression, after)
    K, layer_compression, after = at_10x
    run.claim(f"at {layer_compression:.1f}x compression of fc1 (rank {K}) the fine-tuned "
              f"accuracy is within 1 point of dense ({after:.2f}% vs {acc_dense:.2f}%)",
              round(after - acc_dense, 2), ">= -1.0", after >= acc_dense - 1.0)
