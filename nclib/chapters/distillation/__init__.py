"""Chapter 02, knowledge distillation: soft targets (Hinton et al. 2015), logit matching
(Ba and Caruana 2014) and ensembles."""
