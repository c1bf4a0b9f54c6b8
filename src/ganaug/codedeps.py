"""The project code a module runs: a static walk of its imports.

Three uses. ``dvc.yaml``'s ``code`` stage (:mod:`ganaug.codestage`) writes, for each stage entry
point, a fingerprint of the files it runs (:func:`fingerprint`); every instance depends on its entry point's
fingerprint, so ``dvc.lock`` lists the code once per entry point rather than once per instance.
Each instance checks, before and after it runs, that the code it runs is the code in that
fingerprint (:func:`check_code`): what DVC records is what ran. And a resume checkpoint is trusted
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
import json
from collections.abc import Iterable
from pathlib import Path

from ganaug.errors import UserError


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
# Where the code stage writes each stage entry point's fingerprint: data/code/<name>.json for
# stages.<name>. dvc.yaml passes it to the stage as --code and lists it among the stage's deps.
CODE_DIR = "data/code"


class CodeChanged(UserError, RuntimeError):
    """The code a stage instance runs is not the code its fingerprint records."""


def code_files(module: str, roots: dict[str, Path]) -> dict[str, Path]:
    """What an instance of stage entry point ``module`` runs, by name (the path relative to its
    root's parent: ``ganaug/training.py``, ``stages/train.py``, a plugin's ``lab_gan.py``).

    The files of :func:`closure`; every module of a plugin package (:data:`PLUGIN_PACKAGES`) the
    stage imports, so that a module added there counts; and the code of the installed plugins
    of every registry the stage looks up (:data:`PLUGIN_USERS`), wherever they are installed."""
    files = closure([module], roots)
    base = roots["ganaug"].parent
    for package in PLUGIN_PACKAGES:
        folder = base / Path(package).relative_to("src")
        if any(folder in f.parents for f in files):
            files |= set(folder.rglob("*.py"))
    named = {_key(f, roots): f for f in files}
    from ganaug.registry import plugin_entry_points

    for group, user in PLUGIN_USERS.items():
        if base / Path(user).relative_to("src") not in files:
            continue
        for ep in plugin_entry_points(group):
            root = module_root(ep.module.split(".")[0])
            if root is None:
                continue
            found = sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]
            named.update({str(f.relative_to(root.parent)): f for f in found})
    return dict(sorted(named.items()))


def _key(path: Path, roots: dict[str, Path]) -> str:
    top = next(t for t, r in roots.items() if path == r.with_suffix(".py") or r in path.parents)
    return str(path.relative_to(roots[top].parent))


def fingerprint(module: str, roots: dict[str, Path]) -> dict[str, str]:
    """The SHA-256 of every file of :func:`code_files`, by name."""
    return {name: hashlib.sha256(path.read_bytes()).hexdigest()
            for name, path in code_files(module, roots).items()}


def record_path(module: str) -> str:
    """Where the code stage writes the fingerprint of ``stages.<name>`` (relative to the repo)."""
    return f"{CODE_DIR}/{module.rpartition('.')[2]}.json"


def running_roots(module: str) -> dict[str, Path]:
    """The folders the code of ``module`` is imported from in this interpreter (the installed
    ``ganaug``; ``stages`` from the working directory, as ``python -m`` finds it)."""
    roots = project_roots()
    top = module.split(".")[0]
    root = module_root(top)
    if root is not None:
        roots.setdefault(top, root)
    return roots


def check_code(module: str, record: str | Path) -> None:
    """Raise :class:`CodeChanged` unless the code ``module`` runs in this interpreter is the
    code of the fingerprint file ``record`` (written by the code stage)."""
    try:
        data = json.loads(Path(record).read_text(encoding="utf-8"))
        recorded, recorded_module = data["files"], data["module"]
        if not isinstance(recorded, dict) or not isinstance(recorded_module, str):
            raise TypeError("'files' is not a mapping or 'module' not a name")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CodeChanged(f"{record}: not a code fingerprint ({type(exc).__name__}: {exc}); "
                          f"run `dvc repro`, which writes it in the code stage") from None
    if recorded_module != module:
        raise CodeChanged(f"{record}: the fingerprint of {recorded_module}, not of {module}; "
                          f"dvc.yaml passes the wrong --code to this stage")
    running = fingerprint(module, running_roots(module))
    if running != recorded:
        differ = sorted(k for k in recorded.keys() | running.keys()
                        if recorded.get(k) != running.get(k))
        shown = ", ".join(differ[:6]) + (f" and {len(differ) - 6} more" if len(differ) > 6 else "")
        raise CodeChanged(
            f"{record}: the code {module} runs here differs from the code DVC recorded for it "
            f"({shown}): a file changed since the code stage ran, or the ganaug that runs "
            f"({roots_text(module)}) is not this repository's (install it with pip install -e .). "
            f"Run `dvc repro` again (it reruns the code stage first); after upgrading a plugin "
            f"installed outside the repository, `dvc repro -f -s code`")


def roots_text(module: str) -> str:
    return ", ".join(str(r) for r in running_roots(module).values())
