"""The optimiser step of the AESOP models (:class:`TrainStep`): ``train.amp``, ``channels_last``, ``grad_clip``,
``accumulate``, ``compile``."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import torch
from torch import nn

from aesop.errors import AesopError
from aesop.schema import Number, declare_options

AMP_DTYPES = {'none': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
#: ``train``'s keys read by :class:`TrainStep` (declared here, refused by the models that do not read them)
STEP_OPTIONS = tuple(
    declare_options(
        'train',
        'TrainStep',
        "The optimiser step's options, read by the AE, GAN, real-world and HR-aware models; any value, even `false`, "
        "is refused by a model that does not read them (AesopSRModel, basicsr's): their unset is `~`.",
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


class TrainStep:
    """Autocast around the forward passes, fp32 loss reductions, a gradient scaler for fp16, and the optimiser
    step's options declared above (``model.train_step``; at test time the plain fp32 step). Beyond the declarations:
    fp16 has a ``GradScaler`` per optimiser and clips after unscaling; ``grad_norm_g``/``grad_clipped_g`` are logged;
    with ``accumulate: k`` the gradients of k micro-batches add up (per-sample means give the whole batch's; the
    relativistic GAN's means and D's BatchNorm statistics are per micro-batch); compiled state dicts keep their keys.
    """

    def __init__(self, train_opt: Mapping[str, Any]):
        """``train_opt``: the validated ``train`` section (``{}`` at test time); its unset keys are ``~``."""
        self.amp_dtype = AMP_DTYPES[train_opt.get('amp') or 'none']
        self.channels_last = bool(train_opt.get('channels_last'))
        clip = train_opt.get('grad_clip')
        self.grad_clip = dict(clip) if isinstance(clip, Mapping) else {'g': clip, 'd': clip}
        self.accumulate = int(train_opt.get('accumulate') or 1)
        self.compile = train_opt.get('compile') or False
        self.device_type = 'cpu'  # the model's, from setup()
        self.grad_scalers: dict[int, torch.amp.GradScaler] = {}
        self.log: OrderedDict[str, torch.Tensor] = OrderedDict()

    def scaler_states(self, optimizers: Iterable[torch.optim.Optimizer]) -> list[dict | None]:
        """Each optimiser's fp16 gradient scaler state (its scale and growth tracker; ``None``: no scaler yet), for
        the training state: a resumed fp16 run scales its losses as the stopped one would have."""
        return [None if (scaler := self.grad_scalers.get(id(o))) is None else scaler.state_dict() for o in optimizers]

    def load_scaler_states(self, optimizers: Iterable[torch.optim.Optimizer], states: Iterable[dict | None]) -> None:
        """Put back :meth:`scaler_states` (a state without them, or of a run without fp16: nothing to do)."""
        for optimizer, state in zip(optimizers, states, strict=False):
            if state:
                scaler = self.grad_scalers.setdefault(id(optimizer), torch.amp.GradScaler(self.device_type))
                scaler.load_state_dict(state)

    def setup(self, device: torch.device, modules: Iterable[nn.Module], compiled: Iterable[nn.Module]) -> None:
        """Take the model's ``device``, move ``modules`` (networks and loss modules) to channels_last and compile
        ``compiled`` (the bare G and D)."""
        self.device_type = device.type
        if self.channels_last:
            for module in modules:
                module.to(memory_format=torch.channels_last)
        if self.compile:
            kwargs = dict(self.compile) if isinstance(self.compile, Mapping) else {}
            for net in compiled:
                net.compile(**kwargs)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to ``train.amp`` on the model's device (a no-op for ``none`` and at test time)."""
        return torch.autocast(self.device_type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """``loss.backward()``, divided by ``train.accumulate`` and scaled for fp16."""
        loss = loss / self.accumulate
        if self.amp_dtype is torch.float16:
            scaler = self.grad_scalers.setdefault(id(optimizer), torch.amp.GradScaler(self.device_type))
            loss = scaler.scale(loss)
        loss.backward()

    def step(self, optimizer: torch.optim.Optimizer, net: Literal['g', 'd'] = 'g') -> None:
        """``optimizer.step()`` (the optimiser of G or D, ``net``) after clipping (``train.grad_clip``); with fp16
        through its scaler (skips steps with inf/NaN gradients)."""
        scaler = self.grad_scalers.get(id(optimizer))
        max_norm = self.grad_clip.get(net)
        if max_norm:
            if scaler is not None:
                scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group['params'] if p.grad is not None]
            norm = torch.nn.utils.clip_grad_norm_(params, float(max_norm))
            self.log[f'grad_norm_{net}'] = norm.detach()
            self.log[f'grad_clipped_{net}'] = (norm > float(max_norm)).float()
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()

    def split(self, batch: Mapping[str, torch.Tensor]) -> Iterator[dict[str, torch.Tensor]]:
        """The k micro-batches (``train.accumulate``) of ``batch``: the i-th k-th of each tensor (k = 1: ``batch``)."""
        k = self.accumulate
        if k == 1:
            yield dict(batch)
            return
        size = next(iter(batch.values())).shape[0]
        if size % k:
            raise AesopError(f'train.accumulate ({k}) must divide the batch ({size} images per GPU)')
        for i in range(k):
            yield {name: tensor[i * size // k : (i + 1) * size // k] for name, tensor in batch.items()}

    def take_log(self) -> OrderedDict[str, torch.Tensor]:
        """What the steps since the last call logged (``grad_norm_*``, ``grad_clipped_*``), emptied."""
        log, self.log = self.log, OrderedDict()
        return log

    def memory_format(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` in NHWC when ``train.channels_last`` is set."""
        return tensor.contiguous(memory_format=torch.channels_last) if self.channels_last else tensor


def mean_of(dicts: list[Mapping[str, torch.Tensor]]) -> OrderedDict:
    """The mean of each entry over micro-batches (loss dicts of the same keys)."""
    if len(dicts) == 1:
        return OrderedDict(dicts[0])
    return OrderedDict((key, torch.stack([d[key].detach().float() for d in dicts]).mean()) for key in dicts[0])


def check_step_options(model: type | None, opt: dict) -> None:
    """``train.amp``/``grad_clip``/``accumulate``/… are read by the models whose ``READS_STEP_OPTIONS`` is true
    (:class:`aesop.models.base.AesopModel`'s flag) only: elsewhere they would be ignored silently, so any value is
    refused there (unset is ``~``)."""
    train = opt.get('train') or {}
    used = [key for key in STEP_OPTIONS if train.get(key) is not None]
    if model is not None and used and not getattr(model, 'READS_STEP_OPTIONS', False):  # basicsr's: no such flag
        raise AesopError(
            f'train.{used[0]} is not supported by {model.__name__}: the AE, GAN, real-world and HR-aware models read it'
        )
