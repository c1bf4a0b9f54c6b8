"""Each stage's deps in dvc.yaml cover every project file its entry point imports (a static walk
of the imports): otherwise an edit to that code leaves the stage's outputs stale while `dvc
status` says "up to date". And no stage depends on project code it never runs (it would rerun
for nothing)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from e2e import REPO_ROOT

from ganaug.codedeps import closure

ROOTS = {"ganaug": REPO_ROOT / "src" / "ganaug", "stages": REPO_ROOT / "stages"}


@pytest.fixture(scope="module")
def stage_deps():
    """(instance name, entry module, declared deps) of every stage instance DVC resolves."""
    from dvc.repo import Repo

    with Repo(str(REPO_ROOT)) as repo:
        out = []
        for st in repo.index.stages:
            argv = shlex.split(st.cmd)
            assert argv[:2] == ["python", "-m"], st.addressing
            out.append((st.addressing, argv[2], [Path(d.def_path) for d in st.deps]))
        return out


def covered(path: Path, deps: list[Path]) -> bool:
    rel = path.relative_to(REPO_ROOT)
    return any(rel == d or d in rel.parents for d in deps)


def test_every_imported_project_file_is_a_dep(stage_deps):
    missing = {}
    for name, module, deps in stage_deps:
        files = closure([module], ROOTS)
        assert files, f"{name}: {module} not found"
        lacking = sorted(str(f.relative_to(REPO_ROOT)) for f in files if not covered(f, deps))
        if lacking:
            missing[name] = lacking
    assert not missing, "stages import project files they do not list as deps:\n" + "\n".join(
        f"{k}: {v}" for k, v in sorted(missing.items()))


def test_no_stage_depends_on_project_code_it_does_not_run(stage_deps):
    extra = {}
    for name, module, deps in stage_deps:
        files = {f.relative_to(REPO_ROOT) for f in closure([module], ROOTS)}
        for d in deps:
            if d.parts[0] not in ("src", "stages"):
                continue
            if not any(f == d or d in f.parents for f in files):
                extra.setdefault(name, []).append(str(d))
    assert not extra, f"code deps the stage never imports: {extra}"


def test_the_walk_follows_function_level_and_package_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg import c\n")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from . import d\nimport numpy\n")
    (pkg / "sub" / "d.py").write_text("")
    (pkg / "c.py").write_text("")
    (pkg / "unused.py").write_text("")
    files = {p.relative_to(tmp_path).as_posix() for p in closure(["pkg.a"], {"pkg": pkg})}
    assert files == {"pkg/__init__.py", "pkg/a.py", "pkg/sub/__init__.py", "pkg/sub/b.py",
                     "pkg/sub/d.py", "pkg/c.py"}


def changed_stage_kinds(repo: Path) -> set[str]:
    """The kinds (names before '@') of the stage instances `dvc status` lists as changed."""
    import re

    from e2e import dvc

    out = dvc(repo, "status").stdout
    return {m.split("@")[0] for m in re.findall(r"^(\S+):$", out, flags=re.MULTILINE)}


@pytest.mark.e2e
@pytest.mark.parametrize(("edited", "kinds"), [
    # The GAN's params section: the GAN and what loads it, and the whole-file check.
    ("src/ganaug/configs/gan.py", {"check_params", "train_gan", "generate", "score", "refine"}),
    # The classifiers' training: no GAN, generate or score instance.
    ("src/ganaug/training.py", {"check_params", "train_scorer", "train", "train_baseline",
                                "train_synthetic", "train_real", "train_refine", "select", "refine"}),
    # Report rendering: the report alone.
    ("src/ganaug/report/markdown.py", {"report"}),
], ids=["gan-config", "classifier-training", "report"])
def test_an_edit_reruns_only_the_stages_that_run_the_code(study_copy, edited, kinds):
    path = study_copy / edited
    path.write_text(path.read_text() + "\n# an edit\n")
    assert changed_stage_kinds(study_copy) == kinds


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file, as the walk reads them),
    leaving out a package's imports of its own submodules and theirs of it (a registry)."""
    from ganaug.codedeps import _imports, _module_file

    roots = {"ganaug": ROOTS["ganaug"]}
    files = {}
    for path in ROOTS["ganaug"].rglob("*.py"):
        parts = list(path.relative_to(ROOTS["ganaug"].parent).with_suffix("").parts)
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    by_file = {path: name for name, path in files.items()}
    graph = {}
    for name, path in files.items():
        found = {by_file.get(_module_file(m, roots)) for m in _imports(path, name)}
        graph[name] = {m for m in found - {None, name}
                       if not (m.startswith(name + ".") or name.startswith(m + "."))}
    return graph


def test_no_import_cycle_between_project_modules():
    graph = import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join(
                path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt])
            if nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
