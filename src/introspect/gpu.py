"""One GPU per job: Snakemake counts GPUs (``resources: gpu=1``) but does not say which one a job
should use, and it does not set CUDA_VISIBLE_DEVICES. A job started with ``--claim-gpu`` takes the
first free slot among ``GPUs x runs per GPU`` lock files, sets CUDA_VISIBLE_DEVICES to that slot's
GPU and holds the lock (an flock, released by the kernel when the process ends, even on SIGKILL).

- the GPU count is ``INTROSPECT_GPUS`` if set, else the lines of ``nvidia-smi -L`` (0 without one);
- ``INTROSPECT_RUNS_PER_GPU`` (default 1) lets several small runs share one GPU;
- the locks live in ``INTROSPECT_GPU_LOCKS`` (default ``.introspect/gpu-locks`` under the working
  folder), so all jobs of one workflow on one machine see the same slots;
- a CUDA_VISIBLE_DEVICES already set (by SLURM, or by the user) is respected and nothing is claimed.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

_held: list = []  # open lock files of this process


def gpu_count() -> int:
    if "INTROSPECT_GPUS" in os.environ:
        return int(os.environ["INTROSPECT_GPUS"])
    if shutil.which("nvidia-smi") is None:
        return 0
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines()) if out.returncode == 0 else 0


def claim(poll_s: float = 1.0) -> int | None:
    """Pin this process to a free GPU slot; return the GPU index, or None when there is nothing to do."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return None
    gpus = gpu_count()
    if gpus == 0:
        return None
    slots = gpus * int(os.environ.get("INTROSPECT_RUNS_PER_GPU", "1"))
    lock_dir = Path(os.environ.get("INTROSPECT_GPU_LOCKS", ".introspect/gpu-locks"))
    lock_dir.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        for slot in range(slots):
            f = open(lock_dir / f"slot{slot}.lock", "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            _held.append(f)
            gpu = slot % gpus
            os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
            return gpu
        if not waited:  # more jobs than slots: the profile's gpu resource should prevent this
            print(f"introspect: all {slots} GPU slots in {lock_dir} are busy; waiting", file=sys.stderr)
            waited = True
        time.sleep(poll_s)
