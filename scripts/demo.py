"""The whole method on photos bundled with scikit-image, in a few minutes on a CPU (`make demo`).

Stages, each through the real entry points (``aesop/train.py`` / ``aesop/test.py``):
  0. a tiny PSNR-oriented RRDBNet (the initialisation the paper takes from ESRGAN-PSNR);
  1. auto-encoder pretraining, L_LR (Eq. 4) + L_HR (Eq. 5), decoder from stage 0;
  2. GAN SR with the AESOP loss (Eq. 9), G from stage 0, frozen ψ from stage 1;
  3. evaluation of stages 0 and 2 on held-out photos;
  4. the LR reconstruction network of HR-aware finetuning (paper 003, Eq. 5), tiny;
  5. HR-aware finetuning (Eq. 6) of stage 2's generator on the held-out photos' LR images under a fixed
     synthetic degradation (no GT used in training);
  6. stage 2's generator before and after stage 5 on those images, against their GT.
Nothing is downloaded: the VGG19 of the perceptual loss is random (AESOP_RANDOM_BACKBONES=1),
so this demonstrates the pipeline, not the paper's numbers.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STAGES = (
    ('0 PSNR-oriented RRDBNet', 'train', 'options/demo/train_psnr.yml', ()),
    ('1 auto-encoder ψ = D∘E', 'train', 'options/demo/train_ae.yml', ()),
    ('2 AESOP GAN', 'train', 'options/demo/train_aesop.yml', ()),
    ('3 test AESOP', 'test', 'options/demo/test_aesop.yml', ()),
    (
        '3 test PSNR model',
        'test',
        'options/demo/test_aesop.yml',
        ('--force_yml', 'name=demo_test_psnr', 'path:pretrain_network_g=experiments/demo_psnr/models/net_g_latest.pth'),
    ),
    ('4 HR-aware reconstruction network', 'train', 'options/demo/train_hraware_recon.yml', ()),
    ('5 HR-aware finetuning of stage 2', 'train', 'options/demo/finetune_hraware.yml', ()),
    ('6 test after finetuning', 'test', 'options/demo/test_hraware.yml', ()),
    (
        '6 test before finetuning',
        'test',
        'options/demo/test_hraware.yml',
        (
            '--force_yml',
            'name=demo_test_hraware_start',
            'path:pretrain_network_g=experiments/demo_aesop/models/net_g_latest.pth',
        ),
    ),
)
RESULTS = (  # one table each: (stage 0 vs 2 on bicubic LR), (stage 2 before vs after HR-aware finetuning)
    ('demo_test_psnr', 'demo_test_aesop'),
    ('demo_test_hraware_start', 'demo_test_hraware_finetuned'),
)
ITER = re.compile(r', iter:\s*(\d+)')  # BasicSR's log line: [epoch:  0, iter:     20, lr:...]
IMAGES = re.compile(r'(\d+)/(\d+) \[')  # BasicSR's validation progress bar: 1/2 [00:01<...


def run_stage(title: str, script: str, option_file: str, extra: tuple[str, ...], root: Path) -> float:
    """Run one entry point with a progress bar fed by its log; return seconds taken."""
    opt = yaml.safe_load((REPO / option_file).read_text())
    total = opt['train']['total_iter'] if script == 'train' else None
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


def metric_table(csv_files: list[Path]) -> str:
    """One Markdown table (rows: method/dataset) from the test runs' ``metrics.csv`` files."""
    from aesop.utils import markdown_table

    rows = [line.split(',') for f in csv_files for line in f.read_text().splitlines()]
    return markdown_table(rows[0], [r for r in rows if r != rows[0]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--root', type=Path, default=REPO, help='where datasets/, experiments/, results/ go')
    args = parser.parse_args()
    root = args.root.resolve()
    os.environ['AESOP_RANDOM_BACKBONES'] = '1'
    os.environ['AESOP_ROOT'] = str(root)

    from aesop.data import make_degraded_lr, make_demo_dataset

    data = make_demo_dataset(root / 'datasets' / 'demo')
    for split in ('train', 'val'):
        make_degraded_lr(data, split=split)
    print(f'demo dataset (×4, MATLAB bicubic LR): {data}')
    times = {title: run_stage(title, script, opt, extra, root) for title, script, opt, extra in STAGES}

    print('\nTime per stage: ' + ', '.join(f'{t.split()[0]}: {s:.0f}s' for t, s in times.items()))
    print(f'Total: {sum(times.values()):.0f}s\n')
    for names in RESULTS:
        print(metric_table([root / 'results' / name / 'metrics.csv' for name in names]) + '\n')
    print()
    print(f'SR images:          {root}/results/demo_test_aesop/visualization/demo_val/')
    print(f'Metric tables:      {root}/results/demo_test_{{aesop,psnr}}/metrics.{{md,csv}}')
    print(f'Training logs:      {root}/experiments/demo_{{psnr,ae,aesop,hraware_recon,hraware_finetune}}/train_*.log')
    print(f'Checkpoints:        {root}/experiments/demo_{{psnr,ae,aesop,hraware_recon,hraware_finetune}}/models/')
    print(f'Tensorboard events: {root}/tb_logger/  (tensorboard --logdir {root}/tb_logger)')


if __name__ == '__main__':
    main()
