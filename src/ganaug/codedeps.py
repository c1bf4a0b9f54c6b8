"""The project code a module runs: a static walk of its imports.

Two uses: ``dvc.yaml`` must list, for each stage, every project file its entry point imports
(``tests/test_code_deps.py`` checks it with :func:`closure`), and a resume checkpoint is trusted
only when the code that made it is the code that would continue it (:func:`code_fingerprint`).

The walk reads source files, never imports them. It follows every ``import`` and
``from ... import`` statement anywhere in a file (inside functions too: they run when called),
includes the ``__init__.py`` of every package on the way (Python runs them on import), and
resolves ``from package import name`` to the submodule ``package/name.py`` when there is one.
Modules outside the given roots (numpy, torch, ...) are not followed.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path


def _module_file(name: str, roots: dict[str, Path]) -> Path | None:
    """The file of module ``name`` (``a.b.c``) under the directory of its top-level package."""
    top, *rest = name.split(".")
    if top not in roots:
        return None
    base = roots[top].joinpath(*rest)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _package_inits(name: str, roots: dict[str, Path]) -> list[Path]:
    parts = name.split(".")
    out = []
    for i in range(1, len(parts)):
        init = _module_file(".".join(parts[:i]), roots)
        if init is not None and init.name == "__init__.py":
            out.append(init)
    return out


def _imports(path: Path, module: str) -> Iterable[str]:
    """Module names imported by the file ``path`` of module ``module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from ..a import b
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            yield prefix
            yield from (f"{prefix}.{alias.name}" for alias in node.names)


def closure(modules: Iterable[str], roots: dict[str, Path]) -> set[Path]:
    """Every file of the project that importing ``modules`` runs (their own files included).

    ``roots`` maps a top-level package name to its directory (e.g. ``{"ganaug": src/ganaug,
    "stages": repo/stages}``); imports of other packages are not followed.
    """
    seen: set[Path] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        path = _module_file(name, roots)
        if path is None:
            continue  # not a project module, or "package.function" rather than a submodule
        for file, mod in [(p, None) for p in _package_inits(name, roots)] + [(path, name)]:
            if file in seen:
                continue
            seen.add(file)
            own = mod or _name_of(file, roots)
            todo.extend(_imports(file, own))
    return seen


def _name_of(path: Path, roots: dict[str, Path]) -> str:
    for top, root in roots.items():
        try:
            rel = path.relative_to(root)
        except ValueError:
            continue
        parts = [top, *rel.with_suffix("").parts]
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(f"{path} is under none of the roots {sorted(roots)}")


def project_roots() -> dict[str, Path]:
    """The installed ``ganaug`` package's directory (stages are not needed at run time)."""
    import ganaug

    return {"ganaug": Path(ganaug.__file__).resolve().parent}


