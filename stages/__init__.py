"""Thin DVC stage entry points: `python -m stages.<name>` (see dvc.yaml).

Started that way, a stage first offers itself to the warm start server (ganaug.warmstart, standard
library only), which runs it in a forked interpreter that has torch imported already; it runs
here, cold, when that cannot be done."""

import sys

if sys.argv[:1] == ["-m"]:  # the interpreter is starting `python -m stages.<name>`
    from ganaug.warmstart import handoff

    handoff()  # returns only if the stage is to run in this process
