"""The workflow's console (introspect.console): Snakemake's records for one job become one line."""
import io
import logging

from introspect.console import JobLines, duration, install


def record(msg, **extra):
    rec = logging.LogRecord("snakemake", logging.INFO, __file__, 1, msg, None, None)
    rec.__dict__.update(extra)
    return rec


def test_a_job_is_one_line_naming_it_with_its_time_and_the_progress():
    times = iter([100.0, 110.0, 352.0, 352.0, 360.0, 367.0, 367.0])
    records = [
        record("Select jobs to execute..."),
        record("Execute 1 jobs..."),
        record(None, event="job_info", jobid=3, rule_name="train",
               wildcards={"dataset": "digits", "model": "resnet8", "variant": "ce"}),
        record(None, event="job_info", jobid=4, rule_name="prepare", wildcards={"dataset": "mnist5k"}),
        record("Finished jobid: 3 (Rule: train)", event="job_finished", job_id=3),
        record(None, event="progress", done=1, total=20),
        record(None, event="job_info", jobid=5, rule_name="report", wildcards={}),
        record("Finished jobid: 5 (Rule: report)", event="job_finished", job_id=5),
        record(None, event="progress", done=2, total=20),
        record("Job stats:\njob  count"),
    ]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    install([handler])
    handler.filters[0].clock = lambda: next(times)
    for rec in records:
        handler.handle(rec)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("Running (one line per finished job")
    assert lines[1].endswith("] 1 of 20 done (5%): train digits/resnet8/ce, 4 min 12 s")
    assert lines[2].endswith("] 2 of 20 done (10%): report, 7 s")
    assert lines[3:] == ["Job stats:", "job  count"]  # what it does not know passes as it is
    assert len(lines) == 5


def test_warnings_and_errors_pass_whole():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    install([handler])
    handler.handle(record("Error in rule train:\n    jobid: 3", event="job_error"))
    warning = record("Select jobs to execute... but something is wrong")
    warning.levelno = logging.WARNING
    handler.handle(warning)
    assert stream.getvalue().splitlines() == ["Error in rule train:", "    jobid: 3",
                                              "Select jobs to execute... but something is wrong"]


def test_a_file_handler_keeps_everything():
    handler = logging.FileHandler("/dev/null")
    assert not install([handler]) and handler.filters == []


def test_duration():
    assert [duration(s) for s in (7, 252, 7260)] == ["7 s", "4 min 12 s", "2 h 1 min"]


def test_a_failed_job_prints_whole_but_its_file_lists_short():
    class Base(logging.Formatter):
        def format(self, record):
            return "Error in rule report:\n    jobid: 1\n    input: a, b, c, d, e\n    output: x\n    log: logs/report.log"

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(Base())
    install([handler])
    handler.handle(record(None, event="job_error"))
    assert stream.getvalue().splitlines() == [
        "Error in rule report:", "    jobid: 1",
        "    input: a, b, c and 2 more (.snakemake/log/ has them all)", "    output: x", "    log: logs/report.log"]
