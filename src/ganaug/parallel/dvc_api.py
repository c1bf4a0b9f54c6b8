"""The DVC that ``ganaug.parallel`` drives: the versions it is tested on, and every name it uses
that is not DVC's public interface, each with why. :func:`check` runs before any work.

The runner reuses DVC's own planning, skipping, run-cache and recording (so a parallel run
records what ``dvc repro`` would) and replaces one step, running the command. That reaches into
DVC's internals, which change between releases without notice: DVC 3.62 with pathspec 1.x does
not even import (``_DIR_MARK``), and ``ProjectFile.dump_stages`` arrived in 3.63. Hence a tested
range, pinned in requirements.txt and checked here, and a check of each name by what the runner
relies on (a signature, a name looked up at call time), not only that it exists.

The one patch of DVC that lives here, not where it is used: :func:`params_files_parsed_once`,
a parse cache for params files (the session holds it for its whole run).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import inspect
import os
from collections.abc import Callable, Iterator
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import Version

# Tested: 3.66.0 with pathspec 0.10.3 (the lowest allowed; CI runs the parallel tiny study on it,
# .ci/lowest-dvc) and 3.67.1 (the newest, the suite's). 3.63-3.65 also run the runner but their
# declared dependencies allow pathspec 1.x, with which they fail to import.
SUPPORTED = SpecifierSet(">=3.66,<3.68")


def _calls(name: str) -> Callable[[object], bool]:
    """The function looks ``name`` up when it runs (a global or an attribute), so a swap of the
    module global or an instance attribute takes effect."""
    return lambda fn: name in inspect.unwrap(fn).__code__.co_names


def _accepts(*params: str) -> Callable[[object], bool]:
    """The function takes these keyword arguments (by name, or through ``**kwargs``)."""
    def check(fn: object) -> bool:
        sig = inspect.signature(fn).parameters
        return (set(params) <= set(sig)
                or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()))
    return check


# (module, attribute path, what the runner needs it for, a check of the behaviour it relies on)
PRIVATE: tuple[tuple[str, str, str, Callable[[object], bool] | None], ...] = (
    ("dvc.repo.reproduce", "plan_repro", "the order `dvc repro` runs the stages in", None),
    ("dvc.repo.reproduce", "collect_stages", "the targets' stages, as `dvc repro` collects them",
     None),
    ("dvc.repo.reproduce", "get_active_graph", "the graph without frozen stages' edges", None),
    ("dvc.repo", "lock_repo", "hold the repository lock for the whole run", None),
    ("dvc.stage", "Stage.reproduce", "decide, restore or run an instance as `dvc repro` does",
     _accepts("upstream", "force")),
    ("dvc.stage", "Stage.run", "record an instance a worker ran (force: no run-cache lookup)",
     _accepts("force")),
    ("dvc.stage", "Stage.save", "hashes dependencies through save_deps, which the runner checks "
     "against the dispatch hashes", _calls("save_deps")),
    ("dvc.stage", "Stage.save_deps", "the dispatch hashes", _accepts("allow_missing")),
    ("dvc.stage", "Stage.remove_outs", "an instance refused at record leaves no outputs",
     _accepts("ignore_remove", "force")),
    ("dvc.stage", "PipelineStage", "which instances have a dvc.lock entry", None),
    ("dvc.stage.run", "run_stage", "looks cmd_run and unlocked_repo up when it runs, so the "
     "runner can swap them", lambda fn: _calls("cmd_run")(fn) and _calls("unlocked_repo")(fn)),
    ("dvc.stage.run", "unlocked_repo", "swapped too: run_stage would let the repository lock go "
     "around each command, and a `dvc` command started then breaks the re-lock", None),
    ("dvc.repo", "Repo._reset", "what unlocked_repo does besides unlocking", None),
    ("dvc.stage.run", "cmd_run", "swapped: defer the command to a worker, or adopt its outputs",
     None),
    ("dvc.stage.run", "_make_cmd", "the argv DVC would run for a command line", None),
    ("dvc.stage.run", "_enforce_cmd_list", "a stage's cmd as a list of lines", None),
    ("dvc.stage.run", "get_executable", "the shell DVC runs commands with", None),
    ("dvc.dependency.param", "load_path", "parse params.yaml once per version, not per stage",
     None),
    ("dvc.dependency.param", "read_param_file", "reads params through that module's load_path",
     _calls("load_path")),
    ("dvc.dvcfile", "PROJECT_FILE", "dvc.yaml's name", None),
    ("dvc.dvcfile", "Lockfile", "load a dvc.lock to see whether a killed run broke it", None),
    ("dvc.dvcfile", "ProjectFile.dump_stages", "write many lock entries in one rewrite",
     _accepts("stages", "update_pipeline")),
    ("dvc.utils", "fix_env", "the environment DVC hands a command", None),
    ("dvc.utils.serialize", "parse_yaml_for_update", "ganaug.lock prune: edit dvc.lock", None),
    ("dvc.utils.serialize", "parse_yaml", "ganaug.lock check: read dvc.lock as DVC does", None),
    ("dvc.utils.serialize", "YAMLFileCorruptedError", "ganaug.lock check: unreadable YAML", None),
    ("dvc.dvcfile", "Lockfile.SCHEMA", "ganaug.lock check: DVC's own lockfile schema", None),
    ("dvc.lock", "LockError", "ganaug.lock: another DVC process holds the repository", None),
    ("dvc.utils.serialize", "dumps_yaml", "ganaug.lock prune: write dvc.lock", None),
)


class UnsupportedDvc(RuntimeError):
    """The installed DVC is outside the tested range, or lacks what the runner uses."""


def installed_version() -> Version | None:
    try:
        return Version(metadata.version("dvc"))
    except metadata.PackageNotFoundError:
        return None


def check() -> None:
    """Raise :class:`UnsupportedDvc` (one line) unless this DVC is in :data:`SUPPORTED` and has
    every name of :data:`PRIVATE` with the behaviour noted there. Reads the version before
    importing DVC, which may itself fail on an unsupported combination."""
    fix = f"pip install 'dvc{SUPPORTED}' (requirements.txt)"
    version = installed_version()
    if version is None:
        raise UnsupportedDvc(f"DVC is not installed; ganaug.parallel needs DVC {SUPPORTED}: {fix}")
    if version not in SUPPORTED:
        raise UnsupportedDvc(f"DVC {version} is installed; ganaug.parallel is tested on DVC "
                             f"{SUPPORTED}: {fix}")
    problems = [p for p in map(_problem, PRIVATE) if p]
    if problems:
        raise UnsupportedDvc(f"DVC {version}: {'; '.join(problems)}; ganaug.parallel needs "
                             f"what DVC {SUPPORTED} has: {fix}")


def _problem(entry: tuple[str, str, str, Callable[[object], bool] | None]) -> str | None:
    module_name, path, why, behaves = entry
    try:
        obj = importlib.import_module(module_name)
        for part in path.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        return f"{module_name}.{path} is missing ({why}; {exc})"
    try:
        ok = behaves is None or behaves(obj)
    except (TypeError, ValueError, AttributeError):
        ok = False
    return None if ok else f"{module_name}.{path} does not behave as used ({why})"


@contextlib.contextmanager
def params_files_parsed_once() -> Iterator[None]:
    """Parse each params file once per version, not on every look at a ``params`` dependency.

    DVC re-reads ``params.yaml`` each time it checks or hashes a stage's params (with ruamel.yaml,
    ~0.1 s for this project's file); a coordinator recording ~150 instances would spend minutes
    of CPU on it. The cache key includes the file's inode, size and modification time.
    """
    import dvc.dependency.param as dvc_param

    original = dvc_param.load_path
    parsed: dict[tuple, object] = {}

    def load_path(path, fs, **kwargs):
        try:
            st = os.stat(path)
        except OSError:
            return original(path, fs, **kwargs)
        key = (path, st.st_ino, st.st_size, st.st_mtime_ns, tuple(sorted(kwargs.items())))
        if key not in parsed:
            parsed[key] = original(path, fs, **kwargs)
        return copy.deepcopy(parsed[key])

    dvc_param.load_path = load_path
    try:
        yield
    finally:
        dvc_param.load_path = original
