"""Network pruning.

* `magnitude`: unstructured magnitude pruning with masks (Han et al. 2015), layer-wise and
  global targets, iterative and gradual (AGP, Zhu & Gupta 2017) schedules, `bake`.
* `structured`: filter pruning criteria: L1 norm (Li et al. 2017), ThiNet (Luo et al.
  2017), network slimming (Liu et al. 2017).
* `surgery`: rebuilds layers with fewer channels, so the model is really smaller; training
  the pruned architecture from scratch (Liu et al. 2019).

Importing this package also registers the sparse storage formats of `nclib.quant.coding`
("sparse_csr", "sparse_relative"), which pruned models are measured in.
"""
from nclib.pruning import magnitude, structured, surgery
from nclib.quant import coding as _coding  # noqa: F401  (registers the sparse formats)

__all__ = ["magnitude", "structured", "surgery"]
