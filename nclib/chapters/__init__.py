"""The chapters: what each chapter's notebooks use beyond the techniques.

One package per chapter (``overview``, ``pruning``, ``distillation``, ``architecture``, ...),
each with only the parts it needs: ``checks.py`` (its graded tasks), ``experiments.py`` (its
`nclib reproduce` runs), ``widgets.py`` (ipywidgets demos) and ``figures.py`` (matplotlib).
The course machinery finds them with `nclib.course.discover`; nothing below this layer
imports a chapter.
"""
