"""Where training runs: the device, the precision and the processes.

One process (``awdlstm train``) or several launched by ``torchrun`` (``WORLD_SIZE`` > 1):
then each process joins the ``torch.distributed`` group (NCCL on CUDA, gloo on CPU), takes
a contiguous block of the global batch's columns, and the model is wrapped in
``DistributedDataParallel``, which averages the gradients. Everything the training loop
must agree on across processes (the loss sums, a stop or save request, the carried
hidden state of the whole batch) goes through the few collective helpers here, so the
model code never sees a process group.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..config import check_device
from ..errors import AwdlstmError
from ..model.masks import Columns

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str | None, local_rank: int = 0) -> torch.device:
    """``auto`` (or None) → CUDA when available (this process's GPU under torchrun), else CPU."""
    name = "auto" if name is None else name
    check_device(name, "--device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise AwdlstmError(f"device {name!r}: no CUDA device is available here; use --device cpu or auto")
    device = torch.device(name if ":" in name else f"cuda:{local_rank}")
    if device.index >= torch.cuda.device_count():
        raise AwdlstmError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                           f"numbered from 0")
    return device


@dataclass
class Machine:
    """This process's device, precision, rank and world size."""

    device: torch.device
    precision: str = "fp32"
    rank: int = 0
    world: int = 1

    @classmethod
    def start(cls, device: str = "auto", precision: str = "fp32") -> Machine:
        """Join the process group when launched by torchrun; pick and check the device."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if world > 1 and ":" in device:
            raise AwdlstmError(f"train.device={device!r} with {world} processes: use 'cuda' (or auto), so that "
                               f"each process takes the GPU of its LOCAL_RANK")
        dev = resolve_device(device, local_rank)
        if precision == "fp16" and dev.type != "cuda":
            raise AwdlstmError("train.precision='fp16' needs a CUDA device; on CPU use 'bf16' or 'fp32'")
        if precision == "bf16" and dev.type == "cpu" and not cpu_has_bf16():
            warnings.warn("train.precision='bf16': this CPU has no native bfloat16 instructions, so bf16 "
                          "matrix products are emulated and likely slower than fp32", RuntimeWarning, stacklevel=2)
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        rank = 0
        if world > 1:
            if not dist.is_initialized():
                _join_group("nccl" if dev.type == "cuda" else "gloo")
            rank = dist.get_rank()
        return cls(dev, precision, rank, world)

    # ---- roles and shares -----------------------------------------------------------
    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes files, logs and progress bars."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def block(self, total: int) -> tuple[int, int]:
        """This rank's contiguous block [start, end) of ``total`` columns (sizes differ by at most one)."""
        return total * self.rank // self.world, total * (self.rank + 1) // self.world

    def columns(self, total: int) -> Columns | None:
        """The model's view of this rank's block of the training batch (None in one process)."""
        return Columns(self.block(total)[0], total) if self.distributed else None

    # ---- precision ------------------------------------------------------------------
    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.precision])

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """fp16 needs loss scaling; bf16 has fp32's exponent range and does not."""
        return torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None

    # ---- collectives (no-ops in one process) -----------------------------------------
    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def _comm_device(self) -> torch.device:
        return self.device if dist.is_initialized() and dist.get_backend() == "nccl" else torch.device("cpu")

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks (float64)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        return t.tolist()

    def from_main(self, values: list[float]) -> list[float]:
        """Rank 0's values on every rank (float64)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        dist.broadcast(t, 0)
        return t.tolist()

    def gather_columns(self, t: torch.Tensor, dim: int, total: int) -> torch.Tensor:
        """This rank's block of a tensor whose ``dim`` is the batch → the whole batch, on
        every rank: each rank fills its block of a zero tensor and the blocks are summed
        (adding zeros is exact)."""
        if not self.distributed:
            return t
        shape = list(t.shape)
        shape[dim] = total
        full = t.new_zeros(shape, device=self._comm_device())
        start, end = self.block(total)
        full.narrow(dim, start, end - start).copy_(t)
        dist.all_reduce(full)
        return full.to(t.device)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()

    # ---- random state -----------------------------------------------------------------
    def rng_state(self) -> dict[str, torch.Tensor]:
        state = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def set_rng_state(self, state: dict[str, torch.Tensor]) -> None:
        """The CPU generator always; the CUDA one when this run is on CUDA and the file has it
        (a run moved between devices continues with fresh CUDA draws)."""
        torch.set_rng_state(state["torch"])
        if self.device.type == "cuda" and "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], self.device)


def _join_group(backend: str) -> None:
    """Join torchrun's process group. A rank stuck in a long evaluation on another rank waits
    up to the timeout. After an elastic restart (torchrun --max-restarts) the store can still
    hold the previous attempt's keys, among them the addresses of workers that died, and a
    fast rank then connects to a dead peer (observed under torch 2.13 with --standalone):
    every attempt's keys live under their own prefix, as torchelastic itself used to do."""
    timeout = datetime.timedelta(minutes=60)
    store, rank, world = next(dist.rendezvous("env://", timeout=timeout))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.PrefixStore(f"awdlstm/attempt_{attempt}/", store)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)


def cpu_has_bf16() -> bool:
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((probe and probe()) or (amx and amx()))
