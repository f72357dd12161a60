"""`introspect status [--watch]`: where a results tree stands against the plan, per table, in a few lines.

Per table (the runs it shows), then the teachers, assistants and stages the tables learn from:
runs finished and current, stale (finished, but their config, code, teacher or data changed since:
the report leaves them out), running (a training process is writing the run now: epoch e of E, the
seconds per epoch so far, an ETA for the run), interrupted (a checkpoint and no live process: the next
`snakemake --cores all --rerun-incomplete` resumes it) and missing. Then the report's own first line.

A run in training writes ``progress.json`` beside its checkpoint, atomically, when it starts and after
every epoch (:func:`introspect.train.train`): its epoch, its epochs, the seconds each epoch took, the
time, the host and the process id. A run is *running* when that process is alive (on this host), or,
from another host (a SLURM node), when the file is younger than three of its epochs (at least ten
minutes).

Reading the tree needs no torch: this module imports only the standard library. Building the plan
(:mod:`introspect.pipeline`) and checking that a finished run is current (its code digest,
:mod:`introspect.provenance`) import the library, torch included: a few seconds, once per command
(``--watch`` keeps them).
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from .console import duration
from .fileio import atomic_write
from .runfolder import NAME, PROGRESS, read_json
OUT_OF_DATE = "**Out of date**"  # how reports/index.md starts while a run of the workflow changes results/


def mark_out_of_date(index: Path, why: str) -> bool:
    """Make ``index``'s first line say that the runs it describes are changing (``why``), keeping the
    rest; atomically (a reader sees the old file or the new one). False when there is no report yet."""
    index = Path(index)
    try:
        lines = index.read_text().splitlines(keepends=True)
    except OSError:
        return False
    if lines and lines[0].startswith(OUT_OF_DATE):  # marked before (a crashed run): the older mark goes
        lines = lines[2:] if len(lines) > 1 and not lines[1].strip() else lines[1:]
    head = (f"{OUT_OF_DATE}: {why}; this report describes the runs as they were before. The workflow's report "
            "job rewrites it (`snakemake --cores all`; after a crash, `snakemake --cores all --rerun-incomplete`; "
            "if that finds nothing to do, `snakemake --cores all --forcerun report`).\n\n")
    atomic_write(index, lambda f: f.write((head + "".join(lines)).encode()))
    return True


def alive(progress: dict, now: float) -> bool:
    """Whether the process that wrote ``progress`` still trains."""
    if progress.get("host") == socket.gethostname() and isinstance(progress.get("pid"), int):
        try:
            os.kill(progress["pid"], 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, another user's
            return True
        try:  # a killed process nobody has reaped yet (a zombie) trains no more
            return Path(f"/proc/{progress['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True
    seconds = progress.get("seconds") or []
    per_epoch = sum(seconds) / len(seconds) if seconds else 0.0
    return now - float(progress.get("updated", 0)) < max(600.0, 3 * per_epoch)


@dataclass
class RunState:
    run_id: str
    state: str  # current | stale | running | interrupted | missing
    epoch: int = 0
    epochs: int = 0
    seconds_per_epoch: float | None = None
    why: list[str] = field(default_factory=list)

    @property
    def eta(self) -> float | None:
        if self.seconds_per_epoch is None:
            return None
        return max(self.epochs - self.epoch, 0) * self.seconds_per_epoch


def run_state(folder: Path, run_id: str, epochs: int, now: float) -> RunState:
    """The state of one planned run from its files (stale is decided later, for finished runs only)."""
    path = folder / run_id
    if (path / "metrics.json").is_file():
        return RunState(run_id, "current", epochs, epochs)
    progress = read_json(path / PROGRESS)
    if progress is not None:
        seconds = [float(s) for s in progress.get("seconds") or []]
        per_epoch = sum(seconds) / len(seconds) if seconds else None
        state = "running" if alive(progress, now) else "interrupted"
        return RunState(run_id, state, int(progress.get("epoch", 0)), int(progress.get("epochs", epochs)), per_epoch)
    if (path / NAME).is_file():
        return RunState(run_id, "interrupted", 0, epochs)
    return RunState(run_id, "missing", 0, epochs)


def collect(plan, folder: Path, check_current: bool = True) -> dict[str, RunState]:
    """Every planned run's state under ``folder``; a finished run is checked against the plan and the
    code as the report checks it (:func:`introspect.provenance.staleness`)."""
    from .plan import epochs_of

    now = time.time()
    states = {run_id: run_state(Path(folder), run_id, epochs_of(run), now) for run_id, run in sorted(plan.runs.items())}
    if check_current:
        from .provenance import staleness

        datasets: dict[str, str | None] = {}
        for run_id, st in states.items():
            if st.state == "current":
                st.why = staleness(plan.runs[run_id].resolved, read_json(Path(folder) / run_id / "config.json"), datasets)
                st.state = "stale" if st.why else "current"
    return states


def summary(name: str, ids: set[str], states: dict[str, RunState]) -> list[str]:
    counts = {k: 0 for k in ("current", "stale", "running", "interrupted", "missing")}
    for run_id in ids:
        counts[states[run_id].state] += 1
    head = f"{name:28s} {counts['current']:4d}/{len(ids):<4d} current"
    head += "".join(f", {n} {k}" for k, n in counts.items() if n and k != "current")
    lines = [head]
    for run_id in sorted(ids):
        st = states[run_id]
        if st.state == "running":
            speed = f", {st.seconds_per_epoch:.1f} s/epoch, ETA {duration(st.eta)}" if st.seconds_per_epoch else ""
            lines.append(f"    running {run_id}: epoch {st.epoch + 1 if st.epoch < st.epochs else st.epoch} of "
                         f"{st.epochs} ({st.epoch} done{speed})")
    return lines


def report_head(reports: Path) -> str:
    """The report's out-of-date mark, else its completeness line (the first bold line near its top)."""
    try:
        with open(Path(reports) / "index.md") as f:
            head = [f.readline().strip() for _ in range(10)]
    except OSError:
        return "(no report yet: reports/index.md is written by the workflow's last job)"
    return next((line for line in head if line.startswith("**")), head[0])


