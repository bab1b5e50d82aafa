"""Mixed precision and memory layout for the AESOP models: ``train.amp``, ``train.channels_last``."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from aesop.errors import AesopError

AMP_DTYPES = {'none': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


class PrecisionMixin:
    """Autocast around the forward passes, fp32 loss reductions, a gradient scaler for fp16.

    Options (``train``): ``amp: none | bf16 | fp16`` (bf16 works on CPU and GPU; fp16 uses a
    ``GradScaler`` per optimiser) and ``channels_last: true | false`` (networks, the frozen ψ and
    the input batches in NHWC memory layout, which helps convolutions on recent GPUs and CPUs).
    """

    def setup_precision(self, *modules: nn.Module) -> None:
        """Read the options and move ``modules`` (networks and loss modules) to channels_last."""
        train_opt = self.opt['train']
        amp = str(train_opt.get('amp') or 'none')
        if amp not in AMP_DTYPES:
            raise AesopError(f'train.amp must be one of {", ".join(AMP_DTYPES)}, got {amp!r}')
        self.amp_dtype = AMP_DTYPES[amp]
        self.channels_last = bool(train_opt.get('channels_last', False))
        self.grad_scalers: dict[int, torch.amp.GradScaler] = {}
        if self.channels_last:
            for module in modules:
                module.to(memory_format=torch.channels_last)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to ``train.amp`` on the model's device (a no-op for ``none`` or at test time)."""
        dtype = getattr(self, 'amp_dtype', None)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """``loss.backward()``, scaled for fp16."""
        if getattr(self, 'amp_dtype', None) is torch.float16:
            scaler = self.grad_scalers.setdefault(id(optimizer), torch.amp.GradScaler(self.device.type))
            loss = scaler.scale(loss)
        loss.backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; with fp16 through its scaler (skips steps with inf/NaN gradients)."""
        scaler = self.grad_scalers.get(id(optimizer)) if hasattr(self, 'grad_scalers') else None
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()

    def feed_data(self, data):
        super().feed_data(data)
        self.inputs_to_memory_format()

    def inputs_to_memory_format(self) -> None:
        """``lq``, ``gt`` (and ``gt_usm``) in NHWC when ``train.channels_last`` is set."""
        if getattr(self, 'channels_last', False):
            for name in ('lq', 'gt', 'gt_usm'):
                if hasattr(self, name):
                    setattr(self, name, getattr(self, name).contiguous(memory_format=torch.channels_last))
