"""What AESOP costs: one training step of ESRGAN, LDL and AESOP side by side, its FLOPs, ψ's own work, peak
memory and inference.

    python scripts/benchmark.py [--device cpu|cuda] [--modes fp32,bf16,channels_last] \\
        [--variants esrgan,ldl,aesop,aesop_srresnet] [--batch 2] [--patch 128] [--steps 3] [--threads N] \\
        [--parts steps,flops,inference] [--tiled-sizes 96,192 | 339x510] [--tile 64] [--tile-pad 8] [--json] [--tiny]

Rows (``--variants``): ESRGAN, LDL and AESOP built by ``basicsr.models.build_model`` from
``options/train_{esrgan,ldl,aesop}_rrdb.yml`` at the paper's size (RRDBNet 64 × 23, VGG19 with random
weights, D of input size ``--patch``), AESOP twice: with ψ's RRDB decoder (``aesop``) and with the
MSRResNet decoder of Tab. 5(a) (``aesop_srresnet``, ``options/train_ae_srresnet.yml``). ψ has random weights,
saved to a temporary checkpoint; nothing but the option files is read from disk. Columns (``--modes``):
``train.amp`` and ``train.channels_last`` (``fp32``, ``bf16``, ``fp16``, ``channels_last`` and the mixes).

Each (mode, row) cell is built, runs one step whose peak memory is taken, and is then timed by
``torch.utils.benchmark.Timer.timeit(--steps)`` (which warms up with 2 more steps): the mean step time and
the minor page faults of a step (``getrusage``). After an AESOP row, ψ's own work alone (ψ(HR) without a
graph + ψ(SR) and its input gradient, on that model's last batch and output) is timed the same way; the
time an AESOP step adds to LDL beyond ψ is ``(AESOP − LDL − ψ) / LDL``. The cells are timed one after the
other: on a shared machine use ``--threads 1`` and compare ratios of one run.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` during the first step, over what was allocated
before it; on the CPU the same quantity from the profiler's allocation events (tensor bytes, not what the
C allocator keeps). FLOPs (``flops``): ``torch.utils.flop_counter.FlopCounterMode`` over one step of each row
and over ψ's own work, batch 1, fp32; noise-free, and ``AESOP − LDL − ψ`` is 0 exactly. Inference
(``inference``): G alone (eval, ``no_grad``) on one LR image of 64² (``Timer.blocked_autorange``), and time
and peak memory of ``aesop.inference.upscale`` tiled for ``--tiled-sizes``, the largest also whole.
With ``--json`` the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aesop  # noqa: E402,F401  (first: fixes basicsr before anything imports it)
from aesop.cli import ArgumentParser, cli_main  # noqa: E402
from aesop.commands import command_help  # noqa: E402
from aesop.errors import AesopError  # noqa: E402
from aesop.inference import upscale  # noqa: E402
from aesop.models.train_step import AMP_DTYPES  # noqa: E402
from aesop.options import load_options  # noqa: E402
from aesop.utils import RANDOM_BACKBONES_ENV, markdown_table  # noqa: E402
from aesop.weights import freeze  # noqa: E402

SCALE, PAPER_BATCH = 4, 16  # ×4; images per GPU in the paper's AESOP training
OPTIONS = REPO / 'options'
OPTION_FILES = {m: OPTIONS / f'train_{m}_rrdb.yml' for m in ('esrgan', 'ldl', 'aesop')}
PARTS = ('steps', 'flops', 'inference')
TINY_G = {'num_feat': 8, 'num_block': 1, 'num_grow_ch': 8}
TINY_PSI = {'num_feat': 16, 'num_block': 1, 'num_grow_ch': 8}  # the encoder's width: a multiple of scale² = 16


class Variant(NamedTuple):
    """A row: JSON key, label, option file (``method``), ψ's decoder (AESOP rows) and ψ's JSON key."""

    key: str
    label: str
    method: str
    psi: str = ''
    psi_key: str = ''


VARIANTS = {
    v.key: v
    for v in (
        Variant('esrgan', 'ESRGAN', 'esrgan'),
        Variant('ldl', 'LDL', 'ldl'),
        Variant('aesop', 'AESOP, ψ RRDB', 'aesop', 'rrdb', 'psi'),
        Variant('aesop_srresnet', 'AESOP, ψ MSRResNet', 'aesop', 'srresnet', 'psi_srresnet'),
    )
}
MODES = {'fp32': ('none', False), 'channels_last': ('none', True)}  # column: (train.amp, train.channels_last)
MODES.update({f'{amp}{cl}': (amp, bool(cl)) for amp in ('bf16', 'fp16') for cl in ('', '_channels_last')})


# ---------------------------------------------------------------------------------------------- options, models


def psi_arch(kind: str, tiny: bool) -> dict:
    """ψ's arch: ``rrdb`` from ``train_aesop_rrdb.yml`` (decoder = its ``network_g``), ``srresnet`` from
    ``train_ae_srresnet.yml``."""
    if kind == 'rrdb':
        opt = load_options(OPTION_FILES['aesop'])
        arch = dict(opt['train']['aesop_opt']['autoencoder'])
        arch['decoder'] = {**arch['decoder'], **opt['network_g'], **(TINY_G if tiny else {})}
    else:
        arch = dict(load_options(OPTIONS / 'train_ae_srresnet.yml')['network_g'])
        arch['decoder'] = {**arch['decoder'], **({'num_feat': 8, 'num_block': 1} if tiny else {})}
    return {**arch, **(TINY_PSI if tiny else {})}


def options(
    method: str, args: argparse.Namespace, mode: str = 'fp32', ckpts: dict | None = None, psi: str = ''
) -> dict:
    """``method``'s paper options as one training process without data or weight files on ``args.device``;
    ``train.amp`` / ``channels_last`` of ``mode``; ψ ``psi`` from ``ckpts``; tiny nets and no VGG19 with ``--tiny``."""
    opt = load_options(OPTION_FILES[method])
    opt.pop('datasets', None)
    opt.update(name=f'benchmark_{method}', num_gpu=int(args.device == 'cuda'), is_train=True, dist=False)
    opt.update(rank=0, world_size=1, auto_resume=False)
    opt['path'] = {k: v for k, v in opt['path'].items() if not k.startswith('pretrain_')}
    opt['network_d']['input_size'] = args.patch
    train = opt['train']
    train['amp'], train['channels_last'] = MODES[mode]
    if args.tiny:
        opt['network_g'].update(TINY_G)
        opt['network_d']['num_feat'] = 8
        train.pop('perceptual_opt', None)  # VGG19 would dominate a tiny step
    if psi:
        train['aesop_opt'].update(autoencoder=psi_arch(psi, args.tiny), pretrained=str(ckpts[psi]))
        train['aesop_opt']['param_key'] = 'params_ema'
    return opt


def save_random_psi(kind: str, tiny: bool, folder: Path) -> Path:
    """ψ ``kind`` with random weights, saved as ``{'params_ema': …}``."""
    from basicsr.archs import build_network

    torch.manual_seed(0)
    path = folder / f'psi_{kind}.pth'
    torch.save({'params_ema': build_network(psi_arch(kind, tiny)).state_dict()}, path)
    return path


def build(v: Variant, args: argparse.Namespace, mode: str, ckpts: dict):
    from basicsr.models import build_model

    torch.manual_seed(0)
    return build_model(options(v.method, args, mode, ckpts, v.psi))


def make_batch(args: argparse.Namespace, n: int | None = None) -> dict[str, torch.Tensor]:
    """Seeded random ``lq`` (n, 3, P/4, P/4) and ``gt`` (n, 3, P, P), n = ``--batch`` by default."""
    gen, n = torch.Generator().manual_seed(1), n or args.batch
    lr = args.patch // SCALE
    return {
        'lq': torch.rand(n, 3, lr, lr, generator=gen),
        'gt': torch.rand(n, 3, args.patch, args.patch, generator=gen),
    }


def psi_work(model) -> None:
    """ψ's own work in an AESOP step: ψ(HR) without a graph, ψ(SR) and the gradient of a loss on it w.r.t. SR."""
    psi = model.cri_fidelity['l_g_aesop'].autoencoder
    with torch.no_grad(), model.train_step.autocast():
        psi(model.gt)
    sr = model.output.detach().clone().requires_grad_(True)
    with model.train_step.autocast():
        out = psi(sr)
    out.float().abs().mean().backward()


