"""The scheduling loop: walk DVC's plan, send ready instances to workers, record their results.

An instance is ready when every instance upstream of it is recorded in the main workspace. DVC
then decides it (up to date, restorable, or to run), exactly when ``dvc repro`` would have, so an
upstream instance that reran with identical outputs leaves its dependents up to date. A failed
instance stops only its dependents; independent instances go on, and the run exits non-zero.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ganaug.parallel.engine import Engine
from ganaug.parallel.session import DependencyChanged, Outcome, Session, worker_files
from ganaug.parallel.workspace import InstanceResult, InstanceSpec, run_instance

if TYPE_CHECKING:
    from dvc.stage import Stage

log = logging.getLogger("ganaug.parallel")

# dvc.lock is rewritten whole on each write: at most this often while instances run, and at the end.
FLUSH_EVERY_S = 30.0


@dataclass
class Summary:
    """What a run did, by instance address."""

    ran: list[str] = field(default_factory=list)  # on a worker
    restored: list[str] = field(default_factory=list)  # from DVC's cache, no command run
    up_to_date: list[str] = field(default_factory=list)
    ran_here: list[str] = field(default_factory=list)  # in the main workspace (workers_can_run)
    failed: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)  # downstream of a failure
    results: dict[str, InstanceResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_run

    def line(self, seconds: float) -> str:
        parts = [f"{len(self.ran)} ran on workers", f"{len(self.restored)} restored from DVC's "
                 f"cache", f"{len(self.up_to_date)} up to date"]
        parts += [f"{len(self.ran_here)} ran in the main workspace"] * bool(self.ran_here)
        parts += [f"{len(self.failed)} failed"] * bool(self.failed)
        parts += [f"{len(self.not_run)} not run (upstream failed)"] * bool(self.not_run)
        return f"{', '.join(parts)}; {seconds:.1f} s"


class Coordinator:
    def __init__(self, session: Session, engine: Engine, force: bool = False) -> None:
        self.session = session
        self.engine = engine
        self.force = force
        self.plan = session.plan
        self.summary = Summary()
        self.pending: list[Stage] = list(self.plan.order)  # not decided yet, in DVC's order
        self.queue: list[Stage] = []  # decided: needs a worker, waiting for a free one
        self.running: dict[object, tuple[Stage, InstanceSpec]] = {}  # future -> instance
        self.done: set[Stage] = set()  # recorded in the main workspace
        self.files = worker_files(session.root, [o for stage in self.plan.order
                                                 for o in session.paths(stage)[1]])
        self.count = 0

    def run(self) -> Summary:
        from distributed import wait

        try:
            while self.pending or self.queue or self.running:
                self._decide_ready()
                self._dispatch()
                self.session.flush(every=FLUSH_EVERY_S)
                if not self.running:
                    if not self.queue and not any(self._ready(s) for s in self.pending):
                        break  # the rest waits on failed instances
                    continue
                finished = wait(list(self.running), return_when="FIRST_COMPLETED").done
                self._collect(finished)
        except BaseException:  # interrupted: keep what is recorded, in DVC's order
            self.session.flush()
            raise
        self.session.flush(final=True)
        for stage in self.pending:
            self.summary.not_run.append(stage.addressing)
        return self.summary

    # ---- deciding ------------------------------------------------------------------------

    def _ready(self, stage: Stage) -> bool:
        return all(u in self.done for u in self.plan.upstream[stage])

    def _decide_ready(self) -> None:
        """Let DVC decide every ready instance; repeat while that makes more of them ready."""
        progressed = True
        while progressed:
            progressed = False
            for stage in [s for s in self.pending if self._ready(s)]:
                self.pending.remove(stage)
                self._decide(stage)
                progressed = True

    def _decide(self, stage: Stage) -> None:
        name = stage.addressing
        outcome = self.session.advance(stage, force=self.force)
        if outcome is Outcome.NEEDS_WORKER:
            self.queue.append(stage)
            return
        self.done.add(stage)
        self._progress(outcome.value, name)
        {Outcome.UP_TO_DATE: self.summary.up_to_date, Outcome.RESTORED: self.summary.restored,
         Outcome.RAN_HERE: self.summary.ran_here}[outcome].append(name)

    # ---- running -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        if self.queue and not self.running and self.engine.capacity() == 0:
            log.info("waiting for a worker to join the scheduler")
            self.engine.client.wait_for_workers(1)
        free = self.engine.capacity() - len(self.running)
        while self.queue and free > 0:
            stage = self._next()
            spec = self._spec(stage)
            future = self.engine.client.submit(run_instance, spec, key=f"instance-{spec.name}",
                                               pure=False, retries=0)
            self.running[future] = (stage, spec)
            log.info("start    %s", spec.name)
            free -= 1

    def _next(self) -> Stage:
        """The queued instance to start next: the one with the most instances downstream of it
        (DVC's order among equals). A GAN's training, which the pool, the scores, the
        selections and every mix wait for, then starts before a real-only run that only its
        evaluation waits for, and the study's long serial chain starts first. Only the start
        order changes: DVC decides and records every instance as before, in its own order."""
        best = max(self.queue, key=lambda s: len(self.plan.dependents[s]))
        self.queue.remove(best)
        return best

    def _spec(self, stage: Stage) -> InstanceSpec:
        deps, outs = self.session.paths(stage)
        name = stage.addressing
        work = self.session.work_dir
        safe = "".join(c if c.isalnum() or c in "@-_.," else "_" for c in name)
        return InstanceSpec(
            name=name, root=str(self.session.root), workspace=str(work / "ws" / safe),
            log=str(work / "logs" / f"{safe}.log"), commands=self.session.command(stage),
            wdir=self.session.wdir(stage), files=self.files, deps=deps, outs=outs,
            slot_env=self.engine.slot_env)

    def _collect(self, finished) -> None:
        order = {s: i for i, s in enumerate(self.plan.order)}
        for future in sorted(finished, key=lambda f: order[self.running[f][0]]):
            stage, spec = self.running.pop(future)
            result = self._result(future, stage)
            if result is None or not result.ok:
                self._fail(stage, result)
                continue
            problem = self._record(stage, spec, result)
            if problem is not None:
                self._fail(stage, result, problem)

    def _result(self, future, stage: Stage) -> InstanceResult | None:
        try:
            return future.result()
        except Exception:  # a worker lost, a bug in the task: this instance failed, others go on
            log.exception("%s: its task raised", stage.addressing)
            return None

    def _record(self, stage: Stage, spec: InstanceSpec, result: InstanceResult) -> str | None:
        """Record a worker's result in the main workspace; what went wrong if that failed."""
        try:
            self.session.finish(stage, Path(spec.workspace))
        except DependencyChanged as exc:
            return str(exc)
        except Exception as exc:  # DVC's errors, OSError, ...: this instance failed, others go on
            log.exception("%s: ran, but restoring its result in the main workspace failed",
                          stage.addressing)
            return f"ran, but recording it failed: {exc}"
        shutil.rmtree(spec.workspace, ignore_errors=True)
        self.done.add(stage)
        self.summary.ran.append(stage.addressing)
        self.summary.results[stage.addressing] = result
        env = " ".join(f"{k}={v}" for k, v in result.env.items())
        self._progress("done", f"{stage.addressing} in {result.seconds:.1f} s ({env})")
        return None

    def _fail(self, stage: Stage, result: InstanceResult | None, problem: str | None = None
              ) -> None:
        name = stage.addressing
        self.summary.failed.append(name)
        self.session.give_up(stage)
        if result is not None:
            self.summary.results[name] = result
            tail = "\n".join(f"    | {line}" for line in result.tail.splitlines())
            why = problem or ("its workspace could not be prepared" if result.returncode == -1
                              else f"exit status {result.returncode}")
            self._progress("FAILED", f"{name} after {result.seconds:.1f} s ({why}); log: "
                           f"{result.log}\n{tail}", level=logging.ERROR)
        else:
            self._progress("FAILED", name, level=logging.ERROR)
        for dependent in self.plan.dependents[stage]:
            if dependent in self.pending:
                self.pending.remove(dependent)
                self.session.give_up(dependent)
                self.summary.not_run.append(dependent.addressing)
                log.warning("not run  %s (needs %s)", dependent.addressing, name)

    def _progress(self, what: str, text: str, level: int = logging.INFO) -> None:
        self.count += 1
        width = len(str(len(self.plan.order)))
        log.log(level, "[%*d/%d] %-10s %s", width, self.count, len(self.plan.order), what, text)

