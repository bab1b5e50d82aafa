"""What AESOP costs: one training step of ESRGAN, LDL and AESOP side by side, its FLOPs, plus inference.

    python scripts/benchmark.py [--device cpu|cuda] [--modes fp32,bf16,channels_last | --amp bf16 --channels-last] \\
        [--variants esrgan,ldl,aesop,aesop_srresnet] [--batch 2] [--patch 128] [--steps 3] [--threads N] \\
        [--parts steps,flops,inference,checkpointing,ae] [--ae-iters 40] [--json] [--tiny] \\
        [--tiled-sizes 96,192 | 339x510] [--tile 64] [--tile-pad 8]

Rows (``--variants``): ESRGAN, LDL and AESOP built from ``options/train_{esrgan,ldl,aesop}_rrdb.yml``
at the paper's size (RRDBNet nf 64 × 23 blocks; VGG19 perceptual loss with random weights,
``AESOP_RANDOM_BACKBONES=1``; ``VGGStyleDiscriminator`` of input size ``--patch``) with
``basicsr.models.build_model``, and AESOP twice: ψ with the RRDB decoder of the paper
(``aesop``) and the lighter ψ of Tab. 5(a) with an MSRResNet decoder (``aesop_srresnet``, the
arch of ``options/train_ae_srresnet.yml``). ψ has random weights, saved to a temporary
checkpoint for ``AesopLoss``; nothing is read from disk but the option files (``path.pretrain_*``
removed).

Columns (``--modes``): ``fp32``, ``bf16``, ``fp16`` (``train.amp``), ``channels_last``
(``train.channels_last``) and their ``bf16_channels_last`` / ``fp16_channels_last`` mixes. Every
(mode, row) pair is its own model; all are built and run one warm-up step, then the ``--steps``
timed steps run round-robin over all of them (a busy spell of the machine slows every cell
alike) and each cell reports its median wall time, process CPU seconds (user + system, all
threads) and minor page faults. Without ``--modes`` the one mode of ``--amp`` / ``--channels-last``.

ψ alone: after each timed step of an AESOP row, ψ(HR) without graph and ψ(SR) with its input
gradient run by themselves on that step's images (:func:`time_psi`). What AESOP adds to LDL
beyond ψ's own compute is ``(AESOP − LDL − ψ) / LDL`` (``*_overhead_over_ldl``; per round too):
near 0 when the step does nothing avoidable.

FLOPs (``flops`` part): one training step of each row and ψ's own work counted by
``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products, forward and
backward) on batch 1, fp32: noise-free, and ``AESOP − LDL − ψ`` must be 0 exactly. Every
counted op is linear in the batch, so the per-step figures are the batch-1 count × ``--batch``
and × 16 (the paper's batch per GPU).

AE-PSNR (``ae`` part, not run by default): no trained ψ exists here (the pretrained decoders
cannot be downloaded), so both ψ (RRDB and MSRResNet decoder, random initialisation) are
trained for ``--ae-iters`` iterations, interleaved, on the same batches of the demo data
(:func:`aesop.data.make_demo_dataset`; patch 64, batch 4, the AE option files' losses and Adam)
and PSNR(ψ(HR), HR) (Y channel, border 4) is taken on the demo's held-out photos (centre
192 px) before and after, beside bicubic down- and up-scaling. A short run from scratch, not the
paper's AE-PSNR of a 100K-iteration ψ.

Inference (``inference`` part): images/s of the generator alone (eval, ``no_grad``) at a fixed
LR size, and the peak memory of tiled inference (:func:`aesop.inference.upscale`) for two image
sizes. Gradient checkpointing (``checkpointing`` part): G's forward + backward with and without
``network_g.use_checkpoint`` (:func:`checkpoint_cost`), in fp32. Inference runs in the first mode.

The header names the CPU and whether it has BF16 units (``avx512_bf16`` / ``amx_bf16`` in
``/proc/cpuinfo``), the threads and the load average (also after every round and at the end).
On a shared CPU, ``--threads 1`` keeps other processes from stalling the OpenMP threads of a
step (time and CPU seconds then stay proportional to the work).

Peak memory of a model, taken in its warm-up step: on CUDA ``torch.cuda.max_memory_allocated``
over what was allocated before the model was built; on the CPU the process's peak resident set
size (``resource.getrusage().ru_maxrss``, its high-water mark reset after the build through
``/proc/self/clear_refs`` on Linux) over the RSS before the model was built: weights, optimiser
states, activations and what the allocator keeps cached. With ``--json`` the last line printed
is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import math
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from torch import nn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aesop  # noqa: E402,F401  (first: fixes basicsr before anything imports it)
from aesop.cli import ArgumentParser, cli_main  # noqa: E402
from aesop.commands import command_help  # noqa: E402
from aesop.errors import AesopError  # noqa: E402
from aesop.inference import upscale  # noqa: E402
from aesop.models.train_step import AMP_DTYPES  # noqa: E402
from aesop.utils import RANDOM_BACKBONES_ENV, markdown_table  # noqa: E402
from aesop.weights import freeze  # noqa: E402

DEVICES = ('cpu', 'cuda')
AMP_MODES = tuple(AMP_DTYPES)  # train.amp's values
PATCHES = (128, 256)  # the input sizes of basicsr's VGGStyleDiscriminator
PARTS = ('steps', 'flops', 'inference', 'checkpointing', 'ae')
DEFAULT_PARTS = ('steps', 'flops', 'inference', 'checkpointing')
SCALE = 4
PAPER_BATCH = 16  # images per GPU in the paper's AESOP training
OPTION_FILES = {
    'esrgan': REPO / 'options' / 'train_esrgan_rrdb.yml',
    'ldl': REPO / 'options' / 'train_ldl_rrdb.yml',
    'aesop': REPO / 'options' / 'train_aesop_rrdb.yml',
}
AE_OPTION_FILES = {'rrdb': REPO / 'options' / 'train_ae.yml', 'srresnet': REPO / 'options' / 'train_ae_srresnet.yml'}
TINY_G = {'num_feat': 8, 'num_block': 1, 'num_grow_ch': 8}
TINY_AE_ENCODER = {'num_feat': 16, 'num_block': 1}  # the encoder's width must be a multiple of scale² = 16
TINY_SRRESNET = {'num_feat': 8, 'num_block': 1}
TINY_D = {'num_feat': 8}
AE_PATCH, AE_BATCH, AE_VAL_CROP = 64, 4, 192  # the demo's AE recipe (options/demo/train_ae.yml); held-out crop
BF16_FLAGS = ('avx512_bf16', 'amx_bf16')
BF16_CPUS = 'Intel Cooper Lake, Sapphire Rapids and later Xeons; AMD Zen 4 and later'


@dataclass(frozen=True)
class Variant:
    """One row of the training-step tables.

    Attributes:
        key: JSON key prefix (``<key>_step_s``).
        label: row label.
        method: ``esrgan``, ``ldl`` or ``aesop`` (the option file).
        psi: ψ's decoder, ``rrdb`` or ``srresnet`` (AESOP rows only).
    """

    key: str
    label: str
    method: str
    psi: str | None = None

    @property
    def psi_key(self) -> str:
        """JSON key prefix of this row's ψ: ``psi`` (RRDB decoder) or ``psi_<decoder>``."""
        return 'psi' if self.psi == 'rrdb' else f'psi_{self.psi}'


