"""Network pruning.

* `magnitude`: unstructured magnitude pruning with masks (Han et al. 2015), layer-wise and
  global targets, `bake`.
* `schedules`: iterative pruning with retraining (Han et al. 2015) and gradual pruning while
  training (AGP, Zhu & Gupta 2017).
* `structured`: filter pruning criteria: L1 norm (Li et al. 2017), ThiNet (Luo et al.
  2017), network slimming (Liu et al. 2017).
* `channels`: which layers share a conv's output channels, read from the graph `torch.fx`
  traces (BatchNorm, depthwise convs, pooling, flatten, the layers that read them).
* `surgery`: rebuilds layers with fewer channels, so the model is really smaller; training
  the pruned architecture from scratch (Liu et al. 2019).

Pruned models are measured with `nclib.measure`, e.g. in the "sparse_relative" format.
"""
from nclib.pruning import channels, magnitude, schedules, structured, surgery

__all__ = ["channels", "magnitude", "schedules", "structured", "surgery"]
