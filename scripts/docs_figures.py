"""Make the figures of docs/ from the demo's outputs (``make figures``, after ``make demo``).

Runs the commands of docs/evaluation.md on the demo's outputs, as a user would copy them: the evaluator on
the bicubic, PSNR-oriented and AESOP SR images (``results/demo_eval/*.csv``), the perception–distortion plot
(Fig. 4), the loss maps (Fig. 3), the spectra (Fig. 6), and ``aesop-infer`` (tiled) on a held-out LR
photo beside bicubic, the PSNR-oriented network and the HR image. Metrics on random backbones
(``AESOP_RANDOM_BACKBONES=1``, as the demo) are labelled so in the plots.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shlex
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ['AESOP_RANDOM_BACKBONES'] = '1'  # as the demo (before `import aesop`, which reads it)

import aesop  # noqa: E402,F401  (first: fixes basicsr before anything imports it)
from aesop.cli import ArgumentParser, cli_main  # noqa: E402
from aesop.commands import command_help  # noqa: E402
from aesop.errors import AesopError  # noqa: E402
from aesop.utils import ROOT_ENV  # noqa: E402

_EVAL = '--gt datasets/demo/val/HR --lq datasets/demo/val/LR_bicubic/X4 --metrics psnr,ssim,lpips,dists,lr_psnr'
_AE = '--ae experiments/demo_ae/models/net_g_latest.pth --ae-opt options/demo/train_ae.yml'
#: docs/evaluation.md's commands on the demo's outputs, as written there (a test holds them to the page): the
#: evaluator, then the figures, written to ``figures/`` (``--out``).
COMMANDS = (
    *(
        f'aesop-evaluate --sr results/demo_test_{run}/visualization/demo_val --sr-suffix _demo_test_{run} {_EVAL} '
        f'--csv results/demo_eval/{run}.csv --verbose'
        for run in ('aesop', 'psnr', 'bicubic')
    ),
    'python scripts/plot_pd_curve.py --csv Bicubic=results/demo_eval/bicubic.csv '
    '"PSNR model=results/demo_eval/psnr.csv" AESOP=results/demo_eval/aesop.csv -o figures/pd_curve.png',
    'python scripts/visualize_loss_maps.py '
    '--sr results/demo_test_aesop/visualization/demo_val/coffee_demo_test_aesop.png '
    f'--hr datasets/demo/val/HR/coffee.png --lr datasets/demo/val/LR_bicubic/X4/coffee.png {_AE} '
    '-o figures/loss_maps.png',
    f'python scripts/spectrum.py --image datasets/demo/val/HR/coffee.png {_AE} --hann -o figures/spectrum.png',
    'aesop-infer -i datasets/demo/val/LR_bicubic/X4/rocket.png -o results/demo_infer --opt options/demo/test_aesop.yml '
    '--tile 64 --tile-pad 16',
)
CONSOLE_SCRIPTS = {'aesop-evaluate': 'aesop.evaluation', 'aesop-infer': 'aesop.inference'}
INFER_PHOTO, INFER_BOX = 'rocket', (40, 240, 200, 160)  # (top, left, height, width) in HR pixels: the rocket's nose


def commands(root: Path, out: Path) -> list[list[str]]:
    """:data:`COMMANDS` as argument lists to run in ``root``: figures written to ``out``, option files read from
    this repository when ``root`` has none (``scripts/demo.py --root`` elsewhere)."""

    def place(arg: str) -> str:
        if arg.startswith('figures/'):
            return str(out / arg.removeprefix('figures/'))
        if arg.startswith('options/') and not (root / arg).exists():
            return str(REPO / arg)
        return arg

    return [[place(arg) for arg in shlex.split(line)] for line in COMMANDS]


def load_command(argv0: str, argv1: str) -> ModuleType:
    """The module of a command (its ``main(argv)`` is the command), run in this process: one import of torch and
    basicsr for all the commands. ``aesop-*``: the console script's module; ``python scripts/<name>``: that file."""
    if argv0 in CONSOLE_SCRIPTS:
        return importlib.import_module(CONSOLE_SCRIPTS[argv0])
    spec = importlib.util.spec_from_file_location(f'aesop_scripts_{Path(argv1).stem}', REPO / argv1)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def inference_figure(root: Path, path: Path) -> None:
    """Bicubic | PSNR-oriented (stage 0) | AESOP (``aesop-infer --tile 64``) | HR: a crop of a held-out photo."""
    from aesop.figures import crop, image_panel, new_figure, read_image, save_figure

    panels = (
        ('bicubic ×4', root / f'results/demo_test_bicubic/visualization/demo_val/{INFER_PHOTO}_demo_test_bicubic.png'),
        (
            'PSNR-oriented (stage 0)',
            root / f'results/demo_test_psnr/visualization/demo_val/{INFER_PHOTO}_demo_test_psnr.png',
        ),
        ('AESOP (stage 2), aesop-infer --tile 64', root / f'results/demo_infer/{INFER_PHOTO}.png'),
        ('HR', root / f'datasets/demo/val/HR/{INFER_PHOTO}.png'),
    )
    fig = new_figure(width=3.2 * len(panels), height=4.4)
    images = [read_image(image) for _, image in panels]
    top, left, height, width = INFER_BOX
    fits = all(img.shape[0] >= top + height and img.shape[1] >= left + width for img in images)
    for i, ((title, _), img) in enumerate(zip(panels, images), 1):  # the whole image where the crop does not fit
        image_panel(fig.add_subplot(1, len(panels), i), crop(img, INFER_BOX if fits else None), title)
    save_figure(fig, path, dpi=100)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        **command_help(
            'Make the figures of docs/ from the outputs of `make demo`: runs the evaluator on the bicubic, '
            'PSNR-oriented and AESOP SR images, the perception-distortion plot (Fig. 4), the loss maps (Fig. 3), the '
            'spectra (Fig. 6) and aesop-infer (tiled) on a held-out photo, as docs/evaluation.md shows them. '
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
    os.environ[ROOT_ENV] = str(root)
    os.chdir(root)  # the commands' paths are the demo's, relative to its root
    for argv in commands(root, out):
        print('+', shlex.join(argv), flush=True)
        command, args = (argv[:1], argv[1:]) if argv[0] in CONSOLE_SCRIPTS else (argv[:2], argv[2:])
        if cli_main(load_command(*argv[:2]).main, args):
            raise AesopError(f'{shlex.join(command)} failed (its error is above)')
    inference_figure(root, out / 'infer_example.png')
    print(f'figures in {out}: ' + ', '.join(sorted(p.name for p in out.glob('*.png'))))


if __name__ == '__main__':
    sys.exit(cli_main(main))
