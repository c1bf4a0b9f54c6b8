"""Where a stage instance's fixed cost goes, before it does any work: the interpreter, imports,
DVC's own work per stage, and writing ``dvc.lock``.

    python benchmarks/stage_overhead.py [--stages 20] [--repeat 3]

1. ``python -c pass`` and ``import torch`` (the floor every model stage pays).
2. Each stage entry point started with ``--help`` (interpreter + its imports, nothing else),
   cold (a fresh ``python -m`` with ``GANAUG_WARM_START=0``: how ``dvc repro`` started every
   instance before its warm start), warm under ``dvc repro`` (the same command, which hands
   itself to plain ``dvc repro``'s start server, :mod:`ganaug.warmstart`: the whole process,
   from its start to its exit status), and warm under the parallel runner (forked from
   ``ganaug.parallel``'s start server). Each server's own start-up, paid once per run, is
   printed on its own line.
3. DVC's own work per stage: ``dvc repro`` of a pipeline of N stages whose command is ``true``
   (each with a file dependency and an output, like the study's), per stage, minus nothing:
   the command costs about 1 ms.
4. Writing a ``dvc.lock`` the size of the default study's (DVC rewrites the whole file after
   every stage), with DVC's own YAML writer.
5. What a stage's first calls import, after its own imports: ``torch.optim``'s first ``step``
   (imports ``torch._dynamo``, every training stage), ``torch.use_deterministic_algorithms``
   (imports inductor's config) and ``import dvclive`` (the training curves), each in its own
   fresh interpreter with torch imported (cold) and forked from the start server (warm).
Best of ``--repeat`` runs each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("check_params", "prepare", "fetch", "train_scorer", "train_gan", "generate", "score",
          "select", "train", "evaluate", "refine", "report")


def best(cmd: list[str], repeat: int, cwd: Path = ROOT, env: dict | None = None) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return min(times)


def instance_env() -> dict[str, str]:
    """This environment with this interpreter's folder first on ``PATH``, so that an instance's
    ``python`` is the one the start server runs (what makes it start warm)."""
    return {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                                   os.environ.get("PATH", "")])}


def warm_best(stage: str, repeat: int) -> float:
    """Seconds from asking the start server for ``python -m stages.<stage> --help`` to its end."""
    from ganaug.parallel import launcher

    env = instance_env()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            start = time.perf_counter()
            assert launcher.serves(env)
            code = launcher.start(f"stages.{stage}", ["--help"], cwd=str(ROOT), env=env,
                                  log=str(Path(tmp) / "log")).wait()
            times.append(time.perf_counter() - start)
            if code != 0:
                raise SystemExit(f"stages.{stage} --help exited {code}: "
                                 f"{(Path(tmp) / 'log').read_text()[-2000:]}")
    return min(times)


def repro_server(env: dict[str, str], timeout: float = 120) -> None:
    """Start plain ``dvc repro``'s start server for ``env`` (a first stage command does, and runs
    cold) and wait until its socket is there."""
    import json

    from ganaug import warmstart

    path = json.loads(subprocess.run(
        [sys.executable, "-c", "import json, sys; print(json.dumps(sys.path[1:]))"], cwd=ROOT,
        env=env, capture_output=True, text=True, check=True).stdout)
    folder = warmstart.socket_dir()
    if folder is None:
        raise SystemExit("no folder for dvc repro's start server (see ganaug.warmstart)")
    sock = Path(folder) / f"{warmstart.server_key(path, env)}.sock"
    subprocess.run([sys.executable, "-m", "stages.check_params", "--help"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    deadline = time.monotonic() + timeout
    while not sock.exists():
        if time.monotonic() > deadline:
            raise SystemExit("dvc repro's start server did not come up")
        time.sleep(0.1)


FIRST_CALLS = """
import json, sys, time
import torch
what = sys.argv[1]
start = time.perf_counter()
if what == "optimizer_step":
    w = torch.nn.Parameter(torch.zeros(2))
    w.grad = torch.ones(2)
    torch.optim.AdamW([w]).step()
elif what == "deterministic":
    torch.use_deterministic_algorithms(True, warn_only=True)
else:
    import dvclive  # noqa: F401
