"""Training under torch.distributed: DistributedDataParallel, 2 processes on loopback (gloo on the
CPU; NCCL with a GPU per process where there are 2 GPUs and pykernels has CUDA kernels).

Each rank trains on half the batch (pykernels.nn modules, the optimizer step under the drop-in
mode; and a plain torch model run wholly under the drop-in mode); DDP averages the gradients, so
after a few steps every rank's parameters must equal those of a single process trained on the
full batch.
"""

import os
import sys
import time

import pytest
import torch
import torch.distributed as dist

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts"))
import pykernels
import ddp_worker

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")

_PYKERNELS_CUDA = "cuda" in {b.lower() for b in pykernels.build_info().get("backends", [])}
BACKENDS = [
    pytest.param(
        "gloo",
        marks=pytest.mark.skipif(
            not dist.is_available() or not dist.is_gloo_available(), reason="gloo is not available"
        ),
    ),
    pytest.param(
        "nccl",
        marks=pytest.mark.skipif(
            not (
                dist.is_available() and dist.is_nccl_available() and torch.cuda.device_count() >= 2 and _PYKERNELS_CUDA
            ),
            reason="NCCL needs 2 GPUs and a pykernels build with CUDA kernels",
        ),
    ),
]

WORLD_SIZE = 2
TIMEOUT_S = 180


def spawn(tmp_path, backend):
    import torch.multiprocessing as mp

    context = mp.start_processes(
        ddp_worker.worker,
        args=(WORLD_SIZE, str(tmp_path), backend),
        nprocs=WORLD_SIZE,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not context.join(timeout=max(1.0, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                raise TimeoutError(f"DDP workers did not finish within {TIMEOUT_S} s")
    finally:
        for process in context.processes:  # only ours, and only if still running
            if process.is_alive():
                process.kill()
                process.join(5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ddp_two_processes_equal_single_process_on_the_full_batch(tmp_path, backend):
    spawn(tmp_path, backend)
    expected = ddp_worker.single_process("cuda:0" if backend == "nccl" else "cpu")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE)]
    for name in ("modules", "dropin"):
        start = ddp_worker.model(torch.nn).state_dict()
        assert any(not torch.equal(start[k], v) for k, v in expected[name].items()), "the run did not train"
        for rank, got in enumerate(ranks):
            assert list(got[name]) == list(expected[name])
            for key, value in expected[name].items():
                torch.testing.assert_close(
                    got[name][key],
                    value,
                    rtol=1e-10,
                    atol=1e-12,
                    msg=lambda m, name=name, rank=rank, key=key: f"{name} rank {rank} {key}: {m}",
                )
    assert ranks[0]["modules_types"] == ["pykernels.nn.Linear", "pykernels.nn.ReLU"]
    assert ranks[0]["dropin_types"] == ["torch.nn.modules.activation.ReLU", "torch.nn.modules.linear.Linear"]
