"""The shrunk quick DAG through a real SLURM cluster: Snakemake's SLURM executor plugin with
workflow/profiles/slurm submits every job with sbatch to a one-node cluster (munged, slurmctld,
slurmd) that this test starts as root in a temporary folder and stops afterwards.

There is no accounting database (no slurmdbd), so `sacct` cannot answer: the profile the test
derives sets `slurm-status-command: squeue`, which sees finished jobs for MinJobAge seconds.
The cluster is private: its own munge key and socket, its own ports and state, found by the
clients through SLURM_CONF, never through /etc/slurm. It skips only where SLURM or munge is not
installed (`apt-get install slurm-wlm munge`, as .ci/run does) or the test is not root."""
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from helpers import BIN, ROOT, env, shipped_params, snakemake_argv, tiny_params, write_params
from introspect import pipeline

SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
TOOLS = ("munged", "munge", "slurmctld", "slurmd", "slurmstepd", "sbatch", "srun", "squeue", "scontrol", "scancel", "sinfo")
MISSING = [name for name in TOOLS if not shutil.which(name, path=SBIN)]

installed = pytest.mark.skipif(bool(MISSING), reason=f"SLURM/munge not installed ({', '.join(MISSING)} not "
                                                     "found): apt-get install slurm-wlm munge")
root = pytest.mark.skipif(os.geteuid() != 0, reason="starting munged, slurmctld and slurmd needs root")

PARTITION = "debug"
RUN_TIMEOUT_S = 360  # the DAG below takes about 2 min on 2 cores


def tool(name: str) -> str:
    return shutil.which(name, path=SBIN)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"({exc})"


class Cluster:
    """munged + slurmctld + slurmd on this machine, all state under one fresh folder."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="introspect-slurm-", dir="/tmp"))  # short: the munge socket path
        self.conf = self.dir / "slurm.conf"
        self.node = socket.gethostname().split(".")[0]
        self.procs: dict[str, subprocess.Popen] = {}
        self.dir.chmod(0o755)  # munged wants its socket's folder searchable by all
        # The job's Snakemake runs each rule with srun but drops every SLURM_* variable but the job's
        # identity (snakemake-executor-plugin-slurm-jobstep 0.6), SLURM_CONF too, which only this
        # private cluster needs (a real one's config is in /etc/slurm or served by slurmctld): this
        # srun, first on the jobs' PATH, puts it back.
        wrappers = self.dir / "bin"
        wrappers.mkdir()
        (wrappers / "srun").write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {tool("srun")} "$@"\n')
        (wrappers / "srun").chmod(0o755)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_", "SALLOC_"))}
        # the jobs inherit this (sbatch --export=ALL): the venv's snakemake and introspect, this cluster
        self.env = {**env, "PATH": os.pathsep.join([str(BIN), str(wrappers), SBIN]), "SLURM_CONF": str(self.conf)}

    def run(self, *args, timeout=30, check=True) -> subprocess.CompletedProcess:
        out = subprocess.run([tool(args[0]), *args[1:]], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({out.returncode}): {out.stdout}{out.stderr}\n{self.logs()}")
        return out

    def daemon(self, name: str, *args):
        log = open(self.dir / f"{name}.out", "w")
        self.procs[name] = subprocess.Popen([tool(name), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def wait(self, what: str, ready, timeout=60):
        deadline = time.time() + timeout
        while not ready():
            dead = [f"{n} exited with {p.returncode}" for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.time() > deadline:
                raise AssertionError(f"SLURM test cluster: {what} not ready after {timeout} s "
                                     f"({'; '.join(dead) or 'timed out'})\n{self.logs()}")
            time.sleep(0.5)

    def start(self):
        key = self.dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        sock = self.dir / "munge.socket"
        self.daemon("munged", "--foreground", "--force", f"--key-file={key}", f"--socket={sock}",
                    f"--pid-file={self.dir / 'munged.pid'}", f"--log-file={self.dir / 'munged.log'}",
                    f"--seed-file={self.dir / 'munged.seed'}")
        self.wait("munged", lambda: sock.exists()
                  and subprocess.run([tool("munge"), "-n", "-S", str(sock)], capture_output=True).returncode == 0)
        for sub in ("state", "spool"):
            (self.dir / sub).mkdir()
        (self.dir / "plugstack.conf").write_text("")  # not the system's /etc/slurm/plugstack.conf
        ctld_port, slurmd_port = free_ports(2)
        self.conf.write_text(f"""\
