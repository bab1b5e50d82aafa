"""The optimiser step of the AESOP models: ``train.amp``, ``channels_last``, ``grad_clip``, ``accumulate``,
``compile``."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import torch
from torch import nn

from aesop.errors import AesopError
from aesop.schema import Number, declare_options

AMP_DTYPES = {'none': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
#: ``train``'s keys read by the models with :class:`PrecisionMixin` (declared here, refused by the others)
STEP_OPTIONS = tuple(
    declare_options(
        'train',
        'PrecisionMixin',
        "The optimiser step's options, read by the AE, GAN and real-world models; any value, even `false`, is refused "
        "by a model that does not read them (basicsr's, the HR-aware ones): their unset is `~`.",
        {
            'amp': (
                Literal[tuple(AMP_DTYPES)],
                'Autocast of the forward passes (fp16 with a gradient scaler); losses in fp32; unset: none.',
            ),
            'channels_last': (bool, 'Networks, ψ and batches in NHWC layout (faster convolutions); unset: false.'),
            'grad_clip': (
                Number | dict[Literal['g', 'd'], Number | None],
                'Max gradient norm, one for G and D or `{g: …, d: …}`; unset: no clipping.',
            ),
            'accumulate': (int, 'Micro-batches per optimiser step; unset: 1.', {'ge': 1}),
            'compile': (bool | dict[str, Any], 'Torch.compile of G and D (or its keyword arguments); unset: false.'),
        },
    ).model_fields
)


class PrecisionMixin:
    """Autocast around the forward passes, fp32 loss reductions, a gradient scaler for fp16, and the
    optimiser step's options.

    Options (``train``):

    - ``amp: none | bf16 | fp16`` (bf16 works on CPU and GPU; fp16 uses a ``GradScaler`` per optimiser);
    - ``channels_last: true | false``: networks, the frozen ψ and the input batches in NHWC memory
      layout, which helps convolutions on recent GPUs and CPUs;
    - ``grad_clip``: max L2 norm of the gradients, one number for G and D or ``{g: …, d: …}``
      (clipped after fp16 unscaling); the norm and whether it clipped are logged
      (``grad_norm_g``, ``grad_clipped_g``: the fraction of iterations that clipped);
    - ``accumulate: k``: each iteration's batch runs as k micro-batches whose gradients add up
      before one optimiser step (``batch_size_per_gpu`` must be divisible by k). Losses that are
      means over samples give the gradient of the whole batch; the relativistic GAN's means and
      D's BatchNorm statistics are per micro-batch;
    - ``compile: true`` (or ``{mode: …, backend: …, dynamic: …}``, ``torch.compile``'s
      arguments): ``nn.Module.compile`` of G and D; the state dicts keep their keys.
    """

    def setup_precision(self, *modules: nn.Module) -> None:
        """Read the options, move ``modules`` (networks and loss modules) to channels_last and compile G, D."""
        train_opt = self.opt['train']
        self.amp_dtype = AMP_DTYPES[train_opt.get('amp') or 'none']  # one of AMP_DTYPES (declared above)
        self.channels_last = bool(train_opt.get('channels_last', False))
        self.grad_scalers: dict[int, torch.amp.GradScaler] = {}
        clip = train_opt.get('grad_clip')
        self.grad_clip = dict(clip) if isinstance(clip, Mapping) else {'g': clip, 'd': clip}
        self.accumulate = int(train_opt.get('accumulate') or 1)
        self.step_log: OrderedDict[str, torch.Tensor] = OrderedDict()
        if self.channels_last:
            for module in modules:
                module.to(memory_format=torch.channels_last)
        compile_opt = train_opt.get('compile') or False
        if compile_opt:
            kwargs = dict(compile_opt) if isinstance(compile_opt, Mapping) else {}
            for name in ('net_g', 'net_d'):
                if hasattr(self, name):
                    self.get_bare_model(getattr(self, name)).compile(**kwargs)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to ``train.amp`` on the model's device (a no-op for ``none`` or at test time)."""
        dtype = getattr(self, 'amp_dtype', None)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """``loss.backward()``, divided by ``train.accumulate`` and scaled for fp16."""
        loss = loss / getattr(self, 'accumulate', 1)
        if getattr(self, 'amp_dtype', None) is torch.float16:
            scaler = self.grad_scalers.setdefault(id(optimizer), torch.amp.GradScaler(self.device.type))
            loss = scaler.scale(loss)
        loss.backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()`` after clipping (``train.grad_clip``); with fp16 through its scaler (skips steps
        with inf/NaN gradients)."""
        scaler = self.grad_scalers.get(id(optimizer)) if hasattr(self, 'grad_scalers') else None
        net = 'g' if optimizer is getattr(self, 'optimizer_g', None) else 'd'
        max_norm = getattr(self, 'grad_clip', {}).get(net)
        if max_norm:
            if scaler is not None:
                scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group['params'] if p.grad is not None]
            norm = torch.nn.utils.clip_grad_norm_(params, float(max_norm))
            self.step_log[f'grad_norm_{net}'] = norm.detach()
            self.step_log[f'grad_clipped_{net}'] = (norm > float(max_norm)).float()
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()

    def micro_batches(self) -> Iterator[int]:
        """Yield 0 … k-1 (``train.accumulate``) with ``lq``, ``gt`` (``gt_usm``) set to the i-th k-th of the
        batch; they are the whole batch again afterwards. With k = 1, once, unchanged."""
        k = getattr(self, 'accumulate', 1)
        if k == 1:
            yield 0
            return
        whole = {name: getattr(self, name) for name in ('lq', 'gt', 'gt_usm') if hasattr(self, name)}
        size = next(iter(whole.values())).shape[0]
        if size % k:
            raise AesopError(f'train.accumulate ({k}) must divide the batch ({size} images per GPU)')
        try:
            for i in range(k):
                for name, tensor in whole.items():
                    setattr(self, name, tensor[i * size // k : (i + 1) * size // k])
                yield i
        finally:
            for name, tensor in whole.items():
                setattr(self, name, tensor)

    def reduce_loss_dict(self, loss_dict):
        """The losses and what the step logged (``grad_norm_*``), reduced as basicsr does."""
        loss_dict = OrderedDict(loss_dict)
        loss_dict.update(getattr(self, 'step_log', {}))
        self.step_log = OrderedDict()
        return super().reduce_loss_dict(loss_dict)

    def feed_data(self, data):
        super().feed_data(data)
        self.inputs_to_memory_format()

    def inputs_to_memory_format(self) -> None:
        """``lq``, ``gt`` (and ``gt_usm``) in NHWC when ``train.channels_last`` is set."""
        if getattr(self, 'channels_last', False):
            for name in ('lq', 'gt', 'gt_usm'):
                if hasattr(self, name):
                    setattr(self, name, getattr(self, name).contiguous(memory_format=torch.channels_last))


def mean_of(dicts: list[Mapping[str, torch.Tensor]]) -> OrderedDict:
    """The mean of each entry over micro-batches (loss dicts of the same keys)."""
    if len(dicts) == 1:
        return OrderedDict(dicts[0])
    return OrderedDict((key, torch.stack([d[key].detach().float() for d in dicts]).mean()) for key in dicts[0])


def check_step_options(model: type | None, opt: dict) -> None:
    """``train.amp``/``grad_clip``/``accumulate``/… are read by the models with :class:`PrecisionMixin` only:
    elsewhere they would be ignored silently, so any value is refused there (unset is ``~``)."""
    train = opt.get('train') or {}
    used = [key for key in STEP_OPTIONS if train.get(key) is not None]
    if model is not None and used and not issubclass(model, PrecisionMixin):
        raise AesopError(
            f'train.{used[0]} is not supported by {model.__name__}: the AE, GAN and real-world models read it'
        )
