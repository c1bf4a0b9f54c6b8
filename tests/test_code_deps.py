"""Each stage instance depends on its entry point's code fingerprint, which the code stage writes
from every project file the entry point imports (a static walk of the imports): otherwise an edit
to that code leaves the stage's outputs stale while `dvc status` says "up to date". No stage
depends on project code it never runs (it would rerun for nothing), and a stage refuses to run
code other than its fingerprint's."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
from e2e import REPO_ROOT

from ganaug.codedeps import CODE_DIR, CodeChanged, check_code, closure, record_path
from ganaug.codestage import stage_modules, update_dvc_yaml, write_fingerprints

ROOTS = {"ganaug": REPO_ROOT / "src" / "ganaug", "stages": REPO_ROOT / "stages"}


@pytest.fixture(scope="module")
def stage_deps():
    """(instance name, entry module, declared deps, cmd words) of every stage instance DVC
    resolves, and the code stage's deps and outs."""
    from dvc.repo import Repo

    with Repo(str(REPO_ROOT)) as repo:
        out, code = [], None
        for st in repo.index.stages:
            argv = shlex.split(st.cmd)
            assert argv[:2] == ["python", "-m"], st.addressing
            deps = [Path(d.def_path) for d in st.deps]
            if st.addressing == "code":
                code = (deps, [Path(o.def_path) for o in st.outs], argv)
            else:
                out.append((st.addressing, argv[2], deps, argv))
        return out, code


def test_every_instance_depends_on_its_entry_points_fingerprint(stage_deps):
    instances, (code_deps, code_outs, code_argv) = stage_deps
    assert code_argv == ["python", "-m", "ganaug.codestage", "--fingerprint", CODE_DIR]
    assert code_deps[:2] == [Path("src/ganaug"), Path("stages")]
    assert set(code_outs) == {Path(record_path(m)) for m in stage_modules(REPO_ROOT)}
    wrong = {}
    for name, module, deps, argv in instances:
        record = record_path(module)
        if Path(record) not in deps or argv[argv.index("--code") + 1] != record:
            wrong[name] = (module, argv)
    assert not wrong, f"instances without their fingerprint as dep and --code: {wrong}"


def test_no_instance_depends_on_code_files_directly(stage_deps):
    instances, _ = stage_deps
    direct = {name: [str(d) for d in deps if d.parts[0] in ("src", "stages")]
              for name, _, deps, _ in instances}
    assert not {k: v for k, v in direct.items() if v}