# ---------------------------------------------------------------------------------------------- measuring


def peak_mb(device: torch.device, fn: Callable[[], object]) -> float:
    """Peak memory of ``fn()`` over what was allocated before it, MiB (see the module's docstring)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == '[memory]' and e.device_type().name == 'CPU'),
        key=lambda e: e.start_ns(),
    )
    return max(itertools.accumulate((e.nbytes() for e in events), initial=0)) / 2**20


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """File descriptor 2 to /dev/null: the profiler's C++ part logs each start and stop there."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class Faults:
    """Calls ``fn`` and records each call's minor page faults (pages the kernel mapped in for the process)."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn, self.faults = fn, []

    def __call__(self) -> None:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        self.fn()
        self.faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)


def timed(fn: Faults, steps: int, label: str) -> dict:
    """``Timer.timeit(steps)`` of ``fn`` (after its 2 warm-up calls): mean s per call and median faults per call."""
    from torch.utils import benchmark  # imported here: it warns on import where no CUDA toolkit is found

    timer = benchmark.Timer('fn()', globals={'fn': fn}, label=label, num_threads=torch.get_num_threads())
    measurement = timer.timeit(steps)
    return {'s': measurement.mean, 'faults': statistics.median(fn.faults[-steps:])}


def time_cells(args: argparse.Namespace, device: torch.device, ckpts: dict) -> dict:
    """Every (mode, row) cell: first step with its peak memory, then the timed steps, ψ alone after AESOP rows."""
    data, cells = make_batch(args), {}
    iteration = itertools.count(1)
    for mode in args.modes:
        for v in args.variants:
            model = build(v, args, mode, ckpts)

            def step(model=model) -> None:
                model.feed_data(data)
                model.optimize_parameters(next(iteration))

            cell = {'peak_mb': peak_mb(device, step), **timed(Faults(step), args.steps, v.label)}
            if v.psi:
                cell['psi'] = timed(Faults(lambda model=model: psi_work(model)), args.steps, f'ψ {v.psi}')
            cells[mode, v.key] = cell
            print(f'  {mode} {v.label}: {cell["s"]:.3f} s per step', file=sys.stderr, flush=True)
            del model
    return cells


def count_flops(args: argparse.Namespace, ckpts: dict, batch: int = 1) -> dict[str, int]:
    """FLOPs (convolutions and matrix products, forward and backward) of one fp32 step of each row on ``batch``
    images, and of ψ's own work (``<psi_key>``)."""
    from torch.utils.flop_counter import FlopCounterMode

    flops, data = {}, make_batch(args, batch)
    for v in args.variants:
        model = build(v, args, 'fp32', ckpts)
        with FlopCounterMode(display=False) as counter:
            model.feed_data(data)
            model.optimize_parameters(1)
        flops[v.key] = counter.get_total_flops()
        if v.psi:
            with FlopCounterMode(display=False) as counter:
                psi_work(model)
            flops[v.psi_key] = counter.get_total_flops()
    return flops


