"""The lecture's result tables, as data, each with its source.

These are the papers' own numbers (ImageNet, CIFAR-10, speech) as the lecture quotes them.
Our small-scale reproductions (`nclib reproduce`) print them beside what we measure.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PaperTable", "TABLES", "table"]


@dataclass(frozen=True)
class PaperTable:
    name: str
    source: str
    dataset: str
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]

    def row(self, label: str) -> dict:
        """One row as {column: value}, looked up by its first column."""
        for r in self.rows:
            if r[0] == label:
                return dict(zip(self.columns, r))
        raise KeyError(f"{self.name}: no row {label!r}; rows: {', '.join(r[0] for r in self.rows)}")


TABLES: dict[str, PaperTable] = {t.name: t for t in [
    PaperTable(
        "han2015", "Han et al., Learning both Weights and Connections for Efficient Neural "
        "Networks, NIPS 2015, Table 1", "MNIST (LeNets), ImageNet (AlexNet, VGG-16)",
        ("network", "top1_error_pct", "top5_error_pct", "params", "compression"),
        (("LeNet-300-100 Ref", 1.64, None, 267e3, None),
         ("LeNet-300-100 Pruned", 1.59, None, 22e3, 12),
         ("LeNet-5 Ref", 0.80, None, 431e3, None),
         ("LeNet-5 Pruned", 0.77, None, 36e3, 12),
         ("AlexNet Ref", 42.78, 19.73, 61e6, None),
         ("AlexNet Pruned", 42.77, 19.67, 6.7e6, 9),
         ("VGG-16 Ref", 31.50, 11.32, 138e6, None),
         ("VGG-16 Pruned", 31.34, 10.88, 10.3e6, 13))),
    PaperTable(
        "han2015-lenet300-layers", "Han et al., NIPS 2015, Table 2 (weights kept per layer)",
        "MNIST", ("layer", "kept_fraction"),
        (("fc1", 0.08), ("fc2", 0.09), ("fc3", 0.26))),
    PaperTable(
        "han2015-lenet5-layers", "Han et al., NIPS 2015, Table 3 (weights kept per layer)",
        "MNIST", ("layer", "kept_fraction"),
        (("conv1", 0.66), ("conv2", 0.12), ("fc1", 0.08), ("fc2", 0.19))),
    PaperTable(
        "deep-compression", "Han et al., Deep Compression: Compressing Deep Neural Networks "
        "with Pruning, Trained Quantization and Huffman Coding, ICLR 2016, Table 1",
        "MNIST (LeNets), ImageNet (AlexNet, VGG-16)",
        ("network", "top1_error_pct", "top5_error_pct", "size_bytes", "compression"),
        (("LeNet-300-100 Ref", 1.64, None, 1070e3, None),
         ("LeNet-300-100 Compressed", 1.58, None, 27e3, 40),
         ("LeNet-5 Ref", 0.80, None, 1720e3, None),
         ("LeNet-5 Compressed", 0.74, None, 44e3, 39),
         ("AlexNet Ref", 42.78, 19.73, 240e6, None),
         ("AlexNet Compressed", 42.78, 19.70, 6.9e6, 35),
         ("VGG-16 Ref", 31.50, 11.32, 552e6, None),
         ("VGG-16 Compressed", 31.17, 10.91, 11.3e6, 49))),
    PaperTable(
        "thinet", "Luo et al., ThiNet: A Filter Level Pruning Method for Deep Neural Network "
        "Compression, ICCV 2017 (VGG-16 on ImageNet)", "ImageNet",
        ("model", "top1_pct", "top5_pct", "params", "flops", "forward_ms", "backward_ms"),
        (("Original", 68.34, 88.44, 138.34e6, 30.94e9, 189.92, 407.56),
         ("ThiNet-Conv", 69.80, 89.53, 131.44e6, 9.58e9, 76.71, 152.05),
         ("Train from scratch", 67.00, 87.45, 131.44e6, 9.58e9, 76.71, 152.05),
         ("ThiNet-GAP", 67.34, 87.92, 8.32e6, 9.34e9, 71.73, 145.51))),
    PaperTable(
        "rethinking", "Liu et al., Rethinking the Value of Network Pruning, ICLR 2019 "
        "(ThiNet-pruned models, top-1 accuracy change vs unpruned)", "ImageNet",
        ("model", "strategy", "unpruned_top1_pct", "delta_pct"),
        (("VGG-Conv", "Fine-tuned", 71.03, -1.23), ("VGG-Conv", "Scratch-E", 71.51, -2.75),
         ("VGG-Conv", "Scratch-B", 71.51, +0.21),
         ("VGG-GAP", "Fine-tuned", 71.03, -3.67), ("VGG-GAP", "Scratch-E", 71.51, -4.66),
         ("VGG-GAP", "Scratch-B", 71.51, -2.85),
         ("ResNet50-30%", "Fine-tuned", 75.15, -6.72), ("ResNet50-30%", "Scratch-E", 76.13, -5.21),
         ("ResNet50-30%", "Scratch-B", 76.13, -4.56),
         ("ResNet50-50%", "Fine-tuned", 75.15, -4.13), ("ResNet50-50%", "Scratch-E", 76.13, -2.82),
         ("ResNet50-50%", "Scratch-B", 76.13, -2.23))),
    PaperTable(
        "hinton2015-speech", "Hinton et al., Distilling the Knowledge in a Neural Network, "
        "arXiv 2015, Table 1 (speech recognition)", "speech (frame classification)",
        ("system", "test_frame_accuracy_pct"),
        (("Baseline", 58.9), ("10xEnsemble", 61.1), ("Distilled Single model", 60.8))),
    PaperTable(
        "hinton2015-mnist", "Hinton et al., Distilling the Knowledge in a Neural Network, "
        "arXiv 2015, section 3 (test errors of 10,000 MNIST digits; teacher 2x1200 units with "
        "dropout and jitter, student 2x800 units)", "MNIST (60,000 training digits)",
        ("model", "test_errors", "test_accuracy_pct"),
        (("teacher", 67, 99.33), ("student, labels only", 146, 98.54),
         ("student, distilled (T = 20)", 74, 99.26))),
    PaperTable(
        "binary-mnist", "Courbariaux et al., BinaryConnect, NIPS 2015, Table 2, and Hubara et "
        "al., Binarized Neural Networks, NIPS 2016, Table 1 (permutation-invariant MLPs; "
        "values as Ardakani et al., ICLR 2017, Table 5, list them and as the authors' code "
        "reports, not re-read from the two tables)", "MNIST (60,000 training digits)",
        ("method", "test_error_pct"),
        (("BinaryConnect (det.)", 1.29), ("BinaryConnect (stoch.)", 1.18),
         ("BNN (Theano)", 0.96), ("BNN (Torch7)", 1.40))),
    PaperTable(
        "xnor-net", "Rastegari et al., XNOR-Net, ECCV 2016 (arXiv 1603.05279), Table 1 (AlexNet)",
        "ImageNet", ("method", "top1_pct", "top5_pct"),
        (("Full precision AlexNet", 56.6, 80.2), ("Binary-Weight-Network (BWN)", 56.8, 79.4),
         ("XNOR-Net", 44.2, 69.2), ("BinaryConnect", 35.4, 61.0), ("BNN", 27.9, 50.42))),
    PaperTable(
        "xnor-speedup", "Rastegari et al., XNOR-Net, ECCV 2016, section 4.1: S = 64 c N_W / "
        "(c N_W + 64) high-precision operations saved; 58x measured 'in one convolution' with "
        "their CPU code (excluding memory allocation and access)", "one convolution",
        ("figure", "c", "n_w", "n_i", "speedup"),
        (("theoretical", 256, 9, 196, 62.27), ("measured (their CPU implementation)", 256, 9, 196, 58))),
    PaperTable(
        "mobilenet", "Howard et al., MobileNets: Efficient Convolutional Neural Networks for "
        "Mobile Vision Applications, arXiv 1704.04861, 2017, Tables 4 and 8", "ImageNet",
        ("model", "top1_pct", "million_mult_adds", "million_params"),
        (("Conv MobileNet", 71.7, 4866, 29.3), ("MobileNet", 70.6, 569, 4.2),
         ("GoogleNet", 69.8, 1550, 6.8), ("VGG 16", 71.5, 15300, 138))),
    PaperTable(
        "nas", "Zoph & Le, Neural Architecture Search with Reinforcement Learning, ICLR 2017, "
        "Table 1 (selected rows)", "CIFAR-10",
        ("model", "depth", "params", "error_pct"),
        (("ResNet (He et al., 2016a)", 110, 1.7e6, 6.61),
         ("Wide ResNet (Zagoruyko & Komodakis, 2016)", 16, 11.0e6, 4.81),
         ("DenseNet-BC (L = 100, k = 40)", 190, 25.6e6, 3.46),
         ("Neural Architecture Search v1 no stride or pooling", 15, 4.2e6, 5.50),
         ("Neural Architecture Search v2 predicting strides", 20, 2.5e6, 6.01),
         ("Neural Architecture Search v3 max pooling", 39, 7.1e6, 4.47),
         ("Neural Architecture Search v3 max pooling + more filters", 39, 37.4e6, 3.65))),
    PaperTable(
        "blockdrop", "Wu et al., BlockDrop: Dynamic Inference Paths in Residual Networks, CVPR "
        "2018 (ResNet-110 on CIFAR-10: the pretrained network and BlockDrop's policy)", "CIFAR-10",
        ("model", "blocks_total", "blocks_used", "accuracy_pct"),
        (("ResNet-110", 54, 54, 93.2),
         ("BlockDrop", 54, 16.9, 93.6))),
    PaperTable(
        "fbs", "Gao et al., Dynamic Channel Pruning: Feature Boosting and Suppression, ICLR "
        "2019, Table 2 (VGG-16, increase in top-5 error at 3x / 4x / 5x speed-up)", "ImageNet",
        ("method", "dynamic", "delta_top5_3x", "delta_top5_4x", "delta_top5_5x"),
        (("Filter Pruning", False, None, 8.6, 14.6),
         ("Perforated CNNs", False, 3.7, 5.5, None),
         ("Network Slimming", False, 1.37, 3.26, 5.18),
         ("Runtime Neural Pruning", True, 2.32, 3.23, 3.58),
         ("Channel Pruning", False, 0.0, 1.0, 1.7),
         ("AutoML for Model Compression", False, None, None, 1.4),
         ("ThiNet-Conv", False, 0.37, None, None),
         ("Feature Boosting and Suppression (FBS)", True, 0.04, 0.52, 0.59))),
]}


def table(name: str) -> PaperTable:
    if name not in TABLES:
        raise ValueError(f"name={name!r}: expected one of {', '.join(TABLES)}")
    return TABLES[name]