def test_the_committed_dvc_yaml_is_what_the_tool_writes(tmp_path):
    shutil.copytree(REPO_ROOT / "stages", tmp_path / "stages")
    shutil.copytree(REPO_ROOT / "src" / "ganaug", tmp_path / "src" / "ganaug")
    shutil.copy2(REPO_ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    assert update_dvc_yaml(tmp_path / "dvc.yaml") is False
    # From the old form (code files listed per stage), the tool writes the committed one.
    text = (tmp_path / "dvc.yaml").read_text()
    old = text.replace(" --code data/code/prepare.json", "").replace(
        "        - data/code/prepare.json\n", "        - src/ganaug/io.py\n        - stages/prepare.py\n")
    start = old.index("  # The code each stage")
    old = old[:start] + old[old.index("  # The whole params file"):]
    (tmp_path / "dvc.yaml").write_text(old)
    assert update_dvc_yaml(tmp_path / "dvc.yaml") is True
    assert (tmp_path / "dvc.yaml").read_text() == text


def test_a_fingerprint_holds_exactly_the_code_its_stage_runs(tmp_path):
    written = write_fingerprints(tmp_path, REPO_ROOT)
    assert sorted(p.name for p in written) == sorted(
        Path(record_path(m)).name for m in stage_modules(REPO_ROOT))
    for module in stage_modules(REPO_ROOT):
        data = json.loads((tmp_path / Path(record_path(module)).name).read_text())
        assert data["module"] == module
        walked = {str(f.relative_to(REPO_ROOT / "src" if "src" in f.relative_to(REPO_ROOT).parts
                                    else REPO_ROOT)) for f in closure([module], ROOTS)}
        files = set(data["files"])
        assert walked <= files, (module, walked - files)
        plugin_dirs = ("ganaug/gan/", "ganaug/selection/", "ganaug/models/")
        assert all(f.startswith(plugin_dirs) for f in files - walked), (module, files - walked)
    # The report renders; it trains nothing.
    report = json.loads((tmp_path / "report.json").read_text())["files"]
    assert "ganaug/training.py" not in report and "ganaug/report/markdown.py" in report


def test_a_stage_refuses_code_other_than_its_fingerprints(tmp_path, monkeypatch):
    write_fingerprints(tmp_path, REPO_ROOT)
    check_code("stages.train", tmp_path / "train.json")  # the code as it is: passes
    data = json.loads((tmp_path / "train.json").read_text())
    data["files"]["ganaug/training.py"] = "0" * 64
    (tmp_path / "edited.json").write_text(json.dumps(data))
    with pytest.raises(CodeChanged, match=r"edited.json: .*stages.train.*\(ganaug/training.py\)"):
        check_code("stages.train", tmp_path / "edited.json")
    with pytest.raises(CodeChanged, match="the fingerprint of stages.train, not of stages.evaluate"):
        check_code("stages.evaluate", tmp_path / "train.json")
    for bad in ("", "[]", "{\"files\": {}}", "not json",
                "{\"files\": [], \"module\": \"stages.train\"}",
                "{\"files\": {}, \"module\": 3}"):
        (tmp_path / "bad.json").write_text(bad)
        with pytest.raises(CodeChanged, match="bad.json: not a code fingerprint"):
            check_code("stages.train", tmp_path / "bad.json")
    with pytest.raises(CodeChanged, match="missing.json: not a code fingerprint"):
        check_code("stages.train", tmp_path / "missing.json")


def test_a_stage_run_with_other_code_fails_in_one_line_before_and_after(tmp_path, caplog):
    from ganaug.stage import parser, run

    write_fingerprints(tmp_path, REPO_ROOT)
    calls = []

    def main(argv):
        calls.append(parser("x").parse_args(argv))

    main.__module__ = "stages.subset"
    args = ["--code", str(tmp_path / "subset.json")]
    assert run(main, args) == 0 and calls[0].code == str(tmp_path / "subset.json")
    data = json.loads((tmp_path / "subset.json").read_text())
    data["files"]["stages/subset.py"] = "0" * 64
    (tmp_path / "subset.json").write_text(json.dumps(data))
    assert run(main, args) == 1 and len(calls) == 1  # checked before main: main never ran
    assert "CodeChanged" in caplog.text and "stages/subset.py" in caplog.text

    # A file that changes while the stage runs (here: the fingerprint, as if the code had).
    write_fingerprints(tmp_path, REPO_ROOT)
    good = (tmp_path / "subset.json").read_text()

    def edits(argv):
        calls.append(argv)
        (tmp_path / "subset.json").write_text(json.dumps(data))

    edits.__module__ = "stages.subset"
    assert run(edits, args) == 1 and len(calls) == 2
    (tmp_path / "subset.json").write_text(good)
    assert run(main, ["--params", "p.yaml"]) == 0  # no --code: no check


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
    from e2e import dvc

    path = study_copy / edited
    path.write_text(path.read_text() + "\n# an edit\n")
    assert changed_stage_kinds(study_copy) == {"code"}  # the code stage sees every edit
    dvc(study_copy, "repro", "code")  # it writes the fingerprints; those that changed rerun
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


@pytest.mark.e2e
def test_an_instance_refuses_code_dvc_did_not_hash(study_copy):
    """A file edited after the code stage ran (here: `dvc repro -s` of one instance, which does
    not run the code stage) is code DVC did not hash: the instance fails, DVC records nothing."""
    from e2e import dvc

    path = study_copy / "src/ganaug/data/scarcity.py"
    path.write_text(path.read_text() + "\n# an edit\n")
    dvc(study_copy, "repro", "code")
    assert "subset" in changed_stage_kinds(study_copy)
    path.write_text(path.read_text() + "\n# a second edit\n")
    lock = (study_copy / "dvc.lock").read_bytes()
    proc = dvc(study_copy, "repro", "-s", "subset@0", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "CodeChanged: data/code/subset.json" in out and "ganaug/data/scarcity.py" in out
    assert (study_copy / "dvc.lock").read_bytes() == lock
    dvc(study_copy, "repro", "code")  # the fingerprint of the code as it is now: it runs
    dvc(study_copy, "repro", "-s", "subset@0")


def test_the_code_stage_command_says_what_is_wrong(tmp_path, monkeypatch, capsys):
    from ganaug.codestage import main

    assert main(["--fingerprint"]) == 2
    assert "usage: python -m ganaug.codestage --fingerprint DIR" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)  # no src/ganaug here
    assert main(["--fingerprint", "out dir"]) == 1
    assert "no ganaug package here" in capsys.readouterr().err
    assert not (tmp_path / "out dir").exists()
