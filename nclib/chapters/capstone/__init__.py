"""Chapter 07, the capstone: compress a model to a budget with the techniques of chapters
01-06, graded from the file the student hands in (`checks`: bytes, latency and accuracy)."""
