"""Chapter 03: the quantization tables of the lecture, at the scale of the bundled digits.

* `deep-compression-lenet300`, `deep-compression-lenet5` (`deep_compression`): Han et al.,
  "Deep Compression" (ICLR 2016), Table 1: chapter 01's pruned LeNets, weight-shared with
  trained centroids (bits chosen on the validation digits) and Huffman-coded; the bytes of
  each stage's file on disk beside the paper's, and the test error over 3 seeds.
* `linear-quant` (`linear`): post-training quantization at 8, 4 and 3 bits, per tensor and
  per channel, and quantization-aware training at 4 bits, on LeNet-5 and SmallVGG.

* `binary-mnist` (`binary`): an MLP in fp32, with BinaryConnect's binary weights
  (deterministic and stochastic), as a BNN and with XNOR-Net's scaled binary layers.
* `xnor-speed` (`xnor`): the packed xnor-popcount matmul against fp32 torch, per size.
* `apprentice` (`apprentice`): a ternary LeNet-5 trained on labels and distilled from
  chapter 02's teacher, 3 seeds (Mishra and Marr, ICLR 2018, scheme B).

Data: the 5,000 bundled MNIST digits (3,500 train / 500 val / 1,000 test), so one test digit
is 0.1 point of accuracy.
"""
from nclib.chapters.quantization.experiments.deep_compression import (
    BITS, CENTROIDS, MAX_TEST_DROP, MAX_VAL_DROP, MIN_RATE, SEEDS, compressed_model, deep_compress,
    layer_kinds, pruned, run_deep_compression, share_and_train, stage_files)
from nclib.chapters.quantization.experiments.linear import (NETWORKS, PTQ_BITS, QAT, QAT_BITS, qat_name,
                                                            int8_bytes, ptq, qat, run_linear)
from nclib.chapters.quantization.experiments.binary import KINDS, binary_mlp, mlp_name, run_binary_mnist
from nclib.chapters.quantization.experiments.xnor import op_speedup, run_xnor_speed
from nclib.chapters.quantization.experiments.apprentice import (run_apprentice, student_name,
                                                                ternary_student)

__all__ = ["op_speedup", "run_xnor_speed", "KINDS", "binary_mlp", "mlp_name", "run_binary_mnist", "run_apprentice", "student_name",
           "ternary_student",
           "SEEDS", "BITS", "CENTROIDS", "MAX_VAL_DROP", "MIN_RATE", "MAX_TEST_DROP", "pruned",
           "layer_kinds", "share_and_train", "deep_compress", "compressed_model", "stage_files",
           "run_deep_compression", "NETWORKS", "PTQ_BITS", "QAT_BITS", "QAT", "ptq", "qat",
           "int8_bytes", "run_linear", "qat_name"]
