"""Chapter 04, architecture design: low-rank factorization, depthwise separable convolution
and MobileNet (Howard et al. 2017)."""