ClusterName=introspect-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
StateSaveLocation={self.dir / 'state'}
SlurmdSpoolDir={self.dir / 'spool'}
SlurmctldPidFile={self.dir / 'slurmctld.pid'}
SlurmdPidFile={self.dir / 'slurmd.pid'}
SlurmctldLogFile={self.dir / 'slurmctld.log'}
SlurmdLogFile={self.dir / 'slurmd.log'}
PlugStackConfig={self.dir / 'plugstack.conf'}
# no cgroups, no accounting: a container or VM without systemd's cgroup delegation, no slurmdbd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# squeue (the status command) shows a finished job for MinJobAge seconds; the plugin polls far more often
MinJobAge=300
KillWait=5
InactiveLimit=0
# the node is what this file says, whatever slurmd detects (a VM may report fewer sockets or cores)
SlurmdParameters=config_overrides
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory=4000 State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
        self.daemon("slurmctld", "-D", "-i")
        self.wait("slurmctld", lambda: self.run("scontrol", "ping", check=False).returncode == 0)
        self.daemon("slurmd", "-D", "-N", self.node)
        self.wait("slurmd (node idle)",
                  lambda: self.run("sinfo", "-h", "-N", "-o", "%t", check=False).stdout.strip() == "idle")

    def ours(self) -> list[int]:
        """Processes this cluster started (daemons' children, jobs, job steps): they carry its SLURM_CONF."""
        mark = f"SLURM_CONF={self.conf}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if mark in (entry / "environ").read_bytes().split(b"\0"):
                        pids.append(int(entry.name))
                except OSError:
                    pass
        return pids

    def stop(self):
        """Cancel the jobs, stop the daemons, kill whatever of this cluster is left, remove its folder."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run("scancel", "--user=root", check=False)
            deadline = time.time() + 20  # KillWait=5: SIGTERM, then SIGKILL 5 s later
            while time.time() < deadline and self.run("squeue", "--noheader", check=False).stdout.strip():
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for _ in range(5):  # a job or slurmstepd that outlived slurmd, and what it started meanwhile
            pids = self.ours()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not pids:
                break
            time.sleep(0.2)
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self) -> str:
        """The daemons' logs, and what a daemon that exited printed (a fatal error may come before its log)."""
        names = [f"{name}.log" for name in ("slurmctld", "slurmd", "munged")]
        names += [f"{name}.out" for name, proc in self.procs.items() if proc.poll() is not None]
        return "\n".join(f"--- {name} ---\n{tail(self.dir / name)}" for name in names if (self.dir / name).exists())


@pytest.fixture
def cluster():
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        c.stop()
    assert not c.ours(), "processes of the test cluster outlived it"


def shrunk_params() -> dict:
    """Table 2 at quick scale cut down to CE and LE, resnet8, 2 seeds, 1 epoch, no explanations:
    prepare -> 2 train jobs (each trains both seeds) -> evaluate -> report: 5 SLURM jobs."""
    table2 = {**shipped_params()["tables"]["table2"], "models": ["resnet8"], "rows": {
        "ce": {"method": "ce"}, "le_gradcam": {"method": "le", "set": {"method.explainer": "gradcam"}}}}
    return tiny_params({"table2": table2}, seeds=[0, 1], method_options={"le": {"warmup": 0}})


