"""A checkpoint written on one device type resumes on another: the loader's generator state (whose
kind differs between CPU and CUDA) is restored only where it was written."""
import io

import pytest
import torch

from introspect.train import restore_rng


def test_a_cuda_written_generator_state_is_not_forced_on_a_cpu_generator():
    gen = torch.Generator().manual_seed(0)
    cuda_like = {"torch": torch.get_rng_state(), "loader": torch.zeros(16, dtype=torch.uint8), "device": "cuda"}
    with pytest.raises(RuntimeError):  # what train() did before: set_state of a state of another kind
        torch.Generator().set_state(cuda_like["loader"])
    log = io.StringIO()
    restore_rng(cuda_like, gen, torch.device("cpu"), "run", log)
    assert "written on cuda, resumed on cpu" in log.getvalue()
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(0).get_state())  # restarted from the seed


def test_the_same_device_type_restores_every_stream():
    gen = torch.Generator().manual_seed(0)
    torch.rand(3, generator=gen)
    saved = {"torch": torch.get_rng_state(), "loader": gen.get_state()}  # an older checkpoint: no "device" key
    fresh = torch.Generator().manual_seed(0)
    log = io.StringIO()
    restore_rng(saved, fresh, torch.device("cpu"), "run", log)
    assert torch.equal(fresh.get_state(), gen.get_state()) and log.getvalue() == ""