def inference(args: argparse.Namespace, device: torch.device) -> dict:
    """G alone on one 64² LR image (eval, ``no_grad``, the first mode's autocast), and tiled ``upscale``."""
    from basicsr.archs import build_network

    amp, channels_last = MODES[args.modes[0]]
    torch.manual_seed(0)
    net = freeze(build_network(options('esrgan', args)['network_g'])).to(device)
    size = 16 if args.tiny else 64
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(2)).to(device)
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)

    def forward() -> None:
        with torch.no_grad(), torch.autocast(device.type, dtype=AMP_DTYPES.get(amp), enabled=amp != 'none'):
            net(x)

    from torch.utils import benchmark

    timer = benchmark.Timer('forward()', globals={'forward': forward}, num_threads=torch.get_num_threads())
    image_s = timer.blocked_autorange(min_run_time=0.5 if args.tiny else 5).median
    largest = max(args.tiled_sizes, key=lambda hw: hw[0] * hw[1])
    tiled = []
    for (h, w), tile in [*((hw, args.tile) for hw in args.tiled_sizes), (largest, 0)]:
        img = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(3))
        run = functools.partial(upscale, net, img, scale=SCALE, tile=tile, tile_pad=args.tile_pad, half=amp != 'none')
        start = time.perf_counter()
        try:
            mb = peak_mb(device, run)
        except torch.cuda.OutOfMemoryError:
            mb = None
        seconds = time.perf_counter() - start
        tiled.append(dict(lr_hw=[h, w], tile=tile, tile_pad=args.tile_pad, seconds=seconds, peak_mem_mb=mb))
    return {'lr_size': size, 'image_s': image_s, 'images_per_s': 1 / image_s, 'tiled': tiled}


# ---------------------------------------------------------------------------------------------- report


