"""Worker for tests/test_ddp.py: one rank of a DistributedDataParallel run on pykernels.

Each rank trains, on its shard of the batch, (a) a model built from pykernels.nn modules, with
the optimizer step under the drop-in mode, and (b) a plain torch model run entirely under the
drop-in mode; then saves both models' parameters to OUT_DIR/rank<R>.pt.
"""

import datetime
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import pykernels.nn as pknn
from pykernels import dropin

N, D_IN, H, D_OUT = 16, 12, 8, 3
STEPS = 4
LR = 0.05


def data(device="cpu"):
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(N, D_IN, generator=g, dtype=torch.float64).to(device),
        torch.randn(N, D_OUT, generator=g, dtype=torch.float64).to(device),
    )


def model(nn, device="cpu"):
    """The same initial weights in every process: the tutorial's net with biases, float64."""
    torch.manual_seed(1)
    return torch.nn.Sequential(nn.Linear(D_IN, H), nn.ReLU(), nn.Linear(H, D_OUT)).double().to(device)


def train(net, loss_fn, x, y, step_context, forward_context):
    optimizer = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.5)
    for _ in range(STEPS):
        with forward_context():
            optimizer.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
        with step_context():
            optimizer.step()


def single_process(device="cpu"):
    """The reference: one process, the full batch, no DDP."""
    x, y = data(device)
    results = {}
    for name, nn in (("modules", pknn), ("dropin", torch.nn)):
        net = model(nn, device)
        train(net, nn.MSELoss(), x, y, dropin.enable, dropin.enable if name == "dropin" else _nothing)
        results[name] = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    return results


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def worker(rank, world_size, out_dir, backend="gloo"):
    """One rank: gloo on the CPU, or NCCL with one GPU per rank. The ranks meet through a file
    store in out_dir (a TCP store would need a free port, which another process could take
    between choosing it and binding it)."""
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)  # two processes on what may be two cores
    device = f"cuda:{rank}" if backend == "nccl" else "cpu"
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(
        backend,
        init_method=f"file://{os.path.join(out_dir, 'store')}",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        x, y = data(device)
        xs, ys = x.chunk(world_size)[rank], y.chunk(world_size)[rank]
        results = {}
        for name, nn in (("modules", pknn), ("dropin", torch.nn)):
            net = model(nn, device)
            ddp = DistributedDataParallel(net, device_ids=[rank] if backend == "nccl" else None)
            train(ddp, nn.MSELoss(), xs, ys, dropin.enable, dropin.enable if name == "dropin" else _nothing)
            results[name] = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            results[name + "_types"] = sorted({type(m).__module__ + "." + type(m).__name__ for m in net})
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
