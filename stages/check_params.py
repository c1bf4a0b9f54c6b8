"""Stage check_params: validate the whole params file before any other stage does work.

Every key is checked (unknown, misnested, wrong type, non-finite, out of range, names that reach
commands), and the sections against each other, and every installed plugin is loaded and
checked; see ganaug.validate. Every other stage depends
on this stage's output, whose content does not depend on the params: a valid change reruns only
this check and then what the change touches; an invalid one stops the run here, naming the key.
"""

from __future__ import annotations

from ganaug.io import save_json
from ganaug.stage import exit_with, parser
from ganaug.validate import validate_params_file


def build_parser():
    p = parser(__doc__)
    p.add_argument("--out", required=True, help="marker file written when the params are valid")
    return p


def declared_params(args) -> list[str]:
    return []  # dvc.yaml declares the whole file (params.yaml:)


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    validate_params_file(args.params)
    save_json(args.out, {"params": "valid"})


if __name__ == "__main__":
    exit_with(main)
