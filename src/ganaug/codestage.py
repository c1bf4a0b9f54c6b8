"""``dvc.yaml``'s code stage, and the tool that keeps dvc.yaml's code deps.

``python -m ganaug.codestage --fingerprint data/code`` is the stage's command: one fingerprint per
stage entry point (:func:`ganaug.codedeps.fingerprint`). ``python -m ganaug.codestage --update
dvc.yaml`` rewrites the stage (its outputs, and the plugins kept in the repository among its
deps) and every instance's fingerprint dep and ``--code`` argument.

Apart from :mod:`ganaug.codedeps` (the walk, and each stage's check of its fingerprint), so that
no stage runs this module: an edit of it reruns the code stage alone.
"""

from __future__ import annotations

from pathlib import Path

from ganaug.codedeps import (
    CODE_DIR,
    PLUGIN_USERS,
    CodeChanged,
    closure,
    code_files,
    fingerprint,
    module_root,
    record_path,
)
from ganaug.errors import UserError

# The comment that marks a plugin's dep in dvc.yaml (update_dvc_yaml rewrites those lines).
PLUGIN_MARK = "# plugin"


def plugin_deps(module: str, repo: Path) -> tuple[list[str], list[str]]:
    """The installed plugins that stage entry point ``module`` runs (those of every group whose
    registry its code looks up): ``(their packages or modules inside repo, relative; the
    plugins whose code lies elsewhere, described)``. DVC can track only the first: a plugin
    installed from elsewhere changes with its version, as any library does."""
    from ganaug.registry import describe, plugin_entry_points

    files = {str(p.relative_to(repo)) for p in closure([module], {
        "ganaug": repo / "src" / "ganaug", "stages": repo / "stages"})}
    inside, outside = set(), []
    for group, user in PLUGIN_USERS.items():
        if user not in files:
            continue
        for ep in plugin_entry_points(group):
            root = module_root(ep.module.split(".")[0])
            path = None if root is None else (root if root.is_dir() else root.with_suffix(".py"))
            try:
                inside.add(str(path.relative_to(repo.resolve())))
            except (AttributeError, ValueError):
                outside.append(describe(ep))
    return sorted(inside), outside


def stage_modules(repo: Path) -> list[str]:
    """The stage entry points of the project at ``repo``: ``stages.<name>``, one per file."""
    return sorted(f"stages.{p.stem}" for p in (repo / "stages").glob("*.py")
                  if p.stem != "__init__")


def write_fingerprints(out_dir: Path, repo: Path) -> list[Path]:
    """The code stage: for each stage entry point of the project at ``repo``, the fingerprint of
    the repository's files it runs (what DVC tracks), as ``out_dir/<name>.json``."""
    from ganaug.io import save_json

    roots = {"ganaug": repo / "src" / "ganaug", "stages": repo / "stages"}
    if not (roots["ganaug"] / "__init__.py").is_file():
        raise CodeChanged(f"{roots['ganaug']}: no ganaug package here; run the code stage in "
                          f"the study's repository (a copy of the project)")
    written = []
    for module in stage_modules(repo):
        path = out_dir / Path(record_path(module)).name
        save_json(path, {"module": module, "files": fingerprint(module, roots)})
        written.append(path)
    return written


CODE_STAGE_NOTE = """\
  # The code each stage entry point runs: one fingerprint per entry point (its files and their
  # SHA-256, ganaug.codedeps). Each instance depends on its entry point's fingerprint and checks,
  # before and after it runs, that it runs that code. Kept by python -m ganaug.codestage --update.
"""


def code_stage(repo: Path) -> list[str]:
    """The ``code`` stage's lines in ``dvc.yaml``: every entry point's fingerprint as an output,
    the project's code and the installed plugins kept in ``repo`` as dependencies."""
    modules = stage_modules(repo)
    inside = sorted({d for m in modules for d in plugin_deps(m, repo)[0]})
    return [*CODE_STAGE_NOTE.splitlines(), "  code:",
            f"    cmd: python -m ganaug.codestage --fingerprint {CODE_DIR}",
            "    deps:", "      - src/ganaug", "      - stages",
            *(f"      - {d}  {PLUGIN_MARK}" for d in inside),
            "    outs:", *(f"      - {record_path(m)}" for m in modules), ""]


