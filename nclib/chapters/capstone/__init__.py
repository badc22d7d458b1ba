"""Chapter 07, the capstone: compress a model to a budget with the techniques of chapters
01-06, graded from the file the student hands in (`checks`: bytes, latency and accuracy)."""

# The experiments register the chapter's zoo recipes (the students of every order and seed),
# so that `nclib zoo list` and `nclib zoo train` find them.
from nclib.chapters.capstone import experiments  # noqa: F401,E402
