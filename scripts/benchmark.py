"""What AESOP costs: one training step of ESRGAN, LDL and AESOP side by side, plus inference.

    python scripts/benchmark.py [--device cpu|cuda] [--amp none|bf16|fp16] [--batch 2] [--patch 128] \\
        [--steps 3] [--json] [--naive] [--tiny] [--channels-last]

Builds the paper's full-size configuration from ``options/train_{esrgan,ldl,aesop}_rrdb.yml``
(RRDBNet nf 64 × 23 blocks; ψ = ``AesopAutoEncoder`` with the same RRDB decoder, random weights
saved to a temporary checkpoint for ``AesopLoss``; VGG19 perceptual loss with random weights,
``AESOP_RANDOM_BACKBONES=1``; ``VGGStyleDiscriminator`` of input size ``--patch``) with
``basicsr.models.build_model`` and times one complete training step (``feed_data`` +
``optimize_parameters``: G and D updates, EMA, every loss) of each in this process: every model
is built and runs one warm-up step, then the ``--steps`` timed steps run round-robin over the
models (so a busy spell of the machine slows every row alike) and each row reports its median.
Nothing is read from disk but the option files; the pretrained weights they name are not needed
(``path.pretrain_*`` removed).

``--naive`` adds the "before" rows: the same AESOP (and LDL) model with the work the project's
model avoids done anyway, as the official release does (:func:`make_naive`): ψ's parameters with
``requires_grad=True`` (weight gradients computed, never used), the EMA forward of LDL's artifact
map and the discriminator passes whose outputs are detached run with autograd graphs. Each of the
three is also reverted alone on our AESOP model, one row each, to show what each change gives.

ψ alone: after each timed AESOP step, ψ(HR) without graph and ψ(SR) with its input gradient are
timed by themselves on that step's images (:func:`time_psi`); ``1 + their sum / LDL step`` is
the floor of ``aesop_over_ldl`` for any implementation that computes the same loss and gradient.

Gradient checkpointing: G's forward + backward with and without ``network_g.use_checkpoint``
(:func:`checkpoint_cost`): time, activation memory kept for the backward pass, peak memory.

Inference: images/s of the generator alone (eval, ``no_grad``) at a fixed LR size, and the peak
memory of tiled inference (:func:`aesop.inference.upscale`) for two image sizes.

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
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aesop  # noqa: E402,F401  (first: fixes basicsr before anything imports it)
from aesop.cli import ArgumentParser, cli_main  # noqa: E402
from aesop.errors import AesopError  # noqa: E402
from aesop.inference import upscale  # noqa: E402
from aesop.models.precision import AMP_DTYPES  # noqa: E402
from aesop.utils import RANDOM_BACKBONES_ENV, markdown_table  # noqa: E402
from aesop.weights import freeze  # noqa: E402

DEVICES = ('cpu', 'cuda')
AMP_MODES = tuple(AMP_DTYPES)  # train.amp's values
PATCHES = (128, 256)  # the input sizes of basicsr's VGGStyleDiscriminator
SCALE = 4
OPTION_FILES = {
    'esrgan': REPO / 'options' / 'train_esrgan_rrdb.yml',
    'ldl': REPO / 'options' / 'train_ldl_rrdb.yml',
    'aesop': REPO / 'options' / 'train_aesop_rrdb.yml',
}
TINY_G = {'num_feat': 8, 'num_block': 1, 'num_grow_ch': 8}
TINY_AE_ENCODER = {'num_feat': 16, 'num_block': 1}  # the encoder's width must be a multiple of scale² = 16
TINY_D = {'num_feat': 8}


@dataclass(frozen=True)
class Variant:
    """One row of the training-step table: an option file and which naive work to put back.

    Attributes:
        key: JSON key prefix (``<key>_step_s``).
        label: row label.
        method: ``esrgan``, ``ldl`` or ``aesop`` (the option file).
        psi_grad: ψ's parameters require gradients (weight gradients computed, never used).
        ema_graph: the EMA generator's forward (LDL's artifact map) builds an autograd graph.
        d_graph: discriminator passes whose outputs are detached build autograd graphs.
    """

    key: str
    label: str
    method: str
    psi_grad: bool = False
    ema_graph: bool = False
    d_graph: bool = False


OURS = (
    Variant('esrgan', 'ESRGAN', 'esrgan'),
    Variant('ldl', 'LDL', 'ldl'),
    Variant('aesop', 'AESOP (ours)', 'aesop'),
)
NAIVE = (
    Variant('naive_ldl', 'LDL, naive (EMA + D graphs)', 'ldl', ema_graph=True, d_graph=True),
    Variant('naive_aesop', 'AESOP, naive (all three)', 'aesop', psi_grad=True, ema_graph=True, d_graph=True),
    Variant('aesop_psi_grad', 'AESOP + ψ weight gradients', 'aesop', psi_grad=True),
    Variant('aesop_ema_graph', 'AESOP + EMA forward with graph', 'aesop', ema_graph=True),
    Variant('aesop_d_graph', 'AESOP + detached D passes with graph', 'aesop', d_graph=True),
)
CHANGES = (
    ('aesop_psi_grad', 'ψ frozen: no weight gradients through ψ(SR)'),
    ('aesop_ema_graph', 'EMA forward without graph (LDL map)'),
    ('aesop_d_graph', 'no graph for detached D outputs'),
)


# ---------------------------------------------------------------------------------------------
# options and models


def load_options(method: str, args: argparse.Namespace, *, device: torch.device, ae_ckpt: Path | None) -> dict:
    """The option dict of ``method``'s paper option file, made buildable without files.

    ``is_train``, no DDP, ``num_gpu`` 0 (CPU) / 1 (CUDA), ``path.pretrain_*`` removed, no
    datasets; D's ``input_size`` = ``--patch``; ``train.amp`` (and ``train.channels_last``) set
    from the command line; with ``--tiny`` the small nets of :data:`TINY_G` and no VGG19
    perceptual loss (a smoke test of the script, not a measurement).

    Args:
        method: ``esrgan``, ``ldl`` or ``aesop``.
        ae_ckpt: ψ's checkpoint for ``aesop_opt.pretrained`` (``None``: left as in the file).
    """
    opt = yaml.safe_load(OPTION_FILES[method].read_text())
    opt.pop('datasets', None)
    opt.update(
        name=f'benchmark_{method}',
        is_train=True,
        dist=False,
        rank=0,
        world_size=1,
        num_gpu=1 if device.type == 'cuda' else 0,
        auto_resume=False,
    )
    opt['path'] = {k: v for k, v in opt['path'].items() if not k.startswith('pretrain_')}
    opt['network_d']['input_size'] = args.patch
    train = opt['train']
    if args.tiny:
        opt['network_g'].update(TINY_G)
        opt['network_d'].update(TINY_D)
        train.pop('perceptual_opt', None)  # building VGG19 alone takes seconds
    train['amp'] = args.amp
    if args.channels_last:
        train['channels_last'] = True
    if train.get('aesop_opt'):
        autoencoder = train['aesop_opt']['autoencoder']
        autoencoder['decoder'] = {**autoencoder['decoder'], **deepcopy(opt['network_g'])}
        if args.tiny:
            autoencoder.update(TINY_AE_ENCODER)
        if ae_ckpt is not None:
            train['aesop_opt'].update(pretrained=str(ae_ckpt), param_key='params_ema')
    return opt


def save_random_autoencoder(args: argparse.Namespace, folder: Path) -> Path:
    """ψ with random weights (the arch of ``train_aesop_rrdb.yml``), saved as ``{'params_ema': …}``."""
    from basicsr.archs import build_network

    arch = load_options('aesop', args, device=torch.device('cpu'), ae_ckpt=None)['train']['aesop_opt']['autoencoder']
    torch.manual_seed(0)
    path = folder / 'psi.pth'
    torch.save({'params_ema': build_network(deepcopy(arch)).state_dict()}, path)
    return path


def _graph_forward(net: nn.Module) -> None:
    """Make ``net``'s forward build an autograd graph even under ``torch.no_grad()``."""
    plain = net.forward

    def forward(*inputs, **kwargs):
        with torch.enable_grad():
            return plain(*inputs, **kwargs)

    net.forward = forward