def update_dvc_yaml(path: Path) -> bool:
    """Rewrite ``path`` so that its ``code`` stage writes every entry point's fingerprint (with
    the plugins kept in the repository among its deps), and every stage instance depends on its
    entry point's fingerprint instead of code files and passes it as ``--code``; every other line
    is kept. True if changed."""
    import re

    repo = path.parent
    lines = path.read_text(encoding="utf-8").splitlines()
    lines = _without_code_stage(lines)
    out: list[str] = []
    module, i = None, 0
    while i < len(lines):
        line = lines[i]
        m = re.search(r"python -m (stages\.\w+)", line)
        if m:
            module = m.group(1)
            line = re.sub(r"python -m (stages\.\w+)\b(?! --code )",
                          lambda g: f"{g.group(0)} --code {record_path(g.group(1))}", line)
        if module and re.fullmatch(r"\s+deps:\s*", line):
            out.append(line)
            j, indent, kept = i + 1, "      ", []
            while j < len(lines) and re.match(r"^\s+- ", lines[j]):
                indent = lines[j][: len(lines[j]) - len(lines[j].lstrip())]
                dep = lines[j].strip()[2:]
                if not dep.startswith(("src/", "stages/", CODE_DIR + "/")) \
                        and not dep.endswith(PLUGIN_MARK):
                    kept.append(lines[j])
                j += 1
            out += [f"{indent}- {record_path(module)}", *kept]
            i, module = j, None
            continue
        out.append(line)
        if line == "stages:":
            out += code_stage(repo)
        i += 1
    text = "\n".join(out) + "\n"
    changed = text != path.read_text(encoding="utf-8")
    if changed:
        path.write_text(text, encoding="utf-8")
    return changed


def _without_code_stage(lines: list[str]) -> list[str]:
    """``lines`` less the ``code`` stage and the comment lines right above it."""
    if "  code:" not in lines:
        return lines
    start = end = lines.index("  code:")
    while start > 0 and lines[start - 1].startswith("  #"):
        start -= 1
    end += 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith("    ")):
        end += 1
    return lines[:start] + lines[end:]


def main(argv: list[str] | None = None) -> int:
    """``python -m ganaug.codestage --fingerprint data/code``: the code stage (one fingerprint per
    stage entry point); ``python -m ganaug.codestage --update dvc.yaml``: rewrite dvc.yaml's code
    stage and every stage's fingerprint dep; ``python -m ganaug.codestage stages.select``: the
    files a stage runs. The last two name the installed plugins whose code lies outside the
    repository (DVC cannot see an edit of it; the stages' own check does)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--fingerprint"]:
        if len(args) != 2:
            print("usage: python -m ganaug.codestage --fingerprint DIR", file=sys.stderr)  # noqa: T201
            return 2
        try:
            write_fingerprints(Path(args[1]), Path.cwd())
        except UserError as exc:
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)  # noqa: T201
            return 1
        return 0
    if args[:1] == ["--update"]:
        path = Path(args[1] if len(args) > 1 else "dvc.yaml")
        print(f"{path}: {'updated' if update_dvc_yaml(path) else 'already complete'}")  # noqa: T201
        _warn_outside(plugin_deps("stages.check_params", path.parent)[1])
        return 0
    repo = Path.cwd()
    for module in args:
        roots = {"ganaug": repo / "src" / "ganaug", "stages": repo / "stages"}
        for name in code_files(module, roots):
            print(f"        {name}")  # noqa: T201 - the command's answer
        _warn_outside(plugin_deps(module, repo)[1])
    return 0


def _warn_outside(plugins: list[str]) -> None:
    import sys

    for p in plugins:
        print(f"note: {p} lies outside the repository: DVC cannot see an edit of its code; pin "  # noqa: T201
              f"its version, and after upgrading it run `dvc repro -f -s code` (a stage refuses "
              f"to run code other than its fingerprint's)",
              file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
