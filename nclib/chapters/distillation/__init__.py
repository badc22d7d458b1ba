"""Chapter 02, knowledge distillation: soft targets (Hinton et al. 2015), logit matching
(Ba and Caruana 2014) and ensembles."""

# The experiments register the chapter's zoo recipes (teacher, students, ensemble), so that
# `nclib zoo list` and `nclib zoo train` find them.
from nclib.chapters.distillation import experiments  # noqa: F401,E402