def make_naive(model, *, psi_grad: bool = False, ema_graph: bool = False, d_graph: bool = False):
    """Put back, on a built ``AesopGANModel``, work the project's model avoids (benchmark only).

    The loss values and the updates stay the same; only wasted work is added, as the official
    release does it:

    - ``psi_grad``: ψ's parameters ``requires_grad=True`` (never in an optimiser), so the backward
      through ψ(SR) also computes their weight gradients, which accumulate unused;
    - ``ema_graph``: the EMA generator's parameters require gradients and its forward (for LDL's
      artifact map, whose mask passes no gradient) records a graph;
    - ``d_graph``: every discriminator forward records a graph where D's parameters require
      gradients, also for outputs that are only used detached (the fake scores' mean in the D
      step's relativistic real term).

    Returns:
        ``model``.
    """
    if psi_grad:
        fidelity = getattr(model, 'cri_fidelity', {}).get('l_g_aesop')
        if fidelity is None:
            raise AesopError('make_naive(psi_grad=True) needs a model with the AESOP loss (train.aesop_opt)')
        fidelity.autoencoder.requires_grad_(True)
    if ema_graph:
        if not hasattr(model, 'net_g_ema'):
            raise AesopError('make_naive(ema_graph=True) needs an EMA generator (train.ema_decay > 0)')
        model.net_g_ema.requires_grad_(True)
        _graph_forward(model.net_g_ema)
    if d_graph:
        _graph_forward(model.net_d)
    return model


