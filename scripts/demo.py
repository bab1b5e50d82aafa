"""The whole method on photos bundled with scikit-image, in a few minutes on a CPU (`make demo`).

Stages, each through the real entry points (``aesop/train.py`` / ``aesop/test.py``):
  0. a small PSNR-oriented network (the initialisation the paper takes from ESRGAN-PSNR): basicsr's
     MSRResNet, whose global bilinear skip gets it past bicubic in 800 iterations on a CPU (the paper: RRDBNet);
  1. auto-encoder pretraining, L_LR (Eq. 4) + L_HR (Eq. 5), decoder from stage 0;
  2. GAN SR with the AESOP loss (Eq. 9), G from stage 0, frozen ψ from stage 1;
  3. evaluation of bicubic upscaling and of stages 0 and 2 on held-out photos;
  4. the LR reconstruction network of HR-aware finetuning (paper 003, Eq. 5), tiny;
  5. HR-aware finetuning (Eq. 6) of stage 2's generator on the held-out photos' LR images under a fixed
     synthetic degradation (no GT used in training);
  6. stage 2's generator before and after stage 5 on those images, against their GT.
It ends with the time per stage and one table per test set, each with a bicubic row. Nothing is
downloaded: the VGG19 of the perceptual loss, the AlexNet of LPIPS and the CLIP of HR-aware
finetuning are random (AESOP_RANDOM_BACKBONES=1), so this demonstrates the pipeline, not the
papers' numbers.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _weights(name: str, experiment: str, which: str) -> tuple[str, ...]:
    """``--force_yml`` arguments: test run ``name`` scores ``experiments/<experiment>/models/net_g_<which>.pth``."""
    return ('--force_yml', f'name={name}', f'path:pretrain_network_g=experiments/{experiment}/models/net_g_{which}.pth')


STAGES = (
    ('0 PSNR-oriented network', 'train', 'options/demo/train_psnr.yml', ()),
    ('1 auto-encoder ψ = D∘E', 'train', 'options/demo/train_ae.yml', ()),
    ('2 AESOP GAN', 'train', 'options/demo/train_aesop.yml', ()),
    ('3 test bicubic', 'test', 'options/demo/test_bicubic.yml', ()),
    ('3 test PSNR model', 'test', 'options/demo/test_aesop.yml', _weights('demo_test_psnr', 'demo_psnr', 'latest')),
    ('3 test AESOP', 'test', 'options/demo/test_aesop.yml', ()),
    ('4 HR-aware reconstruction network', 'train', 'options/demo/train_hraware_recon.yml', ()),
    ('5 HR-aware finetuning of stage 2', 'train', 'options/demo/finetune_hraware.yml', ()),
    (
        '6 test before finetuning',
        'test',
        'options/demo/test_hraware.yml',
        _weights('demo_test_hraware_start', 'demo_aesop', 'latest'),
    ),
    ('6 test after finetuning', 'test', 'options/demo/test_hraware.yml', ()),
)
#: The summary's tables: (title, dataset, ((test run, row label), …)); the bicubic row first.
TABLES = (
    (
        'Held-out photos (coffee, rocket), MATLAB-bicubic ×4 LR',
        'demo_val',
        (
            ('demo_test_bicubic', 'bicubic'),
            ('demo_test_psnr', 'PSNR-oriented (stage 0)'),
            ('demo_test_aesop', 'AESOP (stage 2)'),
        ),
    ),
    (
        'Held-out photos, degraded LR (blur, bicubic ×1/4, noise, JPEG): HR-aware finetuning (paper 003)',
        'demo_val_degraded',
        (
            ('demo_test_bicubic', 'bicubic'),
            ('demo_test_hraware_start', 'AESOP (stage 2), before'),
            ('demo_test_hraware_finetuned', 'after HR-aware finetuning (stage 5)'),
        ),
    ),
)
MARGIN_DB, MAX_COLOUR_SHIFT, MAX_SECONDS = 0.3, 3, 300  # the demo's targets (:func:`goals`)
ITER = re.compile(r', iter:\s*(\d+)')  # BasicSR's log line: [epoch:  0, iter:     20, lr:...]
IMAGES = re.compile(r'(\d+)/(\d+) \[')  # BasicSR's validation progress bar: 1/2 [00:01<...


def run_stage(title: str, script: str, option_file: str, extra: tuple[str, ...], root: Path) -> float:
    """Run one entry point with a progress bar fed by its log; return seconds taken."""
    from aesop.options import load_options

    opt = load_options(REPO / option_file)  # read as the entry point reads it
    total = int(opt['train']['total_iter']) if script == 'train' else None
    cmd = [sys.executable, str(REPO / 'aesop' / f'{script}.py'), '-opt', str(REPO / option_file), *extra]
    start, log = time.time(), []
    with subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        with tqdm(total=total, desc=f'stage {title}', unit='it' if total else 'image') as bar:
            for line in proc.stdout:  # universal newlines: the child's tqdm updates ('\r') come as lines
                log.append(line)
                if total and (m := ITER.search(line)):
                    bar.update(int(m.group(1)) - bar.n)
                elif not total and (m := IMAGES.search(line)):
                    bar.total = int(m.group(2))
                    bar.update(int(m.group(1)) - bar.n)
            if total and proc.wait() == 0:
                bar.update(total - bar.n)
    if proc.returncode != 0:
        sys.stdout.write(''.join(log[-40:]))
        sys.exit(f'demo: stage {title} failed (exit {proc.returncode}): {" ".join(cmd)}')
    return time.time() - start


def summary_rows(root: Path, dataset: str, runs: tuple[tuple[str, str], ...]) -> dict[str, dict[str, str]]:
    """``dataset``'s row of each test run's ``metrics.csv`` (metric → value as written), by row label, with the
    run's colour shift (:func:`colour_shift`)."""
    rows = {}
    for run, label in runs:
        with open(root / 'results' / run / 'metrics.csv', newline='') as f:
            row = next(r for r in csv.DictReader(f) if r['dataset'] == dataset)
        rows[label] = {k: v for k, v in row.items() if k not in ('method', 'dataset')}
        rows[label]['colour shift'] = f'{colour_shift(root, run, dataset):.1f}'
    return rows


