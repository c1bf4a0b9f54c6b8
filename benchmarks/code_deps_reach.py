"""How many stage instances an edit of each project module reruns (issue: "change one thing,
rerun only what it touches" must hold for code too).

Reads the expanded pipeline of the repository (DVC's own index of ``dvc.yaml`` with
``params.yaml``'s grid), and for every ``.py`` file under ``src/`` and ``stages/`` counts the
instances that depend on it: through their entry point's code fingerprint
(``data/code/<name>.json``, whose files are those ``ganaug.codedeps.code_files`` finds), or
directly, as the code stage depends on every module. Editing a module reruns exactly those
instances (and whatever reads their outputs, if the outputs change; a pure refactor's outputs do
not). Prints one line per module, most-reaching first.

    python benchmarks/code_deps_reach.py [--root .] [--top 40]
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path


def reach(root: Path) -> tuple[int, dict[str, list[str]]]:
    """(instances in the pipeline, module path -> the instances that depend on it)."""
    from dvc.repo import Repo

    from ganaug.codedeps import CODE_DIR, code_files

    roots = {"ganaug": root / "src" / "ganaug", "stages": root / "stages"}
    modules = sorted(str(p.relative_to(root)) for d in ("src", "stages")
                     for p in (root / d).rglob("*.py") if "egg-info" not in str(p))
    @functools.cache
    def files_of(module: str) -> frozenset[str]:  # one walk per entry point, not per instance
        return frozenset(str(f.relative_to(root)) for f in code_files(module, roots).values()
                         if root in f.parents)

    with Repo(str(root)) as repo:
        stages = list(repo.index.stages)
        out: dict[str, list[str]] = {m: [] for m in modules}
        for stage in stages:
            deps = [Path(dep.def_path) for dep in stage.deps]
            code = {f for d in deps if str(d).startswith(CODE_DIR + "/")
                    for f in files_of(f"stages.{d.stem}")}
            for m in modules:
                path = Path(m)
                if m in code or any(path == d or d in path.parents for d in deps):
                    out[m].append(stage.addressing)
    return len(stages), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--root", default=".", type=Path)
    p.add_argument("--top", default=40, type=int, help="modules to print (0: all)")
    args = p.parse_args()
    total, by_module = reach(args.root.resolve())
    rows = sorted(by_module.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    print(f"{total} stage instances in the pipeline")
    for module, instances in rows[: args.top or None]:
        kinds = sorted({i.split("@")[0] for i in instances})
        print(f"{len(instances):4d} / {total}  {module}  ({', '.join(kinds) or 'none'})")


if __name__ == "__main__":
    main()