def build_variant(variant: Variant, args: argparse.Namespace, *, device: torch.device, ae_ckpt: Path | None):
    """``basicsr.models.build_model`` on the variant's options, seeded, naive work put back if asked."""
    from basicsr.models import build_model

    torch.manual_seed(0)
    model = build_model(load_options(variant.method, args, device=device, ae_ckpt=ae_ckpt))
    return make_naive(model, psi_grad=variant.psi_grad, ema_graph=variant.ema_graph, d_graph=variant.d_graph)


def make_batch(args: argparse.Namespace) -> dict[str, torch.Tensor]:
    """A seeded random batch: ``lq`` (B, 3, P/4, P/4), ``gt`` (B, 3, P, P); ``feed_data`` moves it."""
    gen = torch.Generator().manual_seed(1)
    lr = args.patch // SCALE
    return {
        'lq': torch.rand(args.batch, 3, lr, lr, generator=gen),
        'gt': torch.rand(args.batch, 3, args.patch, args.patch, generator=gen),
    }


# ---------------------------------------------------------------------------------------------
# timing and memory


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels (CUDA); nothing on the CPU."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


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
    """Times of one variant: the warm-up step and the timed steps (s), peak memory (MiB), what G ran in."""

    warmup_s: float
    times_s: list[float]
    peak_mb: float
    conv_dtype: str
    channels_last: bool

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)


def timed_step(model, batch: dict[str, torch.Tensor], current_iter: int, device: torch.device) -> float:
    """Seconds of one complete training step: ``feed_data`` + ``optimize_parameters`` (G, D, EMA)."""
    synchronize(device)
    start = time.perf_counter()
    model.feed_data(batch)
    model.optimize_parameters(current_iter)
    synchronize(device)
    return time.perf_counter() - start


def time_psi(model, device: torch.device) -> tuple[float, float]:
    """Seconds of ψ's own work in an AESOP step, alone: ψ(HR) without graph; ψ(SR) + its input gradient.

    Uses the AESOP model's frozen ψ, its last batch's HR and its last SR output (detached). The
    sum is a floor for what AESOP adds to an LDL step without changing the loss's computation.
    """
    psi = model.cri_fidelity['l_g_aesop'].autoencoder
    hr, sr = model.gt, model.output.detach()
    synchronize(device)
    start = time.perf_counter()
    with torch.no_grad(), model.autocast():
        psi(hr)
    synchronize(device)
    middle = time.perf_counter()
    sr = sr.clone().requires_grad_(True)
    with model.autocast():
        out = psi(sr)
    out.float().abs().mean().backward()
    synchronize(device)
    return middle - start, time.perf_counter() - middle


