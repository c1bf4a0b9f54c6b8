"""The engine: Dask distributed, on local workers or on a cluster's scheduler.

Local: one in-process worker per slot (``-j N``, or one per GPU and ``--per-gpu k``), one task at
a time each. A task only prepares a workspace and waits on a ``dvc repro`` process, so threads of
the coordinator's own process are enough; the work runs in those processes. Each slot has an
environment: its GPU in ``CUDA_VISIBLE_DEVICES`` and ``cores // slots`` threads.

Cluster (``--scheduler tcp://host:8786``): workers started by ``dask worker`` on machines that
see the project at the same path. Each keeps the environment it was started with (its
``CUDA_VISIBLE_DEVICES``); threads default to the host's cores divided by its workers.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic.dataclasses import dataclass as pydantic_dataclass

from ganaug.parallel.workspace import thread_env
from ganaug.params import STRICT
from ganaug.runtime import usable_cores

log = logging.getLogger(__name__)


@pydantic_dataclass(config=STRICT, frozen=True)
class EngineOptions:
    """Where instances run. ``workers`` is for a local run; ``gpus`` (device ids) and
    ``per_gpu`` make it one worker per GPU (or k); ``scheduler`` attaches to a cluster."""

    workers: int | None = None
    gpus: tuple[str, ...] = ()
    per_gpu: int = 1
    threads: int | None = None
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"-j: expected at least 1 worker, got {self.workers}")
        if self.per_gpu < 1:
            raise ValueError(f"--per-gpu: expected at least 1, got {self.per_gpu}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads: expected at least 1, got {self.threads}")
        if self.scheduler and (self.gpus or self.workers):
            raise ValueError("--scheduler: the cluster's workers are started with `dask worker` "
                             "(one per GPU, each with its CUDA_VISIBLE_DEVICES); -j and --gpus "
                             "are for a local run")
        if self.gpus and self.workers not in (None, len(self.gpus) * self.per_gpu):
            raise ValueError(f"-j {self.workers} contradicts --gpus {','.join(self.gpus)} with "
                             f"--per-gpu {self.per_gpu} ({len(self.gpus) * self.per_gpu} workers)")

    def local_slots(self) -> list[dict[str, str]]:
        """One environment per local worker: its GPU (if any) and its threads."""
        if self.gpus:
            gpus = [g for g in self.gpus for _ in range(self.per_gpu)]
        else:
            gpus = [None] * (self.workers or usable_cores())
        threads = self.threads or max(1, usable_cores() // len(gpus))
        return [{**thread_env(threads), **({"CUDA_VISIBLE_DEVICES": g} if g is not None else {})}
                for g in gpus]


@dataclass
class Engine:
    client: object  # distributed.Client
    slot_env: dict[str, dict[str, str]]  # worker address -> environment for its instances

    def capacity(self) -> int:
        """Instances that can run at once: the workers' threads."""
        return sum(self.client.nthreads().values())


def parse_gpus(text: str | None) -> tuple[str, ...]:
    """``"0,1"`` -> ``("0", "1")``; ``"all"`` -> every CUDA device torch sees."""
    if not text:
        return ()
    if text == "all":
        import torch

        count = torch.cuda.device_count()
        if count == 0:
            raise ValueError("--gpus all: torch sees no CUDA device here")
        return tuple(str(i) for i in range(count))
    ids = tuple(g.strip() for g in text.split(",") if g.strip())
    if not ids or len(set(ids)) != len(ids):
        raise ValueError(f"--gpus: expected distinct device ids such as 0,1,2, got {text!r}")
    return ids


@contextlib.contextmanager
def start_engine(options: EngineOptions, root: Path) -> Iterator[Engine]:
    """Start local workers, or attach to a cluster and check that its workers can do the work."""
    import dask
    from distributed import Client, LocalCluster

    # The coordinator's main thread hashes files for DVC while the scheduler's event loop shares
    # its process: keep the scheduler from logging every such pause.
    with dask.config.set({"distributed.admin.tick.limit": "1h"}):
        if options.scheduler:
            with Client(options.scheduler) as client:
                yield Engine(client, _cluster_slots(client, root, options.threads))
            return
        slots = options.local_slots()
        # Dask serves HTTP (health, metrics) even without a dashboard: on localhost only, on
        # free ports, so that runs side by side do not collide. No memory limit: a worker only
        # waits on an instance's process, and Dask's default (the machine's memory / workers,
        # checked against this whole process) paused every worker at -j 40, and nothing ended.
        with LocalCluster(n_workers=len(slots), threads_per_worker=1, processes=False,
                          memory_limit=0,
                          dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0"
                          ) as cluster, Client(cluster) as client:
            workers = client.scheduler_info()["workers"]
            by_name = {info["name"]: addr for addr, info in workers.items()}
            yield Engine(client, {by_name[i]: env for i, env in enumerate(slots)})


def _cluster_slots(client, root: Path, threads: int | None) -> dict[str, dict[str, str]]:
    client.wait_for_workers(1)
    sees = client.run(os.path.isdir, str(root))
    blind = sorted(addr for addr, ok in sees.items() if not ok)
    if blind:
        raise RuntimeError(f"workers {', '.join(blind)} do not see {root}: every worker must "
                           f"share the project's filesystem at the same path")
    workers: Mapping[str, dict] = client.scheduler_info()["workers"]
    for addr, info in workers.items():
        if info.get("nthreads", 1) > 1:
            log.warning("worker %s has %d threads, so it runs that many instances at once on "
                        "its GPU; start workers with `--nthreads 1`", addr, info["nthreads"])
    cores = client.run(usable_cores)
    per_host: dict[str, int] = {}
    for info in workers.values():
        per_host[info["host"]] = per_host.get(info["host"], 0) + 1
    return {addr: thread_env(threads or max(1, cores[addr] // per_host[info["host"]]))
            for addr, info in workers.items()}
