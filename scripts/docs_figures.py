"""Make the figures of docs/ from the demo's outputs (``make figures``, after ``make demo``).

Runs the commands of docs/evaluation.md on the demo's outputs, as a user would copy them: the evaluator on
the bicubic, PSNR-oriented and AESOP SR images (``results/demo_eval/*.csv``), the perception–distortion plot
(Fig. 4), the loss maps (Fig. 3), the spectra (Fig. 6), and ``scripts/infer.py`` (tiled) on a held-out LR
photo beside bicubic, the PSNR-oriented network and the HR image. Metrics on random backbones
(``AESOP_RANDOM_BACKBONES=1``, as the demo) are labelled so in the plots.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aesop  # noqa: E402,F401  (first: fixes basicsr before anything imports it)
from aesop.cli import ArgumentParser, cli_main  # noqa: E402
from aesop.commands import command_help  # noqa: E402
from aesop.errors import AesopError  # noqa: E402

VAL = 'datasets/demo/val'
#: The SR images the demo's test stages wrote: (label, test run).
METHODS = (('Bicubic', 'demo_test_bicubic'), ('PSNR model', 'demo_test_psnr'), ('AESOP', 'demo_test_aesop'))
AE = ('--ae', 'experiments/demo_ae/models/net_g_latest.pth', '--ae-opt', 'options/demo/train_ae.yml')
INFER_PHOTO, INFER_BOX = 'rocket', (40, 240, 200, 160)  # (top, left, height, width) in HR pixels: the rocket's nose


def commands(out: Path) -> list[list[str]]:
    """The command lines (scripts of this repository, run from the demo's root), figures written to ``out``."""
    script = lambda name: [sys.executable, str(REPO / 'scripts' / name)]  # noqa: E731
    lines = []
    for _, run in METHODS:
        lines.append(
            [
                *script('evaluate.py'),
                *('--sr', f'results/{run}/visualization/demo_val', '--sr-suffix', f'_{run}'),
                *('--gt', f'{VAL}/HR', '--lq', f'{VAL}/LR_bicubic/X4', '--metrics', 'psnr,ssim,lpips,dists,lr_psnr'),
                *('--csv', f'results/demo_eval/{run.removeprefix("demo_test_")}.csv'),
            ]
        )
    lines.append(
        [
            *script('plot_pd_curve.py'),
            '--csv',
            *(f'{label}=results/demo_eval/{run.removeprefix("demo_test_")}.csv' for label, run in METHODS),
            *('-o', str(out / 'pd_curve.png')),
        ]
    )
    lines.append(
        [
            *script('visualize_loss_maps.py'),
            *('--sr', 'results/demo_test_aesop/visualization/demo_val/coffee_demo_test_aesop.png'),
            *('--hr', f'{VAL}/HR/coffee.png', '--lr', f'{VAL}/LR_bicubic/X4/coffee.png', *AE),
            *('-o', str(out / 'loss_maps.png')),
        ]
    )
    lines.append(
        [*script('spectrum.py'), '--image', f'{VAL}/HR/coffee.png', *AE, '--hann', '-o', str(out / 'spectrum.png')]
    )
    lines.append(
        [
            *script('infer.py'),
            *('-i', f'{VAL}/LR_bicubic/X4/{INFER_PHOTO}.png', '-o', 'results/demo_infer'),
            *('--opt', str(REPO / 'options' / 'demo' / 'test_aesop.yml'), '--tile', '64', '--tile-pad', '16'),
        ]
    )
    return lines


def inference_figure(root: Path, path: Path) -> None:
    """Bicubic | PSNR-oriented (stage 0) | AESOP (``scripts/infer.py --tile 64``) | HR: a crop of a held-out photo."""
    from aesop.figures import crop, image_panel, new_figure, read_image, save_figure

    panels = (
        ('bicubic ×4', root / f'results/demo_test_bicubic/visualization/demo_val/{INFER_PHOTO}_demo_test_bicubic.png'),
        (
            'PSNR-oriented (stage 0)',
            root / f'results/demo_test_psnr/visualization/demo_val/{INFER_PHOTO}_demo_test_psnr.png',
        ),
        ('AESOP (stage 2), scripts/infer.py --tile 64', root / f'results/demo_infer/{INFER_PHOTO}.png'),
        ('HR', root / f'{VAL}/HR/{INFER_PHOTO}.png'),
    )
    fig = new_figure(width=3.2 * len(panels), height=4.4)
    for i, (title, image) in enumerate(panels, 1):
        image_panel(fig.add_subplot(1, len(panels), i), crop(read_image(image), INFER_BOX), title)
    save_figure(fig, path, dpi=100)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        **command_help(
            'Make the figures of docs/ from the outputs of `make demo`: runs the evaluator on the bicubic, '
            'PSNR-oriented and AESOP SR images, the perception-distortion plot (Fig. 4), the loss maps (Fig. 3), the '
            'spectra (Fig. 6) and scripts/infer.py (tiled) on a held-out photo, as docs/evaluation.md shows them. '
            '`make figures` runs it with --out docs.',
            ('{prog} --out docs', '{prog} --root demo_root --out figures'),
        )
    )
    parser.add_argument(
        '--root', type=Path, default=REPO, help="the demo's root (scripts/demo.py --root; default: here)"
    )
    parser.add_argument('--out', type=Path, default=Path('figures'), help='folder of the figures (default: figures/)')
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    root, out = args.root.resolve(), args.out.resolve()
    if not (root / 'results' / 'demo_test_aesop' / 'metrics.csv').is_file():
        raise AesopError(f'no demo outputs under {root}: run `make demo` (or scripts/demo.py --root {root}) first')
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, 'AESOP_RANDOM_BACKBONES': '1', 'AESOP_ROOT': str(root)}
    for line in commands(out):
        print('+', ' '.join(Path(a).name if a == sys.executable else a for a in line), flush=True)
        if subprocess.run(line, cwd=root, env=env).returncode:
            raise AesopError(f'{Path(line[1]).name} failed (its error is above)')
    inference_figure(root, out / 'infer_example.png')
    print(f'figures in {out}: ' + ', '.join(sorted(p.name for p in out.glob('*.png'))))


if __name__ == '__main__':
    sys.exit(cli_main(main))