def time_training_steps(
    variants: Sequence[Variant], args: argparse.Namespace, *, device: torch.device, ae_ckpt: Path | None
) -> tuple[dict[str, StepResult], tuple[float, float]]:
    """Warm-up and timed steps of every variant, and the medians of :func:`time_psi` after AESOP's steps.

    Each variant is built and runs its warm-up step (iteration 1) in turn; its peak memory is
    taken there (over the memory in use before its build; the variants built before stay
    alive). Then the ``args.steps`` timed steps run round-robin (step 2 of every variant, then
    step 3, …), so that a busy spell of the machine slows all rows alike rather than one.
    """
    batch = make_batch(args)
    models, probes, warmups, peaks = {}, {}, {}, {}
    for v in variants:
        memory = PeakMemory(device)
        memory.start()
        models[v.key] = build_variant(v, args, device=device, ae_ckpt=ae_ckpt)
        probes[v.key] = ConvProbe(models[v.key].net_g)
        memory.reset_peak()
        warmups[v.key] = timed_step(models[v.key], batch, 1, device)
        peaks[v.key] = memory.stop()
        print(f'  built {v.label}: warm-up step {warmups[v.key]:.3f} s', file=sys.stderr, flush=True)
    times: dict[str, list[float]] = {v.key: [] for v in variants}
    psi_times: list[tuple[float, float]] = []
    for it in range(2, args.steps + 2):
        for v in variants:
            times[v.key].append(timed_step(models[v.key], batch, it, device))
            if v.key == 'aesop':
                psi_times.append(time_psi(models[v.key], device))
        print(f'  timed round {it - 1}/{args.steps}', file=sys.stderr, flush=True)
    results = {}
    for v in variants:
        probes[v.key].remove()
        dtype = str(probes[v.key].dtype).removeprefix('torch.')
        results[v.key] = StepResult(warmups[v.key], times[v.key], peaks[v.key], dtype, probes[v.key].channels_last)
    psi = tuple(statistics.median(t) for t in zip(*psi_times))
    models.clear()
    _release_memory(device)
    return results, psi


# ---------------------------------------------------------------------------------------------
# inference