print(json.dumps(time.perf_counter() - start))
"""
FIRST_CALL_NAMES = {"optimizer_step": "torch.optim's first step (imports torch._dynamo)",
                    "deterministic": "torch.use_deterministic_algorithms (inductor's config)",
                    "dvclive": "import dvclive"}


def first_call(what: str, warm: bool, repeat: int) -> float:
    """Seconds of one first call in a fresh interpreter that has imported torch (cold), or in an
    instance forked from the start server (warm)."""
    from ganaug.parallel import launcher

    env = instance_env()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "first_calls.py").write_text(FIRST_CALLS)
        log = Path(tmp) / "log"
        for _ in range(repeat):
            if warm:
                assert launcher.serves(env)
                code = launcher.start("first_calls", [what], cwd=tmp, env=env,
                                      log=str(log)).wait()
                out = log.read_text()
            else:
                proc = subprocess.run([sys.executable, "-m", "first_calls", what], cwd=tmp,
                                      env=env, capture_output=True, text=True)
                code, out = proc.returncode, proc.stdout
            if code != 0:
                raise SystemExit(f"first_calls {what} exited {code}: {out[-2000:]}")
            times.append(float(out.strip().splitlines()[-1]))
    return min(times)


def dvc_per_stage(n: int, repeat: int) -> float:
    """Seconds of DVC's own work per stage in a ``dvc repro`` of n trivial stages."""
    out = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            repo = Path(tmp)
            subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
            subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
            (repo / "in.txt").write_text("x")
            lines = ["stages:"]
            for i in range(n):
                dep = "in.txt" if i == 0 else f"out{i - 1}.txt"
                lines += [f"  s{i}:", f"    cmd: cp {dep} out{i}.txt", f"    deps: [{dep}]",
                          f"    outs: [out{i}.txt]"]
            (repo / "dvc.yaml").write_text("\n".join(lines) + "\n")
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dvc", "repro", "-q"], cwd=repo, check=True)
            out.append((time.perf_counter() - start) / n)
    return min(out)


def lock_write(repeat: int) -> tuple[float, int]:
    """Seconds to write the repository's dvc.lock with DVC's YAML writer, and its size."""
    from dvc.utils.serialize import dump_yaml, load_yaml

    lock = ROOT / "dvc.lock"
    data = load_yaml(lock)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            start = time.perf_counter()
            dump_yaml(Path(tmp) / "dvc.lock", data)
            times.append(time.perf_counter() - start)
    return min(times), lock.stat().st_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stages", type=int, default=20)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    py = sys.executable
    print(f"python -c pass: {best([py, '-c', 'pass'], args.repeat):.2f} s")  # noqa: T201
    print(f"import torch: {best([py, '-c', 'import torch'], args.repeat):.2f} s")  # noqa: T201
    from ganaug.parallel import launcher

    start = time.perf_counter()
    launcher.serves(dict(os.environ))
    print(f"ganaug.parallel's start server (once per run): "  # noqa: T201
          f"{time.perf_counter() - start:.2f} s")
    env = {**instance_env(), "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    repro_server(env)
    print(f"dvc repro's start server (once per run, in the background): "  # noqa: T201
          f"{time.perf_counter() - start:.2f} s")
    for stage in STAGES:
        cmd = [py, "-m", f"stages.{stage}", "--help"]
        t = best(cmd, args.repeat, env={**env, "GANAUG_WARM_START": "0"})
        r = best(cmd, args.repeat, env=env)
        w = warm_best(stage, args.repeat)
        print(f"stages.{stage} start-up (imports): {t:.2f} s cold, {r:.2f} s warm under "  # noqa: T201
              f"dvc repro, {w:.2f} s warm under the parallel runner")
    print(f"DVC's work per stage (dvc repro of {args.stages} trivial stages): "  # noqa: T201
          f"{dvc_per_stage(args.stages, args.repeat):.2f} s")
    seconds, size = lock_write(args.repeat)
    print(f"writing dvc.lock ({size / 1024:.0f} KiB, DVC's writer): {seconds:.2f} s")  # noqa: T201
    for what, name in FIRST_CALL_NAMES.items():
        cold, warm = (first_call(what, w, args.repeat) for w in (False, True))
        print(f"first call, {name}: {cold:.2f} s cold, {warm:.2f} s warm")  # noqa: T201


if __name__ == "__main__":
    main()