def steps_report(cells: dict, args: argparse.Namespace) -> tuple[str, dict]:
    """The training-step table (one row per mode and variant) and its JSON fields, per mode."""
    rows, fields = [], {}
    for mode in args.modes:
        ldl, fields[mode] = cells[mode, 'ldl']['s'], {}
        for v in args.variants:
            c, psi, rest = cells[mode, v.key], '', ''
            f = fields[mode][v.key] = dict(step_s=c['s'], over_ldl=c['s'] / ldl, peak_mem_mb=c['peak_mb'])
            f['minor_faults'] = c['faults']
            if v.psi:
                p, overhead = c['psi'], (c['s'] - ldl - c['psi']['s']) / ldl
                f.update(psi_s=p['s'], psi_over_ldl=p['s'] / ldl, psi_minor_faults=p['faults'])
                f['overhead_over_ldl'] = overhead
                psi, rest = f'{p["s"]:.3f} ({p["s"] / ldl:.3f})', f'{overhead:+.3f}'
            rows.append([mode, v.label, f'{c["s"]:.3f}', f'{c["s"] / ldl:.3f}', psi, rest, f'{c["peak_mb"]:.0f}'])
            rows[-1].append(f'{c["faults"]:.0f}')
    header = ['mode', 'training step', 's', '× LDL', 'ψ alone s (× LDL)', '(step − LDL − ψ) / LDL', 'peak MiB']
    text = markdown_table([*header, 'minor faults'], rows) + (
        '\n\nψ alone = ψ(HR) without graph + ψ(SR) with its input gradient; (step − LDL − ψ) / LDL = what an AESOP '
        "step adds to LDL beyond ψ's own compute; minor faults: median per step (ψ alone: per call)"
    )
    return text, fields


def flops_report(flops: dict[str, int], args: argparse.Namespace) -> tuple[str, dict]:
    """The FLOP table (batch-1 counts × ``--batch`` and × 16) and its JSON fields."""
    rows, ldl = [], flops['ldl']
    for v in args.variants:
        for key, label in [(v.key, v.label)] + ([(v.psi_key, f'ψ {v.psi} alone')] if v.psi else []):
            f = flops[key]
            rows.append([label, *(f'{f * n / 1e9:.1f}' for n in (1, args.batch, PAPER_BATCH)), f'{f / ldl:.3f}'])
    text = markdown_table(['GFLOP', 'per image', f'batch {args.batch}', f'batch {PAPER_BATCH} (paper)', '× LDL'], rows)
    fields = {'per_image': flops, 'per_step': {k: f * args.batch for k, f in flops.items()}}
    for v in args.variants:
        if v.psi:
            rest = fields[f'{v.key}_minus_ldl_minus_psi'] = flops[v.key] - ldl - flops[v.psi_key]
            text += f'\n{v.label} − LDL − ψ = {rest} FLOP'
    return text, fields


def inference_report(infer: dict, mode: str) -> str:
    n = infer['lr_size']
    rows = [[f'G alone, LR {n}² -> {n * SCALE}²', f'{infer["image_s"]:.3f}', f'{infer["images_per_s"]:.3f}', '']]
    for t in infer['tiled']:
        (h, w), how = t['lr_hw'], f'tile {t["tile"]} pad {t["tile_pad"]}' if t['tile'] else 'whole image'
        peak = 'out of memory' if t['peak_mem_mb'] is None else f'{t["peak_mem_mb"]:.0f}'
        rows.append([f'upscale LR {h}x{w} -> {h * SCALE}x{w * SCALE}, {how}', f'{t["seconds"]:.3f}', '', peak])
    return markdown_table([f'inference ({mode})', 's / image', 'images/s', 'peak MiB'], rows)


# ---------------------------------------------------------------------------------------------- command line


def _names(choices: Sequence[str], what: str) -> Callable[[str], list[str]]:
    """An argparse type: comma-separated names from ``choices``, each once."""

    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(',') if n.strip()]
        if not names or len(set(names)) != len(names) or any(n not in choices for n in names):
            raise argparse.ArgumentTypeError(f'{what}: comma-separated names from {", ".join(choices)}, each once')
        return names

    return parse


