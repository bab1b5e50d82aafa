"""The model base of this package: basicsr's ``SRModel`` with a train step, a validator and safe saving."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from basicsr.archs import build_network
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, tensor2img
from basicsr.utils.dist_util import master_only
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from aesop.archs.sizes import input_multiple, pad_to_multiple
from aesop.archs.tiling import upscale
from aesop.errors import AesopError
from aesop.models.checkpoint import check_frozen_files, first_nonfinite, where_to_resume
from aesop.models.optim import build_optimizer, build_scheduler, optimizer_record, plain, replay, scheduler_record
from aesop.models.train_step import TrainStep, mean_of
from aesop.models.validation import Validator
from aesop.resume import random_state
from aesop.schema import declare_options
from aesop.weights import atomic_save, load_weights, save_checkpoint

declare_options(
    'train',
    'AesopModel',
    "Every model of this project that trains on ψ (its file's digest is kept in the training state).",
    {
        'allow_psi_change': (
            bool,
            "Resume although ψ's file changed since the training state was written.",
            {'default': False},
        )
    },
)

__all__ = ['AesopModel']


class AesopModel(SRModel):
    """basicsr's ``SRModel`` with a :attr:`train_step` (:class:`~aesop.models.train_step.TrainStep`: autocast, fp16
    scaler, clipping, accumulation, compile), a :attr:`validator` (:class:`~aesop.models.validation.Validator`: the
    loop, the metric tables, ``val.save_best``) and safe saving (:mod:`aesop.models.checkpoint`: :meth:`save` refuses
    anything non-finite and names the newest finite checkpoint; atomic files; the training state keeps the SHA-256
    of every frozen file, :meth:`frozen_autoencoders`, which :meth:`resume_training` refuses to see changed unless
    ``train.allow_psi_change``). A non-finite loss stops the run; DDP works on CPU (gloo); loading is
    ``weights_only=True`` with one-line errors; :meth:`test` pads the LR input to the generator's multiple (SwinIR's
    ``window_size``, which basicsr 1.4.2 ignores) or runs tile by tile (``val.tile``). Registered as
    :class:`~aesop.models.gan_model.AesopSRModel`, it trains any SR network with SRModel's step.
    """

    #: the loss entries of ``train`` this model reads (any other ``*_opt`` is refused at start-up)
    LOSS_OPTIONS: tuple[str, ...] = ('pixel_opt', 'perceptual_opt')
    #: whether the optimiser step honours ``train.amp``/``grad_clip``/… (else any value is refused at start-up)
    READS_STEP_OPTIONS = True
    #: the optimisers it builds: ``train`` option → the network it steps (``optimizer_g``, … in this order)
    OPTIMIZERS: dict[str, str] = {'optim_g': 'net_g'}
    #: the per-batch tensors (split into micro-batches; in NHWC with ``channels_last``)
    BATCH = ('lq', 'gt', 'gt_usm')
    #: what belongs to one batch or image, dropped around each validation image
    PER_IMAGE = (*BATCH, 'output', 'bottleneck')

    def __init__(self, opt):
        self.train_step = TrainStep(opt['train'] if opt['is_train'] else {})
        self.validator = Validator(self, opt)
        self.ema_decay = 0  # train.ema_decay (init_training_settings)
        self.current_iter: int | None = None  # the iteration being trained (update_learning_rate)
        self.batch_in_epoch = 0  # batches of this epoch trained on (set by the loop, kept in the training state)
        self.random_states: list[dict] = []  # every rank's random streams at the last save (aesop.resume)
        self.schedule_options: dict[str, dict | None] = {}  # what the optimisers and schedulers were built from
        super().__init__(opt)

    @classmethod
    def check_options(cls, opt: dict) -> None:
        """Check the options this model reads beyond the schema at start-up (one-line errors); here none."""

    def networks(self) -> dict[str, nn.Module]:
        """The networks a checkpoint holds, by attribute: G and its EMA copy; the GAN models add D."""
        nets = {'net_g': self.net_g}
        if self.ema_decay > 0:
            nets['net_g_ema'] = self.net_g_ema
        return nets

    def frozen_autoencoders(self) -> dict[str, dict[str, str]]:
        """``{key: {'path': …, 'sha256': …, 'what'?: …}}`` of the frozen files whose digest the training state keeps."""
        return {}

    def batch(self) -> dict[str, torch.Tensor]:
        """The per-batch tensors (:attr:`BATCH`) this model holds now."""
        return {name: self.__dict__[name] for name in self.BATCH if name in self.__dict__}

    def probe_input(self) -> torch.Tensor | None:
        """One image of the last batch as G takes it, for :meth:`save`'s check of G's output (``None``: none)."""
        lq = self.batch().get('lq')
        return None if lq is None else lq[:1]

    def validation_pairs(self) -> Iterator[tuple[str, np.ndarray, np.ndarray | None, np.ndarray | None]]:
        """``(tag, image, reference, lq)`` to save and score after :meth:`test` (8-bit BGR): SR vs HR."""
        gt = self.batch().get('gt')
        yield '', tensor2img(self.output), None if gt is None else tensor2img(gt), tensor2img(self.lq)

    def metric_options(self, metric_opt: dict, tag: str) -> dict:
        """Options of a metric for the pair ``tag`` (the AE model shrinks the border at LR size)."""
        return metric_opt

    def setup_ema(self) -> None:
        """SRModel's EMA set-up (``train.ema_decay``), for a model that does not run SRModel's set-up."""
        self.ema_decay = self.opt['train']['ema_decay']
        if self.ema_decay > 0:
            get_root_logger().info(f'Use Exponential Moving Average with decay: {self.ema_decay}')
            self.net_g_ema = build_network(self.opt['network_g']).to(self.device)
            load_path = self.opt['path'].get('pretrain_network_g')
            if load_path is not None:
                self.load_network(self.net_g_ema, load_path, self.opt['path'].get('strict_load_g', True), 'params_ema')
            else:
                self.model_ema(0)  # copy net_g weight
            self.net_g_ema.eval()

    def setup_train_step(self, *modules: nn.Module) -> None:
        """Set the train step up for :meth:`networks` and the loss ``modules`` (channels_last; compile of G, D)."""
        nets = self.networks()
        compiled = [self.get_bare_model(nets[name]) for name in ('net_g', 'net_d') if name in nets]
        # not net_d in channels_last: basicsr's VGGStyleDiscriminator flattens with .view(), which needs NCHW
        generators = [net for name, net in nets.items() if name != 'net_d']
        self.train_step.setup(self.device, [*generators, *modules], compiled)

    def feed_data(self, data):
        super().feed_data(data)
        self.inputs_to_memory_format()

    def inputs_to_memory_format(self) -> None:
        """The batch in NHWC when ``train.channels_last`` is set."""
        for name, tensor in self.batch().items():
            setattr(self, name, self.train_step.memory_format(tensor))

    def drop_batch(self) -> None:
        """Forget the last batch and output (:attr:`PER_IMAGE`)."""
        for name in self.PER_IMAGE:
            self.__dict__.pop(name, None)

    def micro_batches(self) -> Iterator[int]:
        """Yield 0 … k-1 (``train.accumulate``) with :meth:`batch` set to its i-th k-th; whole again afterwards."""
        whole = self.batch()
        try:
            for i, part in enumerate(self.train_step.split(whole)):
                for name, tensor in part.items():
                    setattr(self, name, tensor)
                yield i
        finally:
            for name, tensor in whole.items():
                setattr(self, name, tensor)

    def step_g(self, micro_step: Callable[[], tuple], step: bool = True) -> tuple[list, list]:
        """G's optimiser step over the micro-batches: ``micro_step()`` sets ``self.output`` and returns its total loss
        (``None``: no backward) and loss dict. Returns the loss dicts and detached outputs (for :meth:`end_step`)."""
        self.optimizer_g.zero_grad()
        logs, outputs = [], []
        for _ in self.micro_batches():
            total, loss_dict = micro_step()
            if total is not None:
                self.train_step.backward(total, self.optimizer_g)
            logs.append(loss_dict)
            outputs.append(self.output.detach())
        if step:
            self.train_step.step(self.optimizer_g, 'g')
        return logs, outputs

    def end_step(self, logs: list, outputs: list) -> None:
        """The whole batch's output, the mean losses to log (:meth:`reduce_loss_dict`), the EMA update."""
        self.output = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        self.log_dict = self.reduce_loss_dict(mean_of(logs))
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def setup_optimizers(self):
        """basicsr's, for :attr:`OPTIMIZERS`: any ``torch.optim`` optimiser (basicsr builds Adam only;
        :func:`~aesop.models.optim.build_optimizer`), over the parameters that require a gradient; the option entries
        are left as written (basicsr pops their ``type``)."""
        train_opt = self.opt['train']
        for key, net in self.OPTIMIZERS.items():
            if not train_opt.get(key):
                raise AesopError(f'{type(self).__name__} needs train.{key} (the optimiser of {net})')
            params = []
            for name, param in getattr(self, net).named_parameters():
                if param.requires_grad:
                    params.append(param)
                else:
                    get_root_logger().warning(f'Params {name} will not be optimized.')
            optimizer = build_optimizer(train_opt[key], params, key=f'train.{key}')
            setattr(self, f'optimizer_{net.removeprefix("net_")}', optimizer)
            self.optimizers.append(optimizer)
            self.schedule_options[f'train.{key}'] = optimizer_record(train_opt[key], key=f'train.{key}')

    def setup_schedulers(self):
        """basicsr's, for any scheduler :mod:`aesop.models.optim` builds, one per optimiser (``train.scheduler``
        left as written); without one, the lr stays ``lr``."""
        options = self.opt['train'].get('scheduler')
        for optimizer in self.optimizers:
            if options:
                self.schedulers.append(build_scheduler(options, optimizer, key='train.scheduler'))
            for group in optimizer.param_groups:
                group.setdefault('initial_lr', group['lr'])  # what the warm-up scales
        self.schedule_options['train.scheduler'] = scheduler_record(options, key='train.scheduler') if options else None

    def update_learning_rate(self, current_iter: int, warmup_iter: int = -1) -> None:
        """basicsr's: each scheduler stepped once per iteration after the first; below ``warmup_iter`` the lr is
        ``initial_lr × current_iter / warmup_iter``. Before the step, each optimiser's lr is set back to its
        schedule's own (``initial_lr`` without a scheduler): basicsr stepped from the warm-up's last lr, so that a
        chained schedule (its MultiStepRestartLR, torch's StepLR, …) stayed at (w − 1)/w of the lr after the warm-up
        and a run without a scheduler kept that lr. Without a warm-up nothing changes. Also remembers the iteration
        for :meth:`reduce_loss_dict` (called once per iteration)."""
        self.current_iter = current_iter
        if not self.schedulers:  # one per optimiser (setup_schedulers), or none
            for optimizer in self.optimizers:
                for group in optimizer.param_groups:
                    group['lr'] = group['initial_lr']
        if current_iter > 1:
            for scheduler in self.schedulers:
                for group, lr in zip(scheduler.optimizer.param_groups, scheduler.get_last_lr(), strict=True):
                    group['lr'] = lr
                scheduler.step()
        if current_iter < warmup_iter:
            self._set_lr([[lr / warmup_iter * current_iter for lr in lrs] for lrs in self._get_init_lr()])

    def reduce_loss_dict(self, loss_dict):
        """basicsr's, with what the step logged (``grad_norm_*``); a non-finite loss stops the run."""
        loss_dict = OrderedDict(loss_dict)
        loss_dict.update(self.train_step.take_log())
        log_dict = super().reduce_loss_dict(loss_dict)
        for name, value in log_dict.items():
            if not math.isfinite(value):
                label = '?' if self.current_iter is None else self.current_iter
                raise AesopError(
                    f'loss {name} is {value} at iteration {label}: training stopped; {where_to_resume(self.opt)}'
                )
        return log_dict

    def eval_net(self) -> nn.Module:
        """The network that tests: the EMA copy when there is one, else G."""
        return self.networks().get('net_g_ema', self.net_g)

    def test(self):
        """basicsr's, with the LR image padded to the generator's multiple, or tile by tile (``val.tile``)."""
        window = input_multiple(self.opt['network_g'])  # SwinIR's window, RRDBNet ×2's unshuffle
        val_opt = self.opt.get('val')  # a test run without a val section: whole images
        if val_opt and val_opt['tile']:
            net = self.eval_net()
            was_training = net.training
            net.eval()
            try:
                self.output = upscale(
                    net, self.lq, scale=self.opt['scale'], tile=val_opt['tile'], tile_pad=val_opt['tile_pad'],
                    window=window,
                )  # fmt: skip
            finally:
                net.train(was_training)
            return
        h, w = self.lq.shape[-2:]
        if not window or (h % window == 0 and w % window == 0):
            return super().test()
        lq = self.lq
        self.lq = pad_to_multiple(lq, window)
        try:
            super().test()
        finally:
            self.lq = lq
        scale = self.output.shape[-1] // (w + (-w) % window)  # the network's own (1 for an auto-encoder)
        self.output = self.output[..., : h * scale, : w * scale]

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        """The :attr:`validator`'s (every rank scores its share; ``val.val_start_iter``; ``val.save_best``)."""
        self.validator.validate(dataloader, current_iter, tb_logger, save_img)

    def save_generator(self, label) -> None:
        """``models/net_g_<label>.pth`` (or ``.safetensors``, :attr:`save_format`): G's weights (``params``) and its
        EMA's (``params_ema``) when there is one."""
        nets = self.networks()
        if 'net_g_ema' in nets:
            self.save_network([self.net_g, nets['net_g_ema']], 'net_g', label, param_key=['params', 'params_ema'])
        else:
            self.save_network(self.net_g, 'net_g', label)

    def save(self, epoch, current_iter):
        """basicsr's ``save`` (networks, then the training state), only if everything is finite."""
        nets = {name: self.get_bare_model(net) for name, net in self.networks().items()}
        bad = first_nonfinite(nets, self.optimizers, self.probe_input())
        streams = random_state() if current_iter != -1 else None  # a training state keeps every rank's streams
        everyone = [(bad, streams)]
        if self.opt['dist'] and dist.is_initialized():  # each rank checked its own batch: one collective, all agree
            everyone = [None] * dist.get_world_size()
            dist.all_gather_object(everyone, (bad, streams))
        bad = next((b for b, _ in everyone if b is not None), None)
        if bad is not None:
            label = 'latest' if current_iter == -1 else current_iter
            raise AesopError(
                f'{bad} is not finite at iteration {label}: training stopped and nothing was saved; '
                f'{where_to_resume(self.opt)}'
            )
        if current_iter != -1:
            self.random_states = [rank_streams for _, rank_streams in everyone]
        super().save(epoch, current_iter)

    def extra_training_state(self) -> dict:
        """What the training state stores beyond basicsr's: the experiment's name (whose state it is:
        :func:`aesop.pipeline.load_resume_state`), the frozen files' digests, ``val.save_best``'s record, what the
        optimisers and schedulers were built from (:attr:`schedule_options`, for :meth:`resume_training`), and where
        the run is (the batches of its epoch trained on, every rank's random streams, fp16's gradient scalers), from
        which a resumed run goes on as this one would have (:mod:`aesop.resume`)."""
        return {
            'experiment': self.opt['name'],  # a state copied into another experiment is refused on resume
            'autoencoders': self.frozen_autoencoders(),
            'best_checkpoint': self.validator.best_checkpoint,
            'schedule_options': self.schedule_options,
            'batch_in_epoch': self.batch_in_epoch,
            'random': self.random_states,
            'grad_scalers': self.train_step.scaler_states(self.optimizers),
        }

    def resume_training(self, resume_state):
        """basicsr's ``resume_training``, after checking the frozen files (ψ) are the ones the state was trained
        with. The option file's optimisers and schedule win over the training state's (basicsr kept the state's lr
        and schedule whatever the file said, its issue #327): when they differ (:meth:`schedule_changes`), the
        optimisers keep their state (moments, step counts; none when the optimiser's type changed) with the file's
        hyper-parameters, and each scheduler is the file's, stepped to the resumed iteration, so that the lr is the
        one the file's schedule gives there; one line says what changed. Otherwise basicsr's, unchanged."""
        recorded = resume_state.get('autoencoders') or {}  # a state of an older version has none
        check_frozen_files(recorded, self.frozen_autoencoders(), allow=self.opt['train']['allow_psi_change'])
        self.validator.restore_best(resume_state)
        if len(resume_state['optimizers']) != len(self.optimizers):
            raise AesopError(
                f'the training state has {len(resume_state["optimizers"])} optimizers but {type(self).__name__} '
                f'builds {len(self.optimizers)}: it is a state of another model'
            )
        self.train_step.load_scaler_states(self.optimizers, resume_state.get('grad_scalers') or [])
        changes, older = self.schedule_changes(resume_state)
        if not changes:
            super().resume_training(resume_state)
            return
        saved_types = self._saved_optimizer_types(resume_state)
        for (key, optimizer), saved, saved_type in zip(
            self._optimizer_entries(), resume_state['optimizers'], saved_types, strict=True
        ):
            if saved_type != self.schedule_options[key]['type']:
                continue  # another optimiser: its moments start afresh
            groups = [{k: v for k, v in group.items() if k != 'params'} for group in optimizer.param_groups]
            if len(groups) != len(saved['param_groups']):
                raise AesopError(f'{key}: the training state has another number of parameter groups')
            optimizer.load_state_dict(
                {
                    'state': saved['state'],
                    'param_groups': [{**g, 'params': s['params']} for g, s in zip(groups, saved['param_groups'])],
                }
            )  # the state's moments with the file's hyper-parameters (the schedulers' initial values)
        for scheduler in self.schedulers:
            replay(scheduler, resume_state['iter'] - 1)  # basicsr steps it at iterations 2 … iter
        lrs = ', '.join(f'{lr:g}' for lr in self.get_current_learning_rate())
        why = (
            " (the training state, of an older version, records no options: compared its optimizers' type Adam, lr "
            "and hyper-parameters and its scheduler's settings)"
            if older
            else ''
        )
        get_root_logger().warning(
            f"resuming at iteration {resume_state['iter']} with the option file's optimizers and schedule, not the "
            f"training state's: {'; '.join(changes)}{why}; lr now {lrs}"
        )

    def _optimizer_entries(self) -> list[tuple[str, torch.optim.Optimizer]]:
        """``(train.<key>, optimizer)`` in the order of :attr:`optimizers`."""
        return [(f'train.{key}', optimizer) for key, optimizer in zip(self.OPTIMIZERS, self.optimizers, strict=True)]

    def _saved_optimizer_types(self, resume_state: dict) -> list[str | None]:
        saved = resume_state.get('schedule_options')
        if saved is None:  # an older version built Adam only
            return ['Adam'] * len(resume_state['optimizers'])
        return [(saved.get(key) or {}).get('type') for key, _ in self._optimizer_entries()]

    def schedule_changes(self, resume_state: dict) -> tuple[list[str], bool]:
        """What differs between the option file's optimisers and schedule and the training state's, one entry per
        option (``train.optim_g: lr 0.0001 → 0.0002``), and whether the state is an older version's, which records
        no options: then its optimisers' type (Adam, all an older version built), the hyper-parameters of their
        parameter groups and its schedulers' settings (their state dicts) are compared with the file's."""
        saved = resume_state.get('schedule_options')
        if saved is not None:
            changes = [_difference(key, saved.get(key), now) for key, now in self.schedule_options.items()]
            return [change for change in changes if change], False
        changes = []
        for (key, _), state in zip(self._optimizer_entries(), resume_state['optimizers'], strict=True):
            now = self.schedule_options[key]
            group = state['param_groups'][0]
            before = {'type': 'Adam', **{k: plain(v) for k, v in group.items() if k in now and k != 'type'}}
            before['lr'] = plain(group.get('initial_lr', group['lr']))
            after = now if now['type'] != 'Adam' else {k: now[k] for k in before}  # another type: all its options
            changes.append(_difference(key, before, after))
        settings_now = [_settings(scheduler.state_dict()) for scheduler in self.schedulers]
        settings_before = [_settings(state) for state in resume_state['schedulers']]
        if settings_now != settings_before:
            before = after = None
            if settings_before:  # an older version had basicsr's two schedulers only
                kind = 'MultiStepRestartLR' if 'milestones' in settings_before[0] else 'CosineAnnealingRestartLR'
                before = {'type': kind, **settings_before[0]}
            if settings_now:
                record = self.schedule_options['train.scheduler']
                after = {'type': record['type'], **settings_now[0]}
                if before is None or before['type'] != after['type']:
                    after = record  # another type: its options, as a recorded state shows them
            changes.append(_difference('train.scheduler', before, after))
        return [change for change in changes if change], True

    def model_to_device(self, net: nn.Module) -> nn.Module:
        """basicsr's, without ``device_ids=[torch.cuda.current_device()]`` on CPU (DDP over gloo); a network with
        no parameters (``AesopBicubic``) is not wrapped (DDP refuses one)."""
        net = net.to(self.device)
        if next(net.parameters(), None) is None:
            return net
        if self.opt['dist']:
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            find_unused = self.opt['find_unused_parameters']
            net = DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)
        elif self.opt['num_gpu'] > 1:
            net = nn.DataParallel(net)
        return net

    def load_network(self, net: nn.Module, load_path: str, strict: bool = True, param_key: str = 'params') -> None:
        """basicsr's, through :func:`aesop.weights.load_weights` (``weights_only=True``, clear mismatches).

        A resumed run's network file that is missing names the training state that needs it (not the option
        :func:`aesop.pipeline.check_resume` set). A non-strict load (``strict_load_g: false``) that leaves some of
        G's tensors at their initialisation is a warning when training and refused when testing, unless
        ``path.allow_partial_g``: a test would score a partly random network."""
        net = self.get_bare_model(net)
        paths = self.opt['path']
        resumed = paths.get('resume_state')
        if resumed and not Path(load_path).exists() and Path(load_path).parent == Path(paths.get('models') or ''):
            raise AesopError(
                f'training state {resumed} needs {load_path}, which is missing (the state was copied from another '
                'experiment, or the networks saved with it were removed): restore that file, or remove the state'
            )
        get_root_logger().info(f'Loading {type(net).__name__} model from {load_path}, with param key: [{param_key}].')
        option = next((f'path.{k}' for k, v in paths.items() if v == load_path), None)
        generator = getattr(self, 'net_g', None)
        testing_g = not self.opt['is_train'] and generator is not None and net is self.get_bare_model(generator)
        refuse = testing_g and not paths.get('allow_partial_g')
        why = 'testing would score a partly random network (set path.allow_partial_g: true to do that on purpose)'
        load_weights(
            net, load_path, param_key=param_key, strict=strict, fallback=True, option=option,
            refuse_partial=why if refuse else None,
        )  # fmt: skip

    @master_only
    def save_network(self, net, net_label: str, current_iter, param_key='params') -> None:
        """``models/<net_label>_<iter>.<path.save_format>`` with one state dict per ``param_key``, atomically:
        basicsr's ``.pth``, or one ``.safetensors`` holding them all (:func:`aesop.weights.safetensors_checkpoint`)."""
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        checkpoint = {
            key: {k.removeprefix('module.'): v.cpu() for k, v in self.get_bare_model(n).state_dict().items()}
            for n, key in zip(nets, keys, strict=True)
        }
        label = 'latest' if current_iter == -1 else current_iter
        save_checkpoint(checkpoint, Path(self.opt['path']['models']) / f'{net_label}_{label}.{self.save_format}')

    @property
    def save_format(self) -> str:
        """``path.save_format``: ``pth`` (basicsr's, the default) or ``safetensors``."""
        return self.opt['path'].get('save_format') or 'pth'

    @master_only
    def save_training_state(self, epoch: int, current_iter: int) -> None:
        """``training_states/<iter>.state`` (optimisers, schedulers, :meth:`extra_training_state`), atomically."""
        if current_iter == -1:
            return
        optimizers, schedulers = [o.state_dict() for o in self.optimizers], [s.state_dict() for s in self.schedulers]
        state = {'epoch': epoch, 'iter': current_iter, 'optimizers': optimizers, 'schedulers': schedulers}
        atomic_save(
            {**state, **self.extra_training_state()},
            Path(self.opt['path']['training_states']) / f'{current_iter}.state',
        )


