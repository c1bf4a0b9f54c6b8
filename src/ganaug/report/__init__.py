"""The study's report, from the evaluations to ``report.md`` and ``metrics/summary.json``.

- :mod:`.runs`: which runs the study has, and their evaluations and stats read into tables
- :mod:`.summary`: the statistics (intervals, the four verdicts, the primary comparison, the
  headline)
- :mod:`.plan`: the replicate planner
- :mod:`.curve`: the real-only learning curve and real-image equivalents
- :mod:`.tables`: the report's markdown tables and cell formats
- :mod:`.reading`: the verdict sections (the primary comparison, reading the verdicts, the
  planner)
- :mod:`.markdown`: the other sections and the whole ``report.md``
- :mod:`.figures`: the report's and the score stage's figures

Nothing is imported here: a stage imports the submodules it uses, so that its code dependencies
in dvc.yaml are only those (the score stage draws figures and needs none of the statistics).
"""
