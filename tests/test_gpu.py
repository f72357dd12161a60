"""Each job lands on its own GPU: slots claimed through flock, CUDA_VISIBLE_DEVICES set per job."""
import os
import subprocess
import sys

CLAIM = ("import os, sys, time; from introspect.gpu import claim; g = claim(poll_s=0.05); "
         "print(g, os.environ.get('CUDA_VISIBLE_DEVICES'), flush=True); time.sleep(float(sys.argv[1]))")


def spawn(env, hold):
    return subprocess.Popen([sys.executable, "-c", CLAIM, str(hold)], env=env, stdout=subprocess.PIPE, text=True)


def base_env(tmp_path, gpus, per_gpu=1):
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    return env | {"INTROSPECT_GPUS": str(gpus), "INTROSPECT_RUNS_PER_GPU": str(per_gpu),
                  "INTROSPECT_GPU_LOCKS": str(tmp_path / "locks")}


def test_concurrent_jobs_get_different_gpus(tmp_path):
    env = base_env(tmp_path, gpus=2)
    procs = [spawn(env, 2.0) for _ in range(2)]
    got = sorted(p.communicate()[0].split()[1] for p in procs)
    assert got == ["0", "1"]


def test_runs_per_gpu_share_a_gpu_and_a_third_job_waits(tmp_path):
    env = base_env(tmp_path, gpus=1, per_gpu=2)
    first = [spawn(env, 1.5) for _ in range(2)]
    outs = [p.communicate()[0].split() for p in first]
    assert [o[1] for o in outs] == ["0", "0"]
    # slots are free again once their holders exit (even if killed): a new job gets one at once
    killed = spawn(env, 30)
    assert killed.stdout.readline().split()[1] == "0"
    killed.kill()
    killed.wait()
    again = [spawn(env, 0.1) for _ in range(2)]
    assert all(p.communicate(timeout=20)[0].split()[1] == "0" for p in again)


def test_a_scheduler_assignment_is_respected(tmp_path):
    env = base_env(tmp_path, gpus=4) | {"CUDA_VISIBLE_DEVICES": "3"}
    out = spawn(env, 0).communicate()[0].split()
    assert out == ["None", "3"]


def test_no_gpu_claims_nothing(tmp_path):
    out = spawn(base_env(tmp_path, gpus=0), 0).communicate()[0].split()
    assert out == ["None", "None"]

# On CUDA, that a claimed GPU is the one torch sees: tests/test_gpu_acceptance.py.
