"""The workflow's console: one line per finished job, with the progress (the Snakefile installs it).

Snakemake 8-9 prints about six console lines per job ("Select jobs to execute...", "Execute 1 jobs...",
a timestamp, "Finished jobid: 7 (Rule: train)", "3 of 20 steps (15%) done") and, unless told
`--quiet rules`, each job's inputs and outputs (~130 paths for the evaluate job). On a run that is
not a dry run and not `--verbose`, `JobLines` keeps the console to what a user watches:

    [00:31:02] 3 of 20 done (15%): train digits/resnet8/ce, 4 min 12 s

and passes every warning and error (a failed job's inputs and outputs shortened to three and a
count), Snakemake's job table and anything it does not know as they are. Shell commands (the GPU
and SLURM profiles' `printshellcmds`) stay in the log only. The file log Snakemake keeps under
.snakemake/log/ is untouched: it has every line.
"""
import logging
import time

# Snakemake's own start-up and scheduling chatter (in .snakemake/log/ still)
CHATTER = ("Select jobs to execute", "Assuming unrestricted shared filesystem usage", "Using shell:",
           "Rules claiming more threads will be scaled down", "Conda environments: ignored",
           "Building DAG of jobs")


def duration(seconds: float) -> str:
    """7 -> '7 s', 252 -> '4 min 12 s', 7260 -> '2 h 1 min'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def shorten(line: str, keep: int = 3) -> str:
    """'    input: a, b, c, d, e' -> '    input: a, b, c and 2 more (.snakemake/log/ has them all)'."""
    head, sep, files = line.partition(": ")
    if head.strip() not in ("input", "output") or not sep:
        return line
    names = files.split(", ")
    if len(names) <= keep:
        return line
    return f"{head}: {', '.join(names[:keep])} and {len(names) - keep} more (.snakemake/log/ has them all)"


class JobLines(logging.Filter):
    """A console handler's filter and formatter at once: it remembers each job as Snakemake starts
    it (JOB_INFO), drops the per-job chatter, and writes the progress record as one line naming the
    job that just finished and how long it took."""

    def __init__(self, base: logging.Formatter | None, clock=time.time):
        super().__init__()
        self.base = base or logging.Formatter()
        self.clock = clock
        self.jobs: dict[int, tuple[str, float]] = {}  # jobid -> (label, started)
        self.finished: int | None = None

    # The event names are Snakemake's LogEvent values (snakemake_interface_logger_plugins.common).
    @staticmethod
    def event(record: logging.LogRecord) -> str | None:
        event = getattr(record, "event", None)
        return getattr(event, "value", event)

    def filter(self, record: logging.LogRecord) -> bool:
        event = self.event(record)
        if record.levelno >= logging.WARNING or event in ("job_error", "group_error", "error"):
            return True
        if event == "job_info":
            wildcards = getattr(record, "wildcards", None) or {}
            label = " ".join([str(getattr(record, "rule_name", "job")), "/".join(map(str, wildcards.values()))])
            self.jobs[getattr(record, "jobid", None)] = (label.strip(), self.clock())
            return len(self.jobs) == 1 and self.finished is None  # the first job's, as the hint below
        if event == "job_finished":
            self.finished = getattr(record, "job_id", None)
            return False
        if event in ("workflow_started", "job_started", "shellcmd", "group_info"):  # shellcmd: profiles' printshellcmds
            return False
        if event is None and isinstance(record.msg, str):
            text = record.msg
            if text.startswith(CHATTER) or (text.startswith("Execute ") and text.endswith(" jobs...")):
                return False
        return True

    def format(self, record: logging.LogRecord) -> str:
        event = self.event(record)
        if event == "job_info":  # only the first job's passes the filter: where to see a long job's epochs
            return "Running (one line per finished job; each run's epoch and ETA: introspect status --watch)"
        if event == "job_error":  # whole, but a job's ~130 inputs and outputs as counts (the log has them)
            return "\n".join(shorten(line) for line in self.base.format(record).splitlines())
        if event != "progress":
            return self.base.format(record)
        done, total = getattr(record, "done", 0), getattr(record, "total", 0)
        line = f"[{time.strftime('%H:%M:%S', time.localtime(self.clock()))}] {done} of {total} done"
        line += f" ({100 * done // total if total else 100}%)"
        label, started = self.jobs.pop(self.finished, (None, None))
        if label:
            line += f": {label}, {duration(self.clock() - started)}"
        return line


def install(handlers) -> bool:
    """Put `JobLines` on every console (stream, not file) handler among `handlers`; True if any."""
    installed = False
    for handler in handlers:
        if isinstance(handler, logging.FileHandler) or not isinstance(handler, logging.StreamHandler):
            continue
        lines = JobLines(handler.formatter)
        handler.filters.insert(0, lines)
        handler.setFormatter(lines)
        installed = True
    return installed