#: a scheduler's state-dict entries that are its position, not its settings
_SCHEDULER_POSITION = ('last_epoch', '_step_count', '_last_lr', '_get_lr_called_within_step', '_is_initial', 'verbose')


def _settings(state: dict) -> dict:
    """A scheduler's settings from its state dict (``base_lrs``: the optimiser's lr, compared there)."""
    return {k: plain(v) for k, v in state.items() if k not in _SCHEDULER_POSITION and k != 'base_lrs'}


def _difference(key: str, before: dict | None, after: dict | None) -> str:
    """``'train.optim_g: lr 0.0001 → 0.0002'``, ``'train.scheduler: type MultiStepRestartLR → CosineAnnealingLR,
    T_max 100, eta_min 0'`` (another type: its options), or ``''`` when equal."""
    if before == after:
        return ''
    if before is None or after is None:
        return f'{key}: {_options_text(before)} → {_options_text(after)}'
    if before.get('type') != after.get('type'):
        fresh = ' (its moments start afresh)' if key != 'train.scheduler' else ''
        rest = [f'{name} {_value_text(value)}' for name, value in after.items() if name != 'type']
        return f'{key}: type {before.get("type")} → {after.get("type")}{fresh}, ' + ', '.join(rest)
    parts = [
        f'{name} {_value_text(before.get(name))} → {_value_text(after.get(name))}'
        for name in dict.fromkeys([*after, *before])
        if before.get(name) != after.get(name)
    ]
    return f'{key}: {", ".join(parts)}'


def _options_text(options: dict | None) -> str:
    if options is None:
        return 'none'
    rest = ', '.join(f'{k}: {_value_text(v)}' for k, v in options.items() if k != 'type')
    return f'{options.get("type")} {{{rest}}}'


def _value_text(value) -> str:
    return '~' if value is None else f'{value:g}' if isinstance(value, float) else str(value)