def summary_table(root: Path, dataset: str, runs: tuple[tuple[str, str], ...]) -> str:
    """One Markdown table of :func:`summary_rows` (columns: the metrics every run reports)."""
    from aesop.utils import markdown_table

    rows = summary_rows(root, dataset, runs)
    metrics = [m for m in next(iter(rows.values())) if all(m in values for values in rows.values())]
    return markdown_table(
        ['method', *metrics], [[label, *(v.get(m, '') for m in metrics)] for label, v in rows.items()]
    )


def goals(root: Path, total_s: float) -> list[str]:
    """The demo's targets, one line each with the value measured: the PSNR-oriented network beats bicubic by at
    least :data:`MARGIN_DB` (PSNR-Y, held-out photos), no network shifts a colour channel's mean by more than
    :data:`MAX_COLOUR_SHIFT` grey levels, and the whole demo takes at most :data:`MAX_SECONDS` (2 quiet cores)."""
    _, dataset, runs = TABLES[0]
    rows = summary_rows(root, dataset, runs)
    (bicubic, psnr_model, *_), networks = runs, runs[1:]
    margin = float(rows[psnr_model[1]]['psnr']) - float(rows[bicubic[1]]['psnr'])
    shift = max(float(rows[label]['colour shift']) for _, label in networks)
    checks = (
        (f'{psnr_model[1]} − bicubic, PSNR-Y: {margin:+.2f} dB (goal ≥ +{MARGIN_DB} dB)', margin >= MARGIN_DB),
        (
            f'largest colour shift of a network: {shift:.1f} grey levels (goal ≤ {MAX_COLOUR_SHIFT})',
            shift <= MAX_COLOUR_SHIFT,
        ),
        (f'whole demo: {total_s:.0f} s (goal ≤ {MAX_SECONDS} s on 2 quiet cores)', total_s <= MAX_SECONDS),
    )
    return [f'  {"met   " if met else "MISSED"} {text}' for text, met in checks]