def module_root(top: str) -> Path | None:
    """Where the top-level module ``top`` lives, as a root for :func:`closure` (a package's
    folder, or a single module's path without ``.py``), found without importing it; None when it
    is not a plain module or package on the path."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    origin = Path(spec.origin).resolve()
    return origin.parent if origin.name == "__init__.py" else origin.with_suffix("")


@functools.cache
def code_fingerprint(*modules: str) -> str:
    """A hash of the source of every file that ``modules`` import (see :func:`closure`): the
    project's, and a plugin's own package's for a module outside ``ganaug``.

    A resume checkpoint records it: continuing a run with other code (another activation, a new
    layer) would silently mix two models, so a checkpoint made by other code is ignored.
    """
    roots = project_roots()
    for top in {m.split(".")[0] for m in modules} - set(roots):
        root = module_root(top)
        if root is not None:
            roots[top] = root
    h = hashlib.sha256()
    for path in sorted(closure(modules, roots)):
        top = next(t for t, r in roots.items() if path == r.with_suffix(".py") or r in path.parents)
        h.update(str(path.relative_to(roots[top].parent)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


# Packages whose modules are plugins registered on import (GAN families, selection strategies,
# classifiers): a stage that imports one depends on the whole folder, so adding a plugin module
# needs no edit of dvc.yaml (the registry's __init__ imports it, and every user reruns).
PLUGIN_PACKAGES = ("src/ganaug/gan", "src/ganaug/selection", "src/ganaug/models")


# The project file that looks up the names of each plugin group's registry: a stage whose code
# includes it runs that group's plugins (README "Extending").
PLUGIN_USERS = {"ganaug.gan_families": "src/ganaug/gan/family.py",
                "ganaug.strategies": "src/ganaug/selection/__init__.py",
                "ganaug.dataset_kinds": "src/ganaug/data/prepare.py"}
# The comment that marks a plugin's dep in dvc.yaml (update_dvc_yaml rewrites those lines).
PLUGIN_MARK = "# plugin"


def stage_deps(module: str, repo: Path) -> list[str]:
    """The project files (relative to ``repo``) that stage entry point ``module`` runs, with a
    folder standing for its files when the stage runs every ``.py`` file in it, or when it is a
    plugin package (:data:`PLUGIN_PACKAGES`) the stage imports. Installed plugins whose code lies
    in ``repo``: :func:`plugin_deps`."""
    roots = {"ganaug": repo / "src" / "ganaug", "stages": repo / "stages"}
    files = {p.relative_to(repo) for p in closure([module], roots)}
    out: set[Path] = set()
    for f in files:
        folder = f.parent
        whole = {p.relative_to(repo) for p in (repo / folder).glob("*.py")}
        plugin = next((Path(d) for d in PLUGIN_PACKAGES if Path(d) in (f, *f.parents)), None)
        if plugin is not None:
            out.add(plugin)
        elif folder not in (Path("src/ganaug"), Path("stages")) and whole <= files:
            out.add(folder)
        else:
            out.add(f)
    return sorted(str(p) for p in out)


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


def update_dvc_yaml(path: Path) -> bool:
    """Rewrite the code deps (``src/...``, ``stages/...``, and the lines marked ``# plugin``) of
    every stage in ``path`` to :func:`stage_deps` and :func:`plugin_deps` of its command's entry
    point, keeping every other line; True if changed."""
    import re

    repo = path.parent
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    module, i = None, 0
    while i < len(lines):
        line = lines[i]
        m = re.search(r"python -m (stages\.\w+)", line)
        if m:
            module = m.group(1)
        if module and re.fullmatch(r"\s+deps:\s*", line):
            out.append(line)
            j, indent, kept = i + 1, "      ", []
            while j < len(lines) and re.match(r"^\s+- ", lines[j]):
                indent = lines[j][: len(lines[j]) - len(lines[j].lstrip())]
                dep = lines[j].strip()[2:]
                if not dep.startswith(("src/", "stages/")) and not dep.endswith(PLUGIN_MARK):
                    kept.append(lines[j])
                j += 1
            out += [f"{indent}- {d}" for d in stage_deps(module, repo)]
            out += [f"{indent}- {d}  {PLUGIN_MARK}" for d in plugin_deps(module, repo)[0]]
            out += kept
            i, module = j, None
            continue
        out.append(line)
        i += 1
    text = "\n".join(out) + "\n"
    changed = text != path.read_text(encoding="utf-8")
    if changed:
        path.write_text(text, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    """``python -m ganaug.codedeps stages.select``: the code deps a stage should list;
    ``python -m ganaug.codedeps --update dvc.yaml``: rewrite every stage's code deps. Both name
    the installed plugins whose code lies outside the repository (DVC cannot track it)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--update"]:
        path = Path(args[1] if len(args) > 1 else "dvc.yaml")
        print(f"{path}: {'updated' if update_dvc_yaml(path) else 'already complete'}")  # noqa: T201
        _warn_outside(plugin_deps("stages.check_params", path.parent)[1])
        return 0
    for module in args:
        inside, outside = plugin_deps(module, Path.cwd())
        for dep in stage_deps(module, Path.cwd()):
            print(f"        - {dep}")  # noqa: T201 - the command's answer
        for dep in inside:
            print(f"        - {dep}  {PLUGIN_MARK}")  # noqa: T201
        _warn_outside(outside)
    return 0


def _warn_outside(plugins: list[str]) -> None:
    import sys

    for p in plugins:
        print(f"note: {p} lies outside the repository: DVC cannot see an edit of its code; pin "  # noqa: T201
              f"its version and rerun its stages when it changes (dvc repro -f -s <stage>)",
              file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