def test_profile_asks_for_gpus_time_and_memory_per_rule(tmp_path):
    """The profile as a real cluster gets it (a dry run: nothing is submitted)."""
    write_params(tmp_path, shrunk_params())
    out = subprocess.run(snakemake_argv(tmp_path, "-n", "--profile", str(ROOT / "workflow/profiles/slurm")),
                         env=env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    resources = {rule: dict(kv.split("=", 1) for kv in line.split(", "))
                 for rule, line in re.findall(r"^rule (\w+):\n(?:\s+\w+: .*\n)*?\s+resources: (.*)$", out.stdout, re.M)}
    assert {"gpu": "1", "runtime": "240", "mem_mb": "16000", "cpus_per_task": "4"}.items() <= resources["train"].items()
    assert {"runtime": "20", "mem_mb": "8000"}.items() <= resources["report"].items()
    assert {"runtime": "30", "mem_mb": "4000", "cpus_per_task": "1"}.items() <= resources["prepare"].items()


def derived_profile(tmp_path: Path) -> Path:
    """workflow/profiles/slurm with GPU, memory and CPU requests this node can give, squeue for the
    status, short polling, and the SLURM job logs kept for the assertions."""
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    for resources in profile["set-resources"].values():
        for key in ("gres", "slurm_extra", "gpu_model"):
            resources.pop(key, None)
        if "gpu" in resources:
            resources["gpu"] = 0  # no GPU gres on this node: the rules' gpu=1 would ask for --gpus=1
        resources["mem_mb"] = 1000
        resources["cpus_per_task"] = 1
    profile["default-resources"].update(mem_mb=1000, cpus_per_task=1, slurm_partition=PARTITION)
    profile.update({
        "retries": 0,                          # a failure here is a bug: report it now, not 3 times
        "latency-wait": 10,
        "slurm-status-command": "squeue",      # no slurmdbd: sacct has nothing to say
        # the plugin polls after 5 s, then 10 s longer each time nothing finished (5, 20, 45 s):
        # with its default, 40, each of the 3 levels of this DAG would wait 40 s or more
        "slurm-init-seconds-before-status-checks": 5,
        "seconds-between-status-checks": 5,
        "slurm-keep-successful-logs": True,
    })
    out = tmp_path / "profile"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return out


def runtime(rule: str) -> int:
    """Minutes the profile gives a rule's first attempt."""
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    value = profile["set-resources"].get(rule, {}).get("runtime", profile["default-resources"]["runtime"])
    return eval(str(value), {"attempt": 1})


def slurm_minutes(minutes: int) -> str:
    """As squeue prints a time limit: 30:00, 4:00:00."""
    return f"{minutes // 60}:{minutes % 60:02d}:00" if minutes >= 60 else f"{minutes}:00"


@pytest.mark.slow
@installed
@root
def test_quick_dag_runs_end_to_end_through_slurm(cluster, tmp_path):
    work = write_params(tmp_path / "work", shrunk_params())
    profile = derived_profile(tmp_path)
    log = tmp_path / "snakemake.out"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(BIN / "snakemake"), "--snakefile", str(ROOT / "Snakefile"), "--profile", str(profile)],
                                cwd=work, env=cluster.env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = f"killed after {RUN_TIMEOUT_S} s"

    def why() -> str:
        slurm_logs = sorted((work / ".snakemake/slurm_logs").rglob("*.log"))
        rule_logs = sorted((work / "logs").rglob("*.log"))
        queue = cluster.run("squeue", "--states=all", "-o", "%i %j %T %r", check=False)
        return "\n".join([f"--- snakemake (exit {rc}) ---\n{tail(log, 6000)}", f"--- squeue ---\n{queue.stdout}{queue.stderr}",
                          *(f"--- {p.relative_to(work)} ---\n{tail(p, 1500)}" for p in slurm_logs + rule_logs),
                          cluster.logs()])

    assert rc == 0, f"snakemake through SLURM failed\n{why()}"
    text = log.read_text()
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", text))
    run_ids = re.findall(r"SLURM run ID: (\S+)", text)
    plan = pipeline.load(work / "params.yaml")
    jobs = 1 + len({run.id.rsplit("/", 1)[0] for run in plan.runs.values()}) + 2  # prepare, train per row, evaluate, report (which writes config.json)
    assert len(submitted) == jobs and len(run_ids) == 1, f"expected {jobs} SLURM jobs\n{why()}"
    assert "Falling back to 'sacct'" not in text, why()  # the plugin read the status with squeue
    # every one of them ran on the node under the run's job name, as slurmctld says, completed, and
    # had its rule's time limit from the profile (train: 240 * attempt minutes)
    queue = cluster.run("squeue", "--states=all", "--noheader", "--format=%i|%j|%T|%N|%l|%k").stdout
    states = {i: rest for i, *rest in (line.split("|") for line in queue.split())}
    for slurm_id in submitted.values():
        name, state, node, limit, comment = states.get(slurm_id, [None] * 5)
        assert (name, state, node) == (run_ids[0], "COMPLETED", cluster.node), f"SLURM job {slurm_id}: {states.get(slurm_id)}\n{why()}"
        rule = re.match(r"rule_([a-z_]+?)(?:_wildcards_|$)", comment).group(1)
        assert limit == slurm_minutes(runtime(rule)), (slurm_id, rule, limit)
        job_logs = list((work / ".snakemake/slurm_logs").rglob(f"{slurm_id}.log"))
        assert len(job_logs) == 1, f"no SLURM log of job {slurm_id}\n{why()}"
    for run_id in plan.runs:
        metrics = json.loads((work / "results" / run_id / "metrics.json").read_text())
        assert math.isfinite(metrics["test_acc"]) and 0 <= metrics["test_acc"] <= 100, (run_id, metrics)
    rows = pq.read_table(work / "reports/results.parquet").to_pylist()
    assert {r["run_id"] for r in rows} == set(plan.runs)
    assert "table2" in (work / "reports/index.md").read_text()
