"""Experiments for `nclib reproduce`, one module per chapter (see nclib.course.reproduce)."""
