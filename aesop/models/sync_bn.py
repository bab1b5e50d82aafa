"""D's batch norms synchronised over the DDP processes (``train.sync_bn_d``): torch's ``SyncBatchNorm`` on the GPU,
:class:`CPUSyncBatchNorm` (the same statistics) on the CPU, where torch's cannot run."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['CPUSyncBatchNorm', 'sync_batch_norms']


class _AllReduceSum(torch.autograd.Function):
    """The sum of a tensor over the processes of ``group``; its gradient is summed the same way (every process's
    loss depends on every process's tensor through the sum)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group: dist.ProcessGroup) -> torch.Tensor:
        ctx.group = group
        total = tensor.clone()
        dist.all_reduce(total, group=group)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        total = grad.clone()
        dist.all_reduce(total, group=ctx.group)
        return total, None


class CPUSyncBatchNorm(_BatchNorm):
    """A batch norm that, in training under a process group of several processes, normalises with the statistics
    of all processes' batches, as torch's ``SyncBatchNorm``, on the CPU (DDP over gloo), where torch 2.14's cannot
    run: its forward refuses a CPU input ("SyncBatchNorm expected input tensor to be on GPU"; its kernels, such as
    ``batch_norm_stats``, have no CPU version) and DDP refuses to wrap one ("SyncBatchNorm layers only work with
    GPU modules"), hence not a subclass of it. The statistics come from two all-reduces per call: the per-channel
    sums and element counts (the mean), then the sums of squared deviations (the biased variance; the running
    variance takes the unbiased one, as torch). The all-reduces are differentiable, so each process's input
    gradient is that of the sum of all processes' losses, as torch's backward gives on the GPU. Otherwise (eval
    mode, one process) a plain batch norm. Parameters and buffers are a batch norm's: the same state dict keys."""

    process_group: dist.ProcessGroup | None = None  # None: the whole world

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f'expected at least 2D input (got {input.dim()}D input)')

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        synchronised = self.training and dist.is_available() and dist.is_initialized()
        group = (self.process_group or dist.group.WORLD) if synchronised else None
        if group is None or dist.get_world_size(group) < 2:
            return super().forward(input)
        self._check_input_dim(input)
        dims, shape = [0, *range(2, input.dim())], (1, -1) + (1,) * (input.dim() - 2)
        x = input.to(torch.promote_types(input.dtype, torch.float32))
        count = x.new_full((1,), x.numel() // x.shape[1])
        sums = _AllReduceSum.apply(torch.cat([x.sum(dims), count]), group)
        count = sums[-1]
        mean = sums[:-1] / count
        centred = x - mean.view(shape)
        var = _AllReduceSum.apply(centred.square().sum(dims), group) / count
        output = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.weight is not None:
            output = output * self.weight.view(shape)
        if self.bias is not None:
            output = output + self.bias.view(shape)
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1 / self.num_batches_tracked.item() if self.momentum is None else self.momentum
            with torch.no_grad():
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
                self.running_var.lerp_((var * count / (count - 1)).to(self.running_var.dtype), factor)
        return output.to(input.dtype)


def sync_batch_norms(net: nn.Module, *, device: torch.device) -> nn.Module:
    """``net`` with every batch norm synchronised over the processes, for training on ``device``: torch's
    ``convert_sync_batchnorm`` (the parameters and buffers kept, so the state dict keeps its keys and a checkpoint
    loads either way), each layer a :class:`CPUSyncBatchNorm` on the CPU. Call it before DDP wraps ``net``."""
    net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    if device.type == 'cpu':
        for module in net.modules():
            if type(module) is nn.SyncBatchNorm:
                module.__class__ = CPUSyncBatchNorm  # the same attributes; the forward above
    return net