VARIANTS = {
    v.key: v
    for v in (
        Variant('esrgan', 'ESRGAN', 'esrgan'),
        Variant('ldl', 'LDL', 'ldl'),
        Variant('aesop', 'AESOP, ψ RRDB', 'aesop', psi='rrdb'),
        Variant('aesop_srresnet', 'AESOP, ψ MSRResNet', 'aesop', psi='srresnet'),
    )
}


@dataclass(frozen=True)
class Mode:
    """One column: ``train.amp`` and ``train.channels_last``."""

    key: str
    amp: str = 'none'
    channels_last: bool = False


MODES = {
    m.key: m
    for m in (
        Mode('fp32'),
        Mode('bf16', amp='bf16'),
        Mode('fp16', amp='fp16'),
        Mode('channels_last', channels_last=True),
        Mode('bf16_channels_last', amp='bf16', channels_last=True),
        Mode('fp16_channels_last', amp='fp16', channels_last=True),
    )
}


def mode_of(amp: str, channels_last: bool) -> Mode:
    """The mode of ``--amp`` and ``--channels-last``."""
    name = 'fp32' if amp == 'none' else amp
    if channels_last:
        name = 'channels_last' if amp == 'none' else f'{amp}_channels_last'
    return MODES[name]


# ---------------------------------------------------------------------------------------------
# the machine


def cpu_info(cpuinfo: str | None = None) -> dict:
    """The CPU's model and the flags that decide whether bf16 autocast can pay off.

    Args:
        cpuinfo: the text of ``/proc/cpuinfo`` (read here when ``None``; empty where it is missing).

    Returns:
        ``model``, ``logical_cpus``, ``flags_known``, ``avx2``, ``avx512f``, ``avx512_bf16``, ``amx_bf16``
        and ``bf16_units`` (either of the last two), and torch's kernel level (``torch_capability``).
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path('/proc/cpuinfo').read_text()
        except OSError:
            cpuinfo = ''
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(':')
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = set(fields.get('flags', '').split())
    info = {
        'model': fields.get('model name') or platform.processor() or platform.machine(),
        'logical_cpus': os.cpu_count(),
        'flags_known': bool(flags),
        **{flag: flag in flags for flag in ('avx2', 'avx512f', *BF16_FLAGS)},
    }
    info['bf16_units'] = any(info[flag] for flag in BF16_FLAGS)
    with contextlib.suppress(AttributeError, RuntimeError):
        info['torch_capability'] = torch.backends.cpu.get_cpu_capability()
    return info


def cpu_line(info: dict) -> str:
    """One line on the CPU: its model, its BF16 flags and what they mean for ``--amp bf16``."""

    def yes(flag: str) -> str:
        return f'{flag} {"yes" if info.get(flag) else "no"}'

    flags = ', '.join(yes(f) for f in BF16_FLAGS)
    others = ', '.join(yes(f) for f in ('avx512f', 'avx2'))
    kernels = f'; torch kernels {info["torch_capability"]}' if info.get('torch_capability') else ''
    if info['bf16_units']:
        verdict = 'has BF16 units: bf16 autocast can be faster than fp32'
    elif not info.get('flags_known', True):
        verdict = 'CPU flags unknown here (no /proc/cpuinfo): measure bf16 before choosing it'
    else:
        verdict = 'no BF16 units: bf16 autocast is emulated here and slower than fp32'
    return (
        f'CPU {info["model"]}, {info["logical_cpus"]} logical CPUs: {flags} ({others}{kernels}) -> {verdict} '
        f'(bf16 pays off on CPUs with AVX-512_BF16 or AMX: {BF16_CPUS})'
    )


def load_average() -> tuple[float, float, float]:
    """The 1-, 5- and 15-minute load averages (NaN where the OS has none)."""
    return os.getloadavg() if hasattr(os, 'getloadavg') else (math.nan,) * 3


# ---------------------------------------------------------------------------------------------
# options and models


def psi_arch(kind: str, args: argparse.Namespace) -> dict:
    """ψ's arch options: ``rrdb`` from ``train_aesop_rrdb.yml`` (decoder = the run's ``network_g``),
    ``srresnet`` from ``train_ae_srresnet.yml`` (Tab. 5(a)); small with ``--tiny``."""
    if kind == 'rrdb':
        opt = yaml.safe_load(OPTION_FILES['aesop'].read_text())
        arch = opt['train']['aesop_opt']['autoencoder']
        g = opt['network_g']
        if args.tiny:
            g.update(TINY_G)
        arch['decoder'] = {**arch['decoder'], **g}
        if args.tiny:
            arch.update(TINY_AE_ENCODER)
        return arch
    arch = yaml.safe_load(AE_OPTION_FILES[kind].read_text())['network_g']
    if args.tiny:
        arch['decoder'].update(TINY_SRRESNET)
        arch.update(TINY_AE_ENCODER, num_grow_ch=8)
    return arch


def load_options(
    method: str,
    args: argparse.Namespace,
    *,
    device: torch.device,
    mode: Mode | None = None,
    psi: str = 'rrdb',
    ae_ckpt: Path | None = None,
) -> dict:
    """The option dict of ``method``'s paper option file, made buildable without files.

    ``is_train``, no DDP, ``num_gpu`` 0 (CPU) / 1 (CUDA), ``path.pretrain_*`` removed, no
    datasets; D's ``input_size`` = ``--patch``; ``train.amp`` and ``train.channels_last`` from
    ``mode`` (default: the first of ``args.modes``); with ``--tiny`` the small nets of
    :data:`TINY_G` and no VGG19 perceptual loss (a smoke test of the script, not a measurement).

    Args:
        method: ``esrgan``, ``ldl`` or ``aesop``.
        psi: ψ's decoder for ``aesop`` (:func:`psi_arch`).
        ae_ckpt: ψ's checkpoint for ``aesop_opt.pretrained`` (``None``: left as in the file).
    """
    mode = mode or args.modes[0]
    opt = run_options(OPTION_FILES[method], f'benchmark_{method}', device)
    opt['path'] = {k: v for k, v in opt['path'].items() if not k.startswith('pretrain_')}
    opt['network_d']['input_size'] = args.patch
    train = opt['train']
    if args.tiny:
        opt['network_g'].update(TINY_G)
        opt['network_d'].update(TINY_D)
        train.pop('perceptual_opt', None)  # VGG19's forward and backward would dominate a tiny step
    train['amp'] = mode.amp
    if mode.channels_last:
        train['channels_last'] = True
    if train.get('aesop_opt'):
        train['aesop_opt']['autoencoder'] = psi_arch(psi, args)
        if ae_ckpt is not None:
            train['aesop_opt'].update(pretrained=str(ae_ckpt), param_key='params_ema')
    return opt


def save_random_autoencoder(args: argparse.Namespace, folder: Path, kind: str = 'rrdb') -> Path:
    """ψ with random weights (:func:`psi_arch` ``kind``), saved as ``{'params_ema': …}`` in ``folder``."""
    from basicsr.archs import build_network

    torch.manual_seed(0)
    path = folder / f'psi_{kind}.pth'
    torch.save({'params_ema': build_network(psi_arch(kind, args)).state_dict()}, path)
    return path


def build_variant(
    variant: Variant, args: argparse.Namespace, *, device: torch.device, mode: Mode, ckpts: dict[str, Path]
):
    """``basicsr.models.build_model`` on the row's options in ``mode``, seeded; ``ckpts``: ψ's checkpoints."""
    from basicsr.models import build_model

    torch.manual_seed(0)
    psi = variant.psi or 'rrdb'
    return build_model(load_options(variant.method, args, device=device, mode=mode, psi=psi, ae_ckpt=ckpts.get(psi)))


def make_batch(args: argparse.Namespace, batch: int | None = None) -> dict[str, torch.Tensor]:
    """A seeded random batch of ``batch`` (default ``--batch``) images: ``lq`` (B, 3, P/4, P/4), ``gt`` (B, 3, P, P)."""
    gen = torch.Generator().manual_seed(1)
    lr, n = args.patch // SCALE, batch or args.batch
    return {
        'lq': torch.rand(n, 3, lr, lr, generator=gen),
        'gt': torch.rand(n, 3, args.patch, args.patch, generator=gen),
    }


# ---------------------------------------------------------------------------------------------
# timing and memory


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels (CUDA); nothing on the CPU."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Usage:
    """What a piece of work cost: wall s, process CPU s (user + system, all threads), system CPU s, minor page
    faults (fresh memory pages mapped in: allocations the allocator got from the kernel)."""

    wall: float
    cpu: float
    sys: float
    faults: int


def _rusage() -> tuple[float, float, float, int]:
    """``(perf_counter, user s, system s, minor faults)`` of this process now."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime, r.ru_stime, r.ru_minflt