def _sizes(text: str) -> list[tuple[int, int]]:
    """An argparse type: comma-separated LR sizes, ``N`` or ``HxW``."""
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


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        **command_help(
            "What AESOP costs: one training step of ESRGAN, LDL and AESOP at the paper's size (random VGG19 and ψ, "
            "nothing read but the option files), their FLOPs, ψ's own work, peak memory and inference, timed with "
            "torch.utils.benchmark. The module's docstring says how each is measured.",
            (
                '{prog} --threads 1 --variants ldl,aesop,aesop_srresnet --parts steps --steps 5',
                '{prog} --parts flops',
                '{prog} --device cuda --batch 16 --modes fp32,bf16_channels_last',
                '{prog} --tiny --json',
            ),
        )
    )
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu', help='where to run (default cpu)')
    parser.add_argument('--modes', type=_names(MODES, '--modes'), default=['fp32'], help=f'from {", ".join(MODES)}')
    parser.add_argument('--variants', type=_names(VARIANTS, '--variants'), default=list(VARIANTS), help='rows')
    parser.add_argument('--batch', type=int, help='images per step (2; --tiny 1)')
    parser.add_argument('--patch', type=int, default=128, choices=(128, 256), help='HR patch = D input size (128)')
    parser.add_argument('--steps', type=int, help='timed steps after 3 warm-up steps (3; --tiny 1)')
    parser.add_argument('--threads', type=int, help="torch.set_num_threads (torch's own; --tiny 1)")
    parser.add_argument('--parts', type=_names(PARTS, '--parts'), default=list(PARTS), help='what to run (all)')
    parser.add_argument('--tiled-sizes', type=_sizes, help='LR sizes N or HxW, tiled (96,192; CUDA 512,1024)')
    parser.add_argument('--tile', type=int, help='tile of tiled inference, LR px (64; CUDA 256)')
    parser.add_argument('--tile-pad', type=int, help='context around each tile, LR px (8; CUDA 16)')
    parser.add_argument('--json', action='store_true', help='print one JSON object as the last line')
    parser.add_argument('--tiny', action='store_true', help='tiny nets, no VGG19, batch 1, 1 step, 1 thread')
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if 'ldl' not in args.variants:
        raise AesopError('--variants must include ldl: every ratio is to the LDL step')
    args.variants = [VARIANTS[k] for k in args.variants]
    if any(n is not None and n < 1 for n in (args.steps, args.batch, args.threads)):
        raise AesopError('--steps, --batch and --threads must be >= 1')
    args.steps = args.steps or (1 if args.tiny else 3)
    args.batch = args.batch or (1 if args.tiny else 2)
    args.threads = args.threads or (1 if args.tiny else None)
    tiled, tile, pad = (
        ((24, 48), 16, 4) if args.tiny else ((512, 1024), 256, 16) if args.device == 'cuda' else ((96, 192), 64, 8)
    )
    args.tiled_sizes = args.tiled_sizes or [(n, n) for n in tiled]
    args.tile = tile if args.tile is None else args.tile
    args.tile_pad = pad if args.tile_pad is None else args.tile_pad
    if args.tile < 1 or args.tile_pad < 0:
        raise AesopError('--tile must be >= 1 and --tile-pad >= 0')
    return args


def _run(argv: Sequence[str] | None) -> int:
    start = time.perf_counter()
    args = parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise AesopError('--device cuda: no CUDA device is available here')
    os.environ[RANDOM_BACKBONES_ENV] = '1'  # VGG19 of the perceptual loss: random, nothing downloaded
    if args.threads:
        torch.set_num_threads(args.threads)
    device, fields = torch.device(args.device), {}
    where = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'
    g = options('esrgan', args)['network_g']
    print(
        f'AESOP benchmark: {where}, {torch.get_num_threads()} thread(s), modes {",".join(args.modes)}, batch '
        f'{args.batch}, HR patch {args.patch}, RRDBNet {g["num_feat"]} x {g["num_block"]}, {args.steps} timed '
        f'step(s); torch {torch.__version__}',
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix='aesop_benchmark_') as tmp:
        ckpts = {v.psi: save_random_psi(v.psi, args.tiny, Path(tmp)) for v in args.variants if v.psi}
        if 'steps' in args.parts:
            text, fields['training'] = steps_report(time_cells(args, device, ckpts), args)
            print(f'\n{text}')
        if 'flops' in args.parts:
            text, fields['flops'] = flops_report(count_flops(args, ckpts), args)
            print(f'\n{text}')
    if 'inference' in args.parts:
        fields['inference'] = inference(args, device)
        print(f'\n{inference_report(fields["inference"], args.modes[0])}')
    seconds = time.perf_counter() - start
    print(f'\nwall time {seconds:.1f} s')
    if args.json:
        fields.update(device=args.device, modes=args.modes, variants=[v.key for v in args.variants], batch=args.batch)
        fields.update(
            patch=args.patch, steps=args.steps, threads=torch.get_num_threads(), tiny=args.tiny, wall_s=seconds
        )
        print(json.dumps(fields))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; the exit status (2 with one ``aesop: error:`` line on bad input)."""
    return cli_main(_run, argv)


if __name__ == '__main__':
    sys.exit(main())