def colour_shift(root: Path, run: str, dataset: str) -> float:
    """The largest |mean(SR) − mean(GT)| of a colour channel over the run's SR images of ``dataset``, in grey
    levels (0–255): a colour cast shows here (a network that only adds detail moves no channel's mean)."""
    import cv2

    shifts = []
    for sr_path in sorted((root / 'results' / run / 'visualization' / dataset).glob('*.png')):
        gt_path = root / 'datasets' / 'demo' / 'val' / 'HR' / f'{sr_path.stem.removesuffix("_" + run)}.png'
        sr, gt = (cv2.imread(str(p)).reshape(-1, 3).astype(np.float64) for p in (sr_path, gt_path))
        shifts.append(np.abs(sr.mean(0) - gt.mean(0)).max())
    if not shifts:
        raise SystemExit(f'demo: no SR images of {dataset} in {root / "results" / run / "visualization"}')
    return max(shifts)


def build_parser() -> argparse.ArgumentParser:
    from aesop.commands import command_help

    parser = argparse.ArgumentParser(
        **command_help(
            'The whole method on photos bundled with scikit-image, through the real entry points, in a few minutes '
            'on a CPU (`make demo`): a PSNR-oriented network, the auto-encoder, the AESOP GAN, HR-aware finetuning, '
            'and their test runs beside bicubic upscaling; it ends with the time per stage and one table per test set. '
            'Nothing is downloaded: backbones are random (AESOP_RANDOM_BACKBONES=1).',
            ('{prog}', '{prog} --root demo_root'),
        )
    )
    parser.add_argument('--root', type=Path, default=REPO, help='where datasets/, experiments/, results/ go')
    return parser


def main() -> None:
    start = time.time()
    args = build_parser().parse_args()
    root = args.root.resolve()
    os.environ['AESOP_RANDOM_BACKBONES'] = '1'
    os.environ['AESOP_ROOT'] = str(root)

    from aesop.data import make_degraded_lr, make_demo_dataset

    data = make_demo_dataset(root / 'datasets' / 'demo')
    for split in ('train', 'val'):
        make_degraded_lr(data, split=split)
    print(f'demo dataset (×4, MATLAB bicubic LR): {data}')
    seconds = {'data': time.time() - start}
    for title, script, opt, extra in STAGES:
        stage = title.split()[0]
        seconds[stage] = seconds.get(stage, 0) + run_stage(title, script, opt, extra, root)

    total = time.time() - start  # all but the interpreter's start and the summary below
    print('\nTime per stage (s): ' + ', '.join(f'{stage}: {s:.0f}' for stage, s in seconds.items()))
    print(f'Total: {total:.0f} s ({total / 60:.1f} min)\n')
    for title, dataset, runs in TABLES:
        print(f'{title}\n\n{summary_table(root, dataset, runs)}\n')
    print('The demo against its goals:\n' + '\n'.join(goals(root, total)) + '\n')
    print(
        "psnr, ssim: Y channel, 4-px border cropped. colour shift: the largest change of a colour channel's mean "
        'against the GT,\nin grey levels. Metrics marked "random" come from randomly initialised backbones '
        '(AESOP_RANDOM_BACKBONES=1, nothing is\ndownloaded): they show the pipeline runs, not the quality.\n'
        "Small networks, seconds to a minute of training each: not the papers' numbers.\n"
    )
    print(f'SR images:          {root}/results/demo_test_aesop/visualization/demo_val/')
    print(f'Metric tables:      {root}/results/demo_test_*/metrics.{{md,csv}}')
    print(f'Training logs:      {root}/experiments/demo_{{psnr,ae,aesop,hraware_recon,hraware_finetune}}/train_*.log')
    print(f'Checkpoints:        {root}/experiments/demo_{{psnr,ae,aesop,hraware_recon,hraware_finetune}}/models/')
    print(f'Tensorboard events: {root}/tb_logger/  (tensorboard --logdir {root}/tb_logger)')


if __name__ == '__main__':
    main()
