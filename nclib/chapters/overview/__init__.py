"""Chapter 00, overview: why compress, and how we measure (counts of parameters and MACs)."""