class Clock:
    """Wall time, process CPU time and page faults since construction: ``Clock(device).usage()``."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        synchronize(device)
        self.start = _rusage()

    def usage(self) -> Usage:
        """The :class:`Usage` so far, after the device's queued work."""
        synchronize(self.device)
        wall, user, sys_s, faults = (b - a for a, b in zip(self.start, _rusage()))
        return Usage(wall, user + sys_s, sys_s, int(faults))

    def read(self) -> tuple[float, float]:
        """``(wall s, CPU s)`` so far."""
        used = self.usage()
        return used.wall, used.cpu


def _current_rss_mb() -> float | None:
    """Resident set size now (Linux ``/proc/self/statm``), ``None`` elsewhere."""
    try:
        resident = int(Path('/proc/self/statm').read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident * os.sysconf('SC_PAGE_SIZE') / 2**20


def _max_rss_mb() -> float:
    """``ru_maxrss`` in MiB (KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == 'darwin' else peak / 2**10


def _reset_rss_peak() -> bool:
    """Reset the process's RSS high-water mark (Linux ``clear_refs`` 5); ``False`` where it can't."""
    try:
        Path('/proc/self/clear_refs').write_text('5')
    except OSError:
        return False
    return True


def _release_memory(device: torch.device, *, collect: bool = True) -> None:
    """Free what earlier runs left: garbage (``collect``; slow), glibc's cached heap, CUDA's cached blocks."""
    if collect:
        gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    if device.type == 'cuda':
        torch.cuda.empty_cache()


class PeakMemory:
    """Peak memory over a baseline, in MiB: ``start()`` takes the baseline, ``reset_peak()`` starts
    the window the peak is taken in (so a transient of the build, e.g. VGG19's classifier built
    and dropped by basicsr, is not counted), ``stop()`` returns peak − baseline.

    CUDA: ``torch.cuda.max_memory_allocated`` and ``memory_allocated``. CPU: ``ru_maxrss``, its
    high-water mark reset through ``/proc/self/clear_refs`` (Linux; ``self.reset`` says whether
    that worked), and the RSS from ``/proc/self/statm``; it counts the allocator's caching too.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.base = 0.0
        self.reset = True

    def start(self) -> None:
        _release_memory(self.device)
        if self.device.type == 'cuda':
            self.base = torch.cuda.memory_allocated(self.device) / 2**20
        else:
            current = _current_rss_mb()
            self.base = current if current is not None else _max_rss_mb()
        self.reset_peak()

    def reset_peak(self) -> None:
        _release_memory(self.device, collect=False)
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.reset = _reset_rss_peak()

    def stop(self) -> float:
        synchronize(self.device)
        if self.device.type == 'cuda':
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            peak = _max_rss_mb()
        return max(peak - self.base, 0.0)


def memory_note(device: torch.device) -> str:
    """What the peak-memory column measures on ``device``."""
    if device.type == 'cuda':
        return (
            'peak MiB = torch.cuda.max_memory_allocated during the warm-up step (peak reset after the build) minus '
            'what was allocated before the build: weights, optimiser states, activations (not the caching reserve)'
        )
    how = 'high-water mark reset after the build via /proc/self/clear_refs'
    if not _reset_rss_peak():
        how = 'high-water mark NOT resettable here: process lifetime peak'
    return (
        f'peak MiB = peak RSS of the process during the warm-up step (resource ru_maxrss, {how}) minus the RSS '
        'before the build: weights, optimiser states, activations and what the allocator keeps cached'
    )


class ConvProbe:
    """Records the dtype and memory format of the first conv's output of ``net`` (amp / channels_last check)."""

    def __init__(self, net: nn.Module) -> None:
        self.dtype: torch.dtype | None = None
        self.channels_last = False
        conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
        self.handle = conv.register_forward_hook(self._hook) if conv is not None else None

    def _hook(self, module, inputs, output) -> None:
        self.dtype = output.dtype
        self.channels_last = output.dim() == 4 and output.is_contiguous(memory_format=torch.channels_last)

    def remove(self) -> None:
        if self.handle is not None:
            self.handle.remove()


@dataclass
class StepResult:
    """One (mode, row) cell: the warm-up step and the timed steps (wall s, CPU s, system CPU s, minor page
    faults), ψ alone after each timed step (AESOP rows: ``(ψ(HR) s, ψ(SR) + input gradient s)``, CPU s), peak
    memory (MiB), what G ran in."""

    warmup_s: float
    peak_mb: float
    times_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    sys_s: list[float] = field(default_factory=list)
    faults: list[int] = field(default_factory=list)
    psi_s: list[tuple[float, float]] = field(default_factory=list)
    psi_cpu_s: list[float] = field(default_factory=list)
    conv_dtype: str = ''
    channels_last: bool = False

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(self.cpu_s)

    @property
    def psi_median_s(self) -> tuple[float, float]:
        """Medians of ψ(HR) and of ψ(SR) + its input gradient."""
        return tuple(statistics.median(t) for t in zip(*self.psi_s))


def timed_step(model, batch: dict[str, torch.Tensor], current_iter: int, device: torch.device) -> Usage:
    """What one complete training step costs: ``feed_data`` + ``optimize_parameters`` (G, D, EMA)."""
    clock = Clock(device)
    model.feed_data(batch)
    model.optimize_parameters(current_iter)
    return clock.usage()


def psi_hr(model) -> None:
    """ψ(HR) without graph, as in the AESOP loss: on the model's last batch."""
    with torch.no_grad(), model.train_step.autocast():
        model.cri_fidelity['l_g_aesop'].autoencoder(model.gt)


def psi_sr(model) -> None:
    """ψ(SR) and the gradient of a loss on it with respect to SR (ψ is frozen): on the model's last output."""
    sr = model.output.detach().clone().requires_grad_(True)
    with model.train_step.autocast():
        out = model.cri_fidelity['l_g_aesop'].autoencoder(sr)
    out.float().abs().mean().backward()


def time_psi(model, device: torch.device) -> tuple[tuple[float, float], float]:
    """ψ's own work in an AESOP step, alone: ``((ψ(HR) s, ψ(SR) + input gradient s), CPU s of both)``.

    Uses the AESOP model's frozen ψ, its last batch's HR and its last SR output (detached). The
    sum is what AESOP must add to an LDL step when it computes the same loss and gradient.
    """
    clock = Clock(device)
    psi_hr(model)
    hr_s, hr_cpu = clock.read()
    clock = Clock(device)
    psi_sr(model)
    sr_s, sr_cpu = clock.read()
    return (hr_s, sr_s), hr_cpu + sr_cpu


def time_training_steps(
    variants: Sequence[Variant], args: argparse.Namespace, *, device: torch.device, ckpts: dict[str, Path]
) -> tuple[dict[tuple[str, str], StepResult], list[tuple[float, float, float]]]:
    """Warm-up and timed steps of every (mode, row) cell, and :func:`time_psi` after each AESOP step.

    Each cell's model is built and runs its warm-up step (iteration 1) in turn; its peak memory
    is taken there (over the memory in use before its build; the models built before stay
    alive). Then the ``args.steps`` timed steps run round-robin (step 2 of every cell, then step
    3, …), so that a busy spell of the machine slows all cells alike rather than one.

    Returns:
        The cells by ``(mode key, row key)``, and the load averages after each round.
    """
    batch = make_batch(args)
    cells = [(m, v) for m in args.modes for v in variants]
    models, probes, results = {}, {}, {}
    for m, v in cells:
        memory = PeakMemory(device)
        memory.start()
        model = models[m.key, v.key] = build_variant(v, args, device=device, mode=m, ckpts=ckpts)
        probes[m.key, v.key] = ConvProbe(model.net_g)
        memory.reset_peak()
        warmup = timed_step(model, batch, 1, device).wall
        results[m.key, v.key] = StepResult(warmup, memory.stop())
        print(f'  built {v.label} ({m.key}): warm-up step {warmup:.3f} s', file=sys.stderr, flush=True)
    loads = []
    for it in range(2, args.steps + 2):
        for m, v in cells:
            r = results[m.key, v.key]
            used = timed_step(models[m.key, v.key], batch, it, device)
            r.times_s.append(used.wall)
            r.cpu_s.append(used.cpu)
            r.sys_s.append(used.sys)
            r.faults.append(used.faults)
            if v.psi:
                psi_s, psi_cpu = time_psi(models[m.key, v.key], device)
                r.psi_s.append(psi_s)
                r.psi_cpu_s.append(psi_cpu)
        loads.append(load_average())
        print(f'  timed round {it - 1}/{args.steps} (load average {loads[-1][0]:.2f})', file=sys.stderr, flush=True)
    for key, probe in probes.items():
        probe.remove()
        results[key].conv_dtype = str(probe.dtype).removeprefix('torch.')
        results[key].channels_last = probe.channels_last
    models.clear()
    _release_memory(device)
    return results, loads


# ---------------------------------------------------------------------------------------------
# FLOPs


def count_flops(
    variants: Sequence[Variant], args: argparse.Namespace, *, device: torch.device, ckpts: dict[str, Path], batch: int
) -> dict[str, int]:
    """FLOPs of one training step of each row on ``batch`` images (fp32), and of ψ's own work (``<psi_key>``).

    ``torch.utils.flop_counter.FlopCounterMode`` over ``feed_data`` + ``optimize_parameters`` of a
    freshly built model (iteration 1: G and D steps), then over :func:`psi_hr` + :func:`psi_sr` on
    that step's images. It counts convolutions and matrix products (forward and backward), not
    element-wise work, so the figures do not depend on the machine, the dtype or the layout.
    """
    from torch.utils.flop_counter import FlopCounterMode

    fp32 = MODES['fp32']
    data = make_batch(args, batch)
    flops: dict[str, int] = {}
    for v in variants:
        model = build_variant(v, args, device=device, mode=fp32, ckpts=ckpts)
        with FlopCounterMode(display=False) as counter:
            model.feed_data(data)
            model.optimize_parameters(1)
        flops[v.key] = counter.get_total_flops()
        if v.psi:
            with FlopCounterMode(display=False) as counter:
                psi_hr(model)
                psi_sr(model)
            flops[v.psi_key] = counter.get_total_flops()
        del model
        _release_memory(device)
    return flops


def flops_report(flops: dict[str, int], variants: Sequence[Variant], args: argparse.Namespace) -> tuple[str, dict]:
    """The FLOP table (batch-1 counts × ``--batch`` and × 16) and its JSON fields."""
    rows, per_step = [], {}
    ldl = flops['ldl']
    for v in variants:
        keys = [(v.key, f'{v.label} step')]
        if v.psi:
            keys.append((v.psi_key, f'  ψ alone ({v.psi}): ψ(HR) + ψ(SR) + input gradient'))
        for key, label in keys:
            per_step[key] = flops[key] * args.batch
            rows.append(
                [
                    label,
                    f'{flops[key] / 1e9:.2f}',
                    f'{flops[key] * args.batch / 1e9:.1f}',
                    f'{flops[key] * PAPER_BATCH / 1e9:.1f}',
                    f'{flops[key] / ldl:.3f}',
                ]
            )
    header = ['GFLOP (FlopCounterMode)', 'per image', f'per step, batch {args.batch}', f'batch {PAPER_BATCH}', '× LDL']
    text = markdown_table(header, rows)
    fields = {
        'counted_at_batch': 1,
        'per_image': flops,
        'per_step': per_step,
        'per_step_paper_batch': {k: f * PAPER_BATCH for k, f in flops.items()},
        'paper_batch': PAPER_BATCH,
    }
    checks = []
    for v in variants:
        if v.psi:
            rest = flops[v.key] - ldl - flops[v.psi_key]
            fields[f'{v.key}_minus_ldl_minus_psi'] = rest
            checks.append(f'{v.label} − LDL − ψ = {rest} FLOP')
    if checks:
        text += '\n\n' + '; '.join(checks) + ' (0: AESOP = LDL + ψ exactly, nothing avoidable added)'
    return text, fields


# ---------------------------------------------------------------------------------------------
# AE-PSNR: a short AE pretraining of each ψ on the demo data


def run_options(path: Path, name: str, device: torch.device) -> dict:
    """An option file's options as one training process without data on ``device``."""
    opt = yaml.safe_load(path.read_text())
    opt.pop('datasets', None)
    dist = {'is_train': True, 'dist': False, 'rank': 0, 'world_size': 1, 'auto_resume': False}
    opt.update(name=name, num_gpu=1 if device.type == 'cuda' else 0, **dist)
    return opt


def ae_options(kind: str, args: argparse.Namespace, device: torch.device) -> dict:
    """``AesopAEModel`` options of ψ ``kind`` (its AE option file): no data, random decoder, no EMA."""
    opt = run_options(AE_OPTION_FILES[kind], f'benchmark_ae_{kind}', device)
    opt.pop('val', None)
    opt['network_g'] = psi_arch(kind, args)
    opt['path'] = {k: v for k, v in opt['path'].items() if not k.startswith('pretrain_')}
    opt['train'].update(ema_decay=0, freeze_decoder=0)  # the trained ψ itself is scored
    return opt


def _image_tensor(path: Path) -> torch.Tensor:
    """A PNG as a (1, 3, H, W) RGB float tensor in [0, 1]."""
    import cv2

    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255


def _psnr(a: torch.Tensor, b: torch.Tensor, border: int) -> float:
    """basicsr's PSNR on the Y channel of two (1, 3, H, W) [0, 1] tensors as 8-bit images."""
    from basicsr.metrics.psnr_ssim import calculate_psnr
    from basicsr.utils import tensor2img

    return float(calculate_psnr(tensor2img(a), tensor2img(b), crop_border=border, test_y_channel=True))


def ae_psnr(kinds: Sequence[str], args: argparse.Namespace, *, device: torch.device, folder: Path) -> dict:
    """Train ψ of each decoder in ``kinds`` from scratch for ``args.ae_iters`` iterations, interleaved on the
    same demo batches; AE-PSNR on the demo's held-out photos before and after, and bicubic's.

    Returns:
        ``{kind: {psnr_init, psnr, psnr_lr, step_s, step_cpu_s}, 'bicubic_psnr', 'iters', 'batch', 'patch',
        'val_images', 'val_crop'}``.
    """
    from basicsr.models import build_model
    from basicsr.utils.matlab_functions import imresize

    from aesop.data import AesopPairedImageDataset, make_demo_dataset

    small = {'train': ('astronaut',), 'val': ('coffee',), 'val_crop': 64} if args.tiny else {'val_crop': AE_VAL_CROP}
    root = make_demo_dataset(folder / 'demo', scale=SCALE, **small)
    train = AesopPairedImageDataset(
        {
            'phase': 'train',
            'scale': SCALE,
            'dataroot_gt': str(root / 'train' / 'HR'),
            'dataroot_lq': str(root / 'train' / 'LR_bicubic' / f'X{SCALE}'),
            'filename_tmpl': '{}',
            'io_backend': {'type': 'disk'},
            'gt_size': AE_PATCH,
            'use_hflip': True,
            'use_rot': True,
        }
    )
    random.seed(0)  # basicsr's crops and flips
    loader = torch.utils.data.DataLoader(
        train, batch_size=AE_BATCH, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0)
    )

    def batches() -> Iterator[dict]:
        while True:
            yield from loader

    val = [
        (_image_tensor(p), _image_tensor(root / 'val' / 'LR_bicubic' / f'X{SCALE}' / p.name))
        for p in sorted((root / 'val' / 'HR').glob('*.png'))
    ]
    bicubic = [
        _psnr(torch.from_numpy(imresize(lr[0].permute(1, 2, 0).numpy(), SCALE)).permute(2, 0, 1)[None], hr, 4)
        for hr, lr in val
    ]

    def score(model) -> tuple[float, float]:
        psnr, psnr_lr = [], []
        for hr, lr in val:
            model.feed_data({'gt': hr, 'lq': lr})
            model.test()
            psnr.append(_psnr(model.output.float().cpu(), hr, 4))
            psnr_lr.append(_psnr(model.bottleneck.float().cpu(), lr, 4 // SCALE))
        return statistics.mean(psnr), statistics.mean(psnr_lr)

    models, results = {}, {}
    for kind in kinds:
        torch.manual_seed(0)
        models[kind] = build_model(ae_options(kind, args, device))
        results[kind] = {'psnr_init': score(models[kind])[0], 'step_s': [], 'step_cpu_s': []}
    data = batches()
    for it in range(1, args.ae_iters + 1):
        batch = next(data)
        for kind, model in models.items():
            clock = Clock(device)
            model.feed_data(batch)
            model.optimize_parameters(it)
            wall, cpu = clock.read()
            results[kind]['step_s'].append(wall)
            results[kind]['step_cpu_s'].append(cpu)
        if it % 10 == 0 or it == args.ae_iters:
            print(f'  AE iteration {it}/{args.ae_iters}', file=sys.stderr, flush=True)
    for kind, model in models.items():
        r = results[kind]
        r['psnr'], r['psnr_lr'] = score(model)
        r['step_s'], r['step_cpu_s'] = statistics.median(r['step_s']), statistics.median(r['step_cpu_s'])
        r['params_m'] = sum(p.numel() for p in model.net_g.parameters()) / 1e6
    models.clear()
    _release_memory(device)
    return {
        **results,
        'bicubic_psnr': statistics.mean(bicubic),
        'iters': args.ae_iters,
        'batch': AE_BATCH,
        'patch': AE_PATCH,
        'val_images': len(val),
        'val_crop': small['val_crop'],
    }


def ae_report(ae: dict, kinds: Sequence[str]) -> str:
    """The AE-PSNR table and its caveat."""
    rows = [
        [
            f'ψ {kind} ({ae[kind]["params_m"]:.2f} M parameters)',
            f'{ae[kind]["psnr_init"]:.2f}',
            f'{ae[kind]["psnr"]:.2f}',
            f'{ae[kind]["psnr_lr"]:.2f}',
            f'{ae[kind]["step_s"]:.3f}',
            f'{ae[kind]["step_cpu_s"]:.3f}',
        ]
        for kind in kinds
    ]
    rows.append(['bicubic down + up (reference)', '', f'{ae["bicubic_psnr"]:.2f}', '', '', ''])
    header = ['AE pretraining from scratch', 'AE-PSNR at it 0', f'AE-PSNR at it {ae["iters"]}', 'PSNR E(HR) vs LR']
    text = markdown_table([*header, 'AE step s', 'AE step CPU s'], rows)
    if all(ae[kind]['psnr'] < ae['bicubic_psnr'] for kind in kinds):
        text += (
            f'\n\nEvery ψ is still below bicubic after {ae["iters"]} iterations: too early to rank the decoders '
            '(more --ae-iters, e.g. on a GPU).'
        )
    return text + (
        f'\n\nAE-PSNR = PSNR(ψ(HR), HR), Y channel, border 4, mean over the {ae["val_images"]} held-out demo photos '
        f'(centre {ae["val_crop"]} px); both ψ trained on the same {ae["iters"]} batches of {ae["batch"]} demo '
        f'patches of {ae["patch"]} px from random weights. No trained ψ exists here: this compares a few '
        'iterations from scratch, not the paper AE-PSNR of a 100K-iteration ψ from PSNR-oriented weights.'
    )


# ---------------------------------------------------------------------------------------------
# inference


def build_generator(args: argparse.Namespace, device: torch.device) -> nn.Module:
    """The benchmark's G (``network_g`` of the option files), random weights, eval, frozen, on ``device``."""
    from basicsr.archs import build_network

    torch.manual_seed(0)
    arch = load_options('esrgan', args, device=device)['network_g']
    net = freeze(build_network(arch)).to(device)
    if args.modes[0].channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def inference_throughput(net: nn.Module, args: argparse.Namespace, device: torch.device) -> dict:
    """Images/s of ``net`` alone (eval, ``no_grad``, autocast per the first mode), batch 1, LR ``args.infer_size``²."""
    mode = args.modes[0]
    x = torch.rand(1, 3, args.infer_size, args.infer_size, generator=torch.Generator().manual_seed(2)).to(device)
    if mode.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    amp = mode.amp != 'none'
    times, cpu = [], []
    with torch.no_grad(), torch.autocast(device.type, dtype=AMP_DTYPES.get(mode.amp), enabled=amp):
        for _ in range(args.steps + 1):
            clock = Clock(device)
            net(x)
            wall, used = clock.read()
            times.append(wall)
            cpu.append(used)
    median = statistics.median(times[1:])
    return {
        'lr_size': args.infer_size,
        'image_s': median,
        'image_cpu_s': statistics.median(cpu[1:]),
        'images_per_s': 1 / median,
    }


def tiled_inference(net: nn.Module, args: argparse.Namespace, device: torch.device) -> list[dict]:
    """Time and peak memory of :func:`aesop.inference.upscale` for each of ``args.tiled_sizes``.

    Tiles of ``args.tile`` px with ``args.tile_pad`` px of context; the larger size is also run
    whole (``tile`` 0) for comparison (``peak_mem_mb`` ``None`` if that runs out of GPU memory).
    The LR image lives on the CPU (as in ``scripts/infer.py``): on CUDA the peak is the network's,
    on the CPU it also counts the assembled output.
    """
    largest = max(args.tiled_sizes, key=lambda hw: hw[0] * hw[1])
    runs = [(hw, args.tile) for hw in args.tiled_sizes] + [(largest, 0)]
    rows = []
    for (h, w), tile in runs:
        img = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(3))
        memory = PeakMemory(device)
        memory.start()
        start = time.perf_counter()
        try:
            out = upscale(net, img, scale=SCALE, tile=tile, tile_pad=args.tile_pad, half=args.modes[0].amp != 'none')
        except torch.cuda.OutOfMemoryError:
            out, peak_mb = None, None
        else:
            synchronize(device)
            peak_mb = memory.stop()
            if out.shape[-2:] != (h * SCALE, w * SCALE):
                raise AesopError(f'upscale returned {tuple(out.shape)} for a {h}x{w} input')
        seconds = time.perf_counter() - start
        del out
        rows.append(
            {'lr_hw': [h, w], 'tile': tile, 'tile_pad': args.tile_pad, 'seconds': seconds, 'peak_mem_mb': peak_mb}
        )
    return rows


def checkpoint_cost(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """G's forward + backward without and with ``network_g.use_checkpoint`` (checkpointed RRDB blocks).

    Same weights and batch (``--batch`` LR patches of ``--patch / 4``). Reports the median time, the
    bytes autograd keeps for the backward pass (``saved_mb``: every tensor saved by a forward op,
    counted once per storage; a checkpointed block keeps only its input) and the peak memory
    (:class:`PeakMemory`: exact on CUDA, the process's RSS high-water mark on the CPU).
    """
    from basicsr.archs import build_network

    arch = {**load_options('esrgan', args, device=device)['network_g'], 'type': 'AesopRRDBNet'}
    x = torch.rand(args.batch, 3, args.patch // SCALE, args.patch // SCALE, generator=torch.Generator().manual_seed(4))
    x = x.to(device)
    torch.manual_seed(0)
    state = build_network({**arch, 'use_checkpoint': False}).state_dict()
    rows = []
    for checkpointed in (False, True):
        net = build_network({**arch, 'use_checkpoint': checkpointed}).to(device)
        net.load_state_dict(state)
        saved: dict[int, int] = {}

        def pack(t: torch.Tensor, saved=saved) -> torch.Tensor:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        times, peak_mb, saved_mb = [], None, None
        for step in range(args.steps + 1):
            saved.clear()
            memory = PeakMemory(device)
            memory.start()
            clock = Clock(device)
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                out = net(x)
            out.square().mean().backward()
            times.append(clock.read()[0])
            if step == 0:
                peak_mb, saved_mb = memory.stop(), sum(saved.values()) / 2**20
            net.zero_grad(set_to_none=True)
            del out
        rows.append(
            {
                'use_checkpoint': checkpointed,
                'seconds': statistics.median(times[1:]),
                'saved_mb': saved_mb,
                'peak_mem_mb': peak_mb,
            }
        )
        del net
        _release_memory(device)
    return rows


# ---------------------------------------------------------------------------------------------
# command line and report


def _sizes(text: str) -> list[tuple[int, int]]:
    """An argparse type: comma-separated LR sizes, ``N`` (square) or ``HxW``."""
    sizes = []
    for item in (t.strip() for t in text.split(',') if t.strip()):
        h, x, w = item.partition('x')
        w = w if x else h
        if not (h.isdigit() and w.isdigit()) or int(h) < 1 or int(w) < 1:
            raise argparse.ArgumentTypeError(f'--tiled-sizes: comma-separated N or HxW (LR px), got {item!r}')
        sizes.append((int(h), int(w)))
    if not sizes:
        raise argparse.ArgumentTypeError('--tiled-sizes: at least one size')
    return sizes


def _hw(hw: Sequence[int], scale: int = 1) -> str:
    return f'{hw[0] * scale}x{hw[1] * scale}'


def _names(choices: dict | Sequence[str], what: str):
    """An argparse type: a comma-separated list of names from ``choices``, no repeats."""

    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(',') if n.strip()]
        unknown = [n for n in names if n not in choices]
        if unknown or not names or len(set(names)) != len(names):
            raise argparse.ArgumentTypeError(f'{what}: comma-separated names from {", ".join(choices)}, each once')
        return names

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The command line; usage errors raise :class:`AesopError` (one line, exit status 2)."""

    parser = ArgumentParser(
        **command_help(
            'What AESOP costs: one training step of ESRGAN, LDL and AESOP side by side (built from their option '
            "files at the paper's size, random VGG19 and ψ, nothing read from disk but the option files), their "
            "FLOPs, ψ's share, inference and gradient checkpointing. The module's docstring says how each part "
            'is measured.',
            (
                '{prog} --threads 1 --variants ldl,aesop,aesop_srresnet --parts steps --steps 10',
                '{prog} --parts flops',
                '{prog} --device cuda --modes fp32,bf16,channels_last',
                '{prog} --tiny --json',
            ),
        )
    )
    parser.add_argument('--device', choices=DEVICES, default=DEVICES[0], help='where to run (default %(default)s)')
    parser.add_argument('--amp', choices=AMP_MODES, default='none', help='train.amp of the one mode (no --modes)')
    parser.add_argument('--channels-last', action='store_true', help='train.channels_last of the one mode')
    parser.add_argument(
        '--modes',
        type=_names(MODES, '--modes'),
        help=f'columns timed side by side, interleaved, e.g. fp32,bf16,channels_last (from: {", ".join(MODES)})',
    )
    parser.add_argument(
        '--variants',
        type=_names(VARIANTS, '--variants'),
        default=list(VARIANTS),
        help=f'rows, with ldl (default: {",".join(VARIANTS)})',
    )
    parser.add_argument('--batch', type=int, help='images per step (default 2; --tiny 1)')
    parser.add_argument('--patch', type=int, default=128, choices=PATCHES, help='HR patch = D input size (128)')
    parser.add_argument('--steps', type=int, help='timed steps after 1 warm-up (default 3; --tiny 1)')
    parser.add_argument('--threads', type=int, help="torch.set_num_threads (default: torch's own; --tiny 1)")
    parser.add_argument(
        '--parts',
        type=_names(PARTS, '--parts'),
        default=list(DEFAULT_PARTS),
        help=f'what to run (default {",".join(DEFAULT_PARTS)}; ae: AE-PSNR after a short AE pretraining)',
    )
    parser.add_argument('--ae-iters', type=int, default=40, help='AE pretraining iterations of the ae part (40)')
    parser.add_argument(
        '--tiled-sizes',
        type=_sizes,
        help='LR sizes of the inference part, N or HxW, tiled; the largest also whole (default 96,192 on the CPU, '
        '512,1024 on CUDA; DIV2K: 339x510)',
    )
    parser.add_argument('--tile', type=int, help='tile of the inference part, LR px (default 64; CUDA 256)')
    parser.add_argument('--tile-pad', type=int, help='context around each tile, LR px (default 8; CUDA 16)')
    parser.add_argument('--json', action='store_true', help='print one JSON object as the last line')
    parser.add_argument(
        '--tiny',
        action='store_true',
        help='tiny nets (nf 8, 1 block, patch 128, no VGG19, batch 1, 1 step, 1 thread): a smoke test',
    )
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and complete the arguments (sizes of the inference part depend on ``--tiny`` and the device)."""
    args = build_parser().parse_args(argv)
    if args.modes and (args.amp != 'none' or args.channels_last):
        raise AesopError('give either --modes or --amp/--channels-last')
    args.modes = [MODES[m] for m in args.modes] if args.modes else [mode_of(args.amp, args.channels_last)]
    if 'ldl' not in args.variants:
        raise AesopError('--variants must include ldl: every ratio is to the LDL step')
    args.variants = [VARIANTS[k] for k in args.variants]
    if args.tiny:
        args.patch = 128
    if args.steps is None:
        args.steps = 1 if args.tiny else 3
    if args.batch is None:
        args.batch = 1 if args.tiny else 2
    if args.threads is None and args.tiny:
        args.threads = 1  # tiny ops: threads only add OpenMP barriers (and stalls on a busy CPU)
    if args.steps < 1 or args.batch < 1 or args.ae_iters < 1 or (args.threads is not None and args.threads < 1):
        raise AesopError('--steps, --batch, --ae-iters and --threads must be >= 1')
    if args.tiny:
        defaults = 16, (24, 48), 16, 4
    elif args.device == 'cuda':
        defaults = 64, (512, 1024), 256, 16
    else:
        defaults = 64, (96, 192), 64, 8
    args.infer_size = defaults[0]
    args.tiled_sizes = args.tiled_sizes or [(n, n) for n in defaults[1]]
    args.tile = defaults[2] if args.tile is None else args.tile
    args.tile_pad = defaults[3] if args.tile_pad is None else args.tile_pad
    if args.tile < 1 or args.tile_pad < 0:
        raise AesopError('--tile must be >= 1 and --tile-pad >= 0')
    return args


def mode_fields(results: dict[str, StepResult], variants: Sequence[Variant]) -> dict:
    """The JSON fields of one mode's cells (``results`` by row key)."""
    ldl, ldl_cpu = results['ldl'].median_s, results['ldl'].median_cpu_s
    fields: dict = {}
    for v in variants:
        r = results[v.key]
        fields[f'{v.key}_step_s'] = r.median_s
        fields[f'{v.key}_cpu_s'] = r.median_cpu_s
        if v.key != 'ldl':
            fields[f'{v.key}_over_ldl'] = r.median_s / ldl
    fields['peak_mem_mb'] = {v.key: results[v.key].peak_mb for v in variants}
    fields['sys_s'] = {v.key: statistics.median(results[v.key].sys_s) for v in variants}
    fields['minor_faults'] = {v.key: statistics.median(results[v.key].faults) for v in variants}
    fields['rounds'] = {
        v.key: {'wall_s': results[v.key].times_s, 'cpu_s': results[v.key].cpu_s, 'psi_s': results[v.key].psi_s}
        for v in variants
    }
    fields['conv_dtype'] = results['ldl'].conv_dtype  # G's first convolution, seen by a forward hook
    fields['conv_channels_last'] = results['ldl'].channels_last
    for v in variants:
        if not v.psi:
            continue
        r, p = results[v.key], v.psi_key
        hr, sr = r.psi_median_s
        psi_cpu = statistics.median(r.psi_cpu_s)
        fields.update(
            {
                f'{p}_hr_s': hr,
                f'{p}_sr_s': sr,
                f'{p}_s': hr + sr,
                f'{p}_cpu_s': psi_cpu,
                f'{p}_over_ldl': (hr + sr) / ldl,
                f'{p}_floor_over_ldl': 1 + (hr + sr) / ldl,
                f'{v.key}_overhead_over_ldl': (r.median_s - ldl - hr - sr) / ldl,
                f'{v.key}_overhead_over_ldl_cpu': (r.median_cpu_s - ldl_cpu - psi_cpu) / ldl_cpu,
                f'{v.key}_overhead_over_ldl_rounds': [
                    (t - ldl_t - sum(psi)) / ldl_t
                    for t, ldl_t, psi in zip(r.times_s, results['ldl'].times_s, r.psi_s, strict=True)
                ],
            }
        )
        fields[f'{v.key}_overhead_over_ldl_median_of_rounds'] = statistics.median(
            fields[f'{v.key}_overhead_over_ldl_rounds']
        )
    return fields


def report(
    results: dict[tuple[str, str], StepResult], variants: Sequence[Variant], modes: Sequence[Mode]
) -> tuple[str, dict]:
    """The training-step tables and their JSON fields: the first mode's at the top level (as before ``--modes``),
    every mode's under ``modes``."""
    per_mode = {m.key: mode_fields({v.key: results[m.key, v.key] for v in variants}, variants) for m in modes}
    rows = []
    for m in modes:
        f = per_mode[m.key]
        ldl = f['ldl_step_s']
        for v in variants:
            r = results[m.key, v.key]
            psi = f'{f[f"{v.psi_key}_s"]:.3f}' if v.psi else ''
            rest = f'{f[f"{v.key}_overhead_over_ldl"]:+.3f}' if v.psi else ''
            rest_cpu = f'{f[f"{v.key}_overhead_over_ldl_cpu"]:+.3f}' if v.psi else ''
            rows.append(
                [
                    m.key,
                    v.label,
                    f'{r.median_s:.3f}',
                    f'{min(r.times_s):.3f}',
                    f'{r.median_cpu_s:.3f}',
                    f'{r.warmup_s:.3f}',
                    f'{r.median_s / ldl:.3f}',
                    psi,
                    rest,
                    rest_cpu,
                    f'{r.peak_mb:.0f}',
                ]
            )
    header = ['mode', 'training step', 'median s', 'min s', 'CPU s', 'warm-up s', '× LDL', 'ψ alone s']
    text = markdown_table([*header, '(step − LDL − ψ) / LDL', 'same, CPU s', 'peak MiB'], rows)
    text += (
        '\n\nψ alone = ψ(HR) without graph + ψ(SR) with its input gradient, timed by themselves after each AESOP '
        "step; (step − LDL − ψ) / LDL = what an AESOP step adds to LDL beyond ψ's own compute (goal <= 0.03), "
        'from the medians of wall time and of CPU seconds'
    )
    for m in modes:
        f = per_mode[m.key]
        for v in variants:
            if v.psi:
                spread = ', '.join(f'{x:+.3f}' for x in f[f'{v.key}_overhead_over_ldl_rounds'])
                text += (
                    f'\n{m.key}, {v.label}: ψ(HR) {f[f"{v.psi_key}_hr_s"]:.3f} s + ψ(SR) with input gradient '
                    f'{f[f"{v.psi_key}_sr_s"]:.3f} s = {f[f"{v.psi_key}_over_ldl"]:.3f} × LDL; '
                    f'(step − LDL − ψ) / LDL per round: {spread} '
                    f'(median {f[f"{v.key}_overhead_over_ldl_median_of_rounds"]:+.3f})'
                )
        faults = ', '.join(
            f'{v.label} {f["minor_faults"][v.key]:.0f} ({f["sys_s"][v.key]:.3f} s system CPU)' for v in variants
        )
        text += f'\n{m.key}, minor page faults per step (median): {faults}'
    fields = dict(per_mode[modes[0].key])
    fields['modes'] = per_mode
    if len(modes) > 1:
        base = modes[0].key
        header = ['training step', *(f'{m.key} s' for m in modes), *(f'{m.key} × {base}' for m in modes[1:])]
        rows = [
            [
                v.label,
                *(f'{results[m.key, v.key].median_s:.3f}' for m in modes),
                *(f'{results[m.key, v.key].median_s / results[base, v.key].median_s:.3f}' for m in modes[1:]),
            ]
            for v in variants
        ]
        text += '\n\n' + markdown_table(header, rows)
        fields['mode_over_first'] = {
            m.key: {v.key: results[m.key, v.key].median_s / results[base, v.key].median_s for v in variants}
            for m in modes[1:]
        }
    return text, fields


def _run(argv: Sequence[str] | None) -> int:
    wall, cpu_start = time.perf_counter(), time.process_time()
    args = parse_args(argv)
    os.environ[RANDOM_BACKBONES_ENV] = '1'  # VGG19 of the perceptual loss: random, nothing downloaded
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise AesopError('--device cuda: no CUDA device is available here')
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    variants, modes = args.variants, args.modes
    g = load_options('esrgan', args, device=device)['network_g']
    threads = f'{torch.get_num_threads()} thread(s)'
    if device.type == 'cuda':
        threads = f'{torch.cuda.get_device_name(device)}, {threads}'
    cpu = cpu_info()
    load_start = load_average()
    print(
        f'AESOP benchmark: {args.device} ({threads}), modes {", ".join(m.key for m in modes)}, batch {args.batch}, '
        f'HR patch {args.patch} (LR {args.patch // SCALE}), RRDBNet nf {g["num_feat"]} x {g["num_block"]} blocks, '
        f'median of {args.steps} step(s) after 1 warm-up; torch {torch.__version__}; '
        f'load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} (1/5/15 min)',
        flush=True,
    )
    print(cpu_line(cpu), flush=True)
    fields: dict = {}
    notes: list[str] = []
    loads: list[tuple[float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix='aesop_benchmark_') as tmp:
        kinds = [v.psi for v in variants if v.psi]
        models_needed = 'steps' in args.parts or 'flops' in args.parts
        ckpts = {kind: save_random_autoencoder(args, Path(tmp), kind) for kind in kinds if models_needed}
        if 'steps' in args.parts:
            results, loads = time_training_steps(variants, args, device=device, ckpts=ckpts)
            text, step_fields = report(results, variants, modes)
            fields.update(step_fields)
            print()
            print(text)
            print(memory_note(device))
            for m in modes:
                ran = results[m.key, 'ldl']
                layout = 'channels_last' if ran.channels_last else 'NCHW'
                print(f"{m.key}: G's first convolution ran in {ran.conv_dtype}, {layout} (forward hook, LDL)")
                if m.amp != 'none' and ran.conv_dtype == 'float32':
                    notes.append(
                        f'{m.key}: train.amp {m.amp} requested but G computed in float32: the model ignored it'
                    )
                if m.channels_last and not ran.channels_last:
                    notes.append(f'{m.key}: train.channels_last requested but G ran NCHW: the model ignored it')
        if 'flops' in args.parts:
            flops = count_flops(variants, args, device=device, ckpts=ckpts, batch=1)
            text, fields['flops'] = flops_report(flops, variants, args)
            print()
            print(text)
        if 'ae' in args.parts:
            fields['ae_psnr'] = ae_psnr(kinds or ['rrdb'], args, device=device, folder=Path(tmp))
            print()
            print(ae_report(fields['ae_psnr'], kinds or ['rrdb']))
        else:
            fields['ae_psnr'] = None
            fields['ae_psnr_note'] = (
                "not measured: no trained ψ exists here and a random ψ's AE-PSNR means nothing; "
                '--parts ...,ae trains both ψ briefly on the demo data'
            )
    for note in notes:
        print(f'note: {note}')

    if 'inference' in args.parts:
        net = build_generator(args, device)
        infer = inference_throughput(net, args, device)
        tiled = tiled_inference(net, args, device)
        del net
        rows = [
            [
                f'G alone, LR {infer["lr_size"]}² -> {infer["lr_size"] * SCALE}², batch 1',
                f'{infer["image_s"]:.3f}',
                f'{infer["image_cpu_s"]:.3f}',
                f'{infer["images_per_s"]:.3f} img/s',
                '',
            ]
        ]
        for t in tiled:
            how = f'tile {t["tile"]} pad {t["tile_pad"]}' if t['tile'] else 'whole image'
            peak = 'out of memory' if t['peak_mem_mb'] is None else f'{t["peak_mem_mb"]:.0f}'
            rows.append(
                [
                    f'upscale LR {_hw(t["lr_hw"])} -> {_hw(t["lr_hw"], SCALE)}, {how}',
                    f'{t["seconds"]:.3f}',
                    '',
                    '',
                    peak,
                ]
            )
        print()
        print(markdown_table([f'inference ({modes[0].key})', 's / image', 'CPU s', 'throughput', 'peak MiB'], rows))
        fields.update(
            infer_lr_size=infer['lr_size'], infer_images_per_s=infer['images_per_s'], infer_cpu_s=infer['image_cpu_s']
        )
        fields['tiled'] = tiled
    if 'checkpointing' in args.parts:
        checkpointing = checkpoint_cost(args, device)
        print()
        print(
            markdown_table(
                ['G forward + backward', 's', 'kept for backward MiB', 'peak MiB'],
                [
                    [
                        'use_checkpoint: true' if c['use_checkpoint'] else 'use_checkpoint: false',
                        f'{c["seconds"]:.3f}',
                        f'{c["saved_mb"]:.0f}',
                        '' if c['peak_mem_mb'] is None else f'{c["peak_mem_mb"]:.0f}',
                    ]
                    for c in checkpointing
                ],
            )
        )
        fields['checkpointing'] = checkpointing
    wall, cpu_s = time.perf_counter() - wall, time.process_time() - cpu_start
    load_end = load_average()
    rounds = f'; after each timed round {", ".join(f"{x[0]:.2f}" for x in loads)}' if loads else ''
    print(
        f'wall time {wall:.1f} s, CPU time {cpu_s:.1f} s ({torch.get_num_threads()} thread(s)); load average '
        f'{load_start[0]:.2f} at the start{rounds}, {load_end[0]:.2f} at the end'
    )
    if args.json:
        fields.update(
            device=args.device,
            amp=modes[0].amp,
            channels_last=modes[0].channels_last,
            mode_keys=[m.key for m in modes],
            variants=[v.key for v in variants],
            parts=list(args.parts),
            batch=args.batch,
            patch=args.patch,
            steps=args.steps,
            threads=torch.get_num_threads(),
            cpu=cpu,
            load_average_start=load_start[0],
            load_average={'start': load_start, 'rounds': loads, 'end': load_end},
            tiny=args.tiny,
            torch=torch.__version__,
            peak_mem_what=memory_note(device),
            notes=notes,
            wall_s=wall,
            cpu_s=cpu_s,
        )
        print(json.dumps(fields))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status (2 with one ``aesop: error:`` line on bad input).

    The process's torch thread count is restored afterwards (``--threads`` / ``--tiny`` change it).
    """
    gc.freeze()  # what exists now (torch, basicsr, …) is never garbage: keeps each gc.collect() short
    threads = torch.get_num_threads()
    try:
        return cli_main(_run, argv)
    finally:
        torch.set_num_threads(threads)
        gc.unfreeze()


if __name__ == '__main__':
    sys.exit(main())