def other_scales(plan, folder: Path, params: Path) -> list[str]:
    """A line per other scale of ``params`` with runs under ``folder`` that ``plan`` does not have
    (a workflow run with ``--config scale=laptop``): how many finished, how many train now, and the
    command that shows them. Reads files only (no staleness check)."""
    from .pipeline import SCALES, load
    from .registry import ConfigError

    now = time.time()
    lines = []
    for scale in SCALES:
        if scale == plan.scale:
            continue
        try:
            ids = sorted(set(load(Path(params), scale).runs) - set(plan.runs))
        except ConfigError:  # a config written for one scale only: nothing to say of the others
            continue
        states = [run_state(Path(folder), run_id, 0, now) for run_id in ids]
        finished = sum(st.state == "current" for st in states)  # current: finished (not checked here)
        running = [st.run_id for st in states if st.state == "running"]
        what = [f"{finished} finished"] if finished else []
        if running:
            what.append(f"{len(running)} running ({running[0]}" + (f" and {len(running) - 1} more)" if len(running) > 1 else ")"))
        if what:
            lines.append(f"# scale {scale}'s runs here, not in scale {plan.scale}'s plan: {', '.join(what)}: "
                         f"`introspect status --scale {scale}`")
    return lines


def render(plan, folder: Path, reports: Path, states: dict[str, RunState] | None = None,
           params: Path | None = None) -> str:
    states = states if states is not None else collect(plan, folder)
    shown = {table.name: plan.shown(table) for table in plan.tables}
    support = set(plan.runs) - set().union(*shown.values())
    counts = {k: sum(1 for s in states.values() if s.state == k) for k in ("current", "stale", "running", "interrupted", "missing")}
    lines = [f"# scale {plan.scale}: {counts['current']} of {len(plan.runs)} runs finished and current"
             + "".join(f", {n} {k}" for k, n in counts.items() if n and k != "current")
             + f" ({time.strftime('%H:%M:%S')})"]
    for name, ids in [*shown.items(), ("teachers, assistants, stages", support)]:
        if ids:
            lines += summary(name, ids, states)
    stale = sorted(r for r, s in states.items() if s.state == "stale")
    if stale:
        lines.append(f"# stale (retrained by `snakemake --cores all`): {stale[0]} ({'; '.join(states[stale[0]].why)})"
                     + (f" and {len(stale) - 1} more" if len(stale) > 1 else ""))
    if counts["interrupted"]:
        lines.append("# interrupted: `snakemake --cores all --rerun-incomplete` resumes them from their checkpoints")
    if params is not None:
        lines += other_scales(plan, folder, params)
    lines.append(f"# report: {report_head(reports)[:160]}")
    return "\n".join(lines)


def watch(plan, folder: Path, reports: Path, every: float, out=None, rounds: int | None = None,
          params: Path | None = None) -> None:
    """Print the status every ``every`` seconds until interrupted (or ``rounds`` times)."""
    import sys

    out = out or sys.stdout
    n = 0
    while rounds is None or n < rounds:
        text = render(plan, folder, reports, params=params)
        if out.isatty():
            out.write("\x1b[2J\x1b[H")
        out.write(text + "\n")
        out.flush()
        n += 1
        if rounds is not None and n >= rounds:
            break
        time.sleep(every)