def build_generator(args: argparse.Namespace, device: torch.device) -> nn.Module:
    """The benchmark's G (``network_g`` of the option files), random weights, eval, frozen, on ``device``."""
    from basicsr.archs import build_network

    torch.manual_seed(0)
    arch = load_options('esrgan', args, device=device, ae_ckpt=None)['network_g']
    net = freeze(build_network(arch)).to(device)
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def inference_throughput(net: nn.Module, args: argparse.Namespace, device: torch.device) -> dict:
    """Images/s of ``net`` alone (eval, ``no_grad``, autocast per ``--amp``), batch 1, LR ``args.infer_size``²."""
    x = torch.rand(1, 3, args.infer_size, args.infer_size, generator=torch.Generator().manual_seed(2)).to(device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    amp = args.amp != 'none'
    times = []
    with torch.no_grad(), torch.autocast(device.type, dtype=AMP_DTYPES.get(args.amp), enabled=amp):
        for _ in range(args.steps + 1):
            synchronize(device)
            start = time.perf_counter()
            net(x)
            synchronize(device)
            times.append(time.perf_counter() - start)
    median = statistics.median(times[1:])
    return {'lr_size': args.infer_size, 'image_s': median, 'images_per_s': 1 / median}


def tiled_inference(net: nn.Module, args: argparse.Namespace, device: torch.device) -> list[dict]:
    """Time and peak memory of :func:`aesop.inference.upscale` for each of ``args.tiled_sizes``.

    Tiles of ``args.tile`` px with ``args.tile_pad`` px of context; the larger size is also run
    whole (``tile`` 0) for comparison (``peak_mem_mb`` ``None`` if that runs out of GPU memory).
    The LR image lives on the CPU (as in ``scripts/infer.py``): on CUDA the peak is the network's,
    on the CPU it also counts the assembled output.
    """
    runs = [(size, args.tile) for size in args.tiled_sizes] + [(max(args.tiled_sizes), 0)]
    rows = []
    for size, tile in runs:
        img = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(3))
        memory = PeakMemory(device)
        memory.start()
        start = time.perf_counter()
        try:
            out = upscale(net, img, scale=SCALE, tile=tile, tile_pad=args.tile_pad, half=args.amp != 'none')
        except torch.cuda.OutOfMemoryError:
            out, peak_mb = None, None
        else:
            synchronize(device)
            peak_mb = memory.stop()
            if out.shape[-2:] != (size * SCALE, size * SCALE):
                raise AesopError(f'upscale returned {tuple(out.shape)} for a {size}² input')
        seconds = time.perf_counter() - start
        del out
        rows.append(
            {'lr_size': size, 'tile': tile, 'tile_pad': args.tile_pad, 'seconds': seconds, 'peak_mem_mb': peak_mb}
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

    arch = {**load_options('esrgan', args, device=device, ae_ckpt=None)['network_g'], 'type': 'AesopRRDBNet'}
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
            synchronize(device)
            start = time.perf_counter()
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                out = net(x)
            out.square().mean().backward()
            synchronize(device)
            times.append(time.perf_counter() - start)
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


def build_parser() -> argparse.ArgumentParser:
    """The command line; usage errors raise :class:`AesopError` (one line, exit status 2)."""

    parser = ArgumentParser(prog='benchmark.py', description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', choices=DEVICES, default=DEVICES[0], help='where to run (default %(default)s)')
    parser.add_argument('--amp', choices=AMP_MODES, default='none', help='train.amp (and inference autocast)')
    parser.add_argument('--channels-last', action='store_true', help='set train.channels_last: true')
    parser.add_argument('--batch', type=int, help='images per step (default 2; --tiny 1)')
    parser.add_argument('--patch', type=int, default=128, choices=PATCHES, help='HR patch = D input size (128)')
    parser.add_argument('--steps', type=int, help='timed steps after 1 warm-up (default 3; --tiny 1)')
    parser.add_argument('--json', action='store_true', help='print one JSON object as the last line')
    parser.add_argument('--naive', action='store_true', help='also time the naive AESOP/LDL steps and each change')
    parser.add_argument(
        '--tiny',
        action='store_true',
        help='tiny nets (nf 8, 1 block, patch 128, no VGG19, batch 1, 1 step): a smoke test',
    )
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and complete the arguments (sizes of the inference part depend on ``--tiny`` and the device)."""
    args = build_parser().parse_args(argv)
    if args.tiny:
        args.patch = 128
    if args.steps is None:
        args.steps = 1 if args.tiny else 3
    if args.batch is None:
        args.batch = 1 if args.tiny else 2
    if args.steps < 1 or args.batch < 1:
        raise AesopError(f'--steps and --batch must be >= 1, got {args.steps} and {args.batch}')
    if args.tiny:
        args.infer_size, args.tiled_sizes, args.tile, args.tile_pad = 16, (24, 48), 16, 4
    elif args.device == 'cuda':
        args.infer_size, args.tiled_sizes, args.tile, args.tile_pad = 64, (512, 1024), 256, 16
    else:
        args.infer_size, args.tiled_sizes, args.tile, args.tile_pad = 64, (96, 192), 64, 8
    return args


def report(results: dict[str, StepResult], variants: Sequence[Variant], psi: tuple[float, float]) -> tuple[str, dict]:
    """The training-step tables and their JSON fields; ``psi``: :func:`time_psi`'s medians."""
    ldl = results['ldl'].median_s
    rows = []
    for v in variants:
        r = results[v.key]
        rows.append(
            [
                v.label,
                f'{r.median_s:.3f}',
                f'{min(r.times_s):.3f}',
                f'{r.warmup_s:.3f}',
                f'{r.median_s / ldl:.3f}',
                f'{r.peak_mb:.0f}',
            ]
        )
    text = markdown_table(['training step', 'median s', 'min s', 'warm-up s', '× LDL', 'peak MiB'], rows)
    fields = {f'{v.key}_step_s': results[v.key].median_s for v in variants}
    fields['aesop_over_ldl'] = results['aesop'].median_s / ldl
    fields['esrgan_over_ldl'] = results['esrgan'].median_s / ldl
    fields['peak_mem_mb'] = {v.key: results[v.key].peak_mb for v in variants}
    fields['psi_hr_s'], fields['psi_sr_s'] = psi
    fields['psi_floor_over_ldl'] = 1 + sum(psi) / ldl
    text += (
        f'\n\nψ alone (same batch): ψ(HR) without graph {psi[0]:.3f} s + ψ(SR) with its input gradient '
        f'{psi[1]:.3f} s = {sum(psi):.3f} s -> floor of aesop_over_ldl {fields["psi_floor_over_ldl"]:.3f} '
        f'(measured {results["aesop"].median_s / ldl:.3f})'
    )
    if 'naive_aesop' in results:
        naive, ours = results['naive_aesop'].median_s, results['aesop'].median_s
        fields['naive_aesop_over_ldl'] = naive / ldl
        fields['naive_aesop_over_naive_ldl'] = naive / results['naive_ldl'].median_s
        changes = []
        for key, what in CHANGES:
            saved = results[key].median_s - ours
            fields[f'saved_by_{key.removeprefix("aesop_")}_s'] = saved
            changes.append([what, f'{results[key].median_s:.3f}', f'{saved:+.3f}', f'{saved / ldl:+.3f}'])
        changes.append(
            ['all three (naive AESOP)', f'{naive:.3f}', f'{naive - ours:+.3f}', f'{(naive - ours) / ldl:+.3f}']
        )
        text += '\n\n' + markdown_table(
            ['change (reverted alone on AESOP)', 'step s without it', 'saves s', 'saves × LDL'], changes
        )
        text += (
            f'\n\naesop_over_ldl: naive {naive / ldl:.3f} (vs our LDL), '
            f'{fields["naive_aesop_over_naive_ldl"]:.3f} (naive AESOP vs naive LDL) -> ours {ours / ldl:.3f}'
        )
    return text, fields


def _run(argv: Sequence[str] | None) -> int:
    wall = time.perf_counter()
    args = parse_args(argv)
    os.environ[RANDOM_BACKBONES_ENV] = '1'  # VGG19 of the perceptual loss: random, nothing downloaded
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise AesopError('--device cuda: no CUDA device is available here')
    device = torch.device(args.device)
    variants = OURS + (NAIVE if args.naive else ())
    g = load_options('esrgan', args, device=device, ae_ckpt=None)['network_g']
    precision = 'fp32' if args.amp == 'none' else f'train.amp {args.amp}'
    threads = f'{torch.get_num_threads()} threads' if device.type == 'cpu' else torch.cuda.get_device_name(device)
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    print(
        f'AESOP benchmark: {args.device} ({threads}), {precision}'
        f'{", channels_last" if args.channels_last else ""}, batch {args.batch}, HR patch {args.patch} '
        f'(LR {args.patch // SCALE}), RRDBNet nf {g["num_feat"]} x {g["num_block"]} blocks, '
        f'median of {args.steps} step(s) after 1 warm-up; torch {torch.__version__}; load average {load:.2f}',
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix='aesop_benchmark_') as tmp:
        ae_ckpt = save_random_autoencoder(args, Path(tmp))
        results, psi = time_training_steps(variants, args, device=device, ae_ckpt=ae_ckpt)
    text, fields = report(results, variants, psi)
    print()
    print(text)
    print(memory_note(device))
    ran = results['aesop']
    notes = []
    if args.amp != 'none' and ran.conv_dtype == 'float32':
        notes.append(f'train.amp {args.amp} requested but G computed in float32: the model ignored train.amp')
    if args.channels_last and not ran.channels_last:
        notes.append('train.channels_last requested but G ran contiguous (NCHW): the model ignored it')
    layout = 'channels_last' if ran.channels_last else 'NCHW'
    print(f"G's first convolution ran in {ran.conv_dtype}, {layout} (checked with a forward hook during the steps)")
    for note in notes:
        print(f'note: {note}')

    net = build_generator(args, device)
    infer = inference_throughput(net, args, device)
    tiled = tiled_inference(net, args, device)
    del net
    rows = [
        [
            f'G alone, LR {infer["lr_size"]}² -> {infer["lr_size"] * SCALE}², batch 1',
            f'{infer["image_s"]:.3f}',
            f'{infer["images_per_s"]:.3f} img/s',
            '',
        ]
    ]
    for t in tiled:
        how = f'tile {t["tile"]} pad {t["tile_pad"]}' if t['tile'] else 'whole image'
        peak = 'out of memory' if t['peak_mem_mb'] is None else f'{t["peak_mem_mb"]:.0f}'
        rows.append([f'upscale LR {t["lr_size"]}² -> {t["lr_size"] * SCALE}², {how}', f'{t["seconds"]:.3f}', '', peak])
    print()
    print(markdown_table(['inference (eval, no_grad)', 's / image', 'throughput', 'peak MiB'], rows))
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
    wall = time.perf_counter() - wall
    print(f'wall time {wall:.1f} s')
    if args.json:
        fields.update(
            device=args.device,
            amp=args.amp,
            conv_dtype=ran.conv_dtype,
            channels_last=args.channels_last,
            batch=args.batch,
            patch=args.patch,
            steps=args.steps,
            threads=torch.get_num_threads(),
            load_average_start=load,
            tiny=args.tiny,
            torch=torch.__version__,
            peak_mem_what=memory_note(device),
            infer_lr_size=infer['lr_size'],
            infer_images_per_s=infer['images_per_s'],
            tiled=tiled,
            checkpointing=checkpointing,
            notes=notes,
            wall_s=wall,
        )
        print(json.dumps(fields))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status (2 with one ``aesop: error:`` line on bad input)."""
    gc.freeze()  # what exists now (torch, basicsr, …) is never garbage: keeps each gc.collect() short
    try:
        return cli_main(_run, argv)
    finally:
        gc.unfreeze()


if __name__ == '__main__':
    sys.exit(main())
