"""Loss maps of paper Fig. 3: the pixel error |SR − HR| beside the AESOP error |ψ(SR) − ψ(HR)| (Eq. 8).

Panels: [LR,] SR, HR, |SR − HR| and |ψ(SR) − ψ(HR)|, both maps averaged over the RGB channels
(each map's mean is the per-pixel L1 loss, given in its title). ψ = D∘E is the frozen auto-encoder
whose arch is in --ae-opt (an AE pretraining or AESOP training option file) with weights from --ae.
H and W are cropped to multiples of the AE scale (bottom/right). By default the two maps share one
colour scale (0 to the 99.5th percentile of both, or --vmax), so their magnitudes compare; use
--color-scale per-panel to stretch each map on its own.

Examples: ``python scripts/visualize_loss_maps.py --help``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aesop  # noqa: E402,F401  (first: fixes basicsr before anything imports it)
from aesop.cli import add_autoencoder_arguments, cli_main  # noqa: E402
from aesop.commands import command_help  # noqa: E402
from aesop.errors import AesopError  # noqa: E402
from aesop.figures import (  # noqa: E402
    Box,
    autoencode_region,
    autoencoder_scale,
    check_box,
    crop,
    image_panel,
    load_autoencoder,
    mod_crop,
    new_figure,
    parse_box,
    read_image,
    save_figure,
)

COLOR_SCALES = ('shared', 'per-panel')


def loss_maps(
    net: nn.Module, sr: np.ndarray, hr: np.ndarray, *, box: Box | None = None, margin: int = 32
) -> dict[str, np.ndarray]:
    """The crops and the two error maps of Fig. 3 for ``(H, W, 3)`` SR and HR arrays in [0, 1].

    SR and HR are mod-cropped to the AE scale first; ψ runs on a window around ``box``
    (:func:`aesop.figures.autoencode_region`).

    Returns:
        ``sr``, ``hr`` (h, w, 3) crops; ``pixel`` = mean_c |SR − HR| and ``aesop`` =
        mean_c |ψ(SR) − ψ(HR)|, both (h, w).
    """
    if sr.shape != hr.shape:
        raise AesopError(f'SR ({sr.shape[0]}×{sr.shape[1]}) and HR ({hr.shape[0]}×{hr.shape[1]}) differ in size')
    scale = autoencoder_scale(net)
    sr, hr = mod_crop(sr, scale), mod_crop(hr, scale)
    if sr.shape[0] == 0 or sr.shape[1] == 0:
        raise AesopError(f'image smaller than the auto-encoder scale {scale}')
    if box is not None:
        check_box(box, hr.shape, what=f'the HR image (cropped to multiples of {scale})')
    psi_sr = autoencode_region(net, sr, box, margin=margin)
    psi_hr = autoencode_region(net, hr, box, margin=margin)
    sr, hr = crop(sr, box), crop(hr, box)
    return {
        'sr': sr,
        'hr': hr,
        'pixel': np.abs(sr - hr).mean(axis=2),
        'aesop': np.abs(psi_sr - psi_hr).mean(axis=2),
    }


def lr_region(lr: np.ndarray, hr_shape: Sequence[int], box: Box | None) -> np.ndarray:
    """The part of the LR image under the HR ``box`` (LR scale inferred from the sizes)."""
    factor = max(round(hr_shape[0] / lr.shape[0]), 1)
    if abs(lr.shape[1] * factor - hr_shape[1]) >= factor or abs(lr.shape[0] * factor - hr_shape[0]) >= factor:
        raise AesopError(
            f'LR ({lr.shape[0]}×{lr.shape[1]}) is not HR ({hr_shape[0]}×{hr_shape[1]}) downscaled by an integer'
        )
    if box is None:
        return lr
    top, left, height, width = box
    return lr[top // factor : -(-(top + height) // factor), left // factor : -(-(left + width) // factor)]


def plot_loss_maps(
    maps: dict[str, np.ndarray],
    *,
    out: str | Path,
    lr: np.ndarray | None = None,
    color_scale: str = 'shared',
    vmax: float | None = None,
    cmap: str = 'inferno',
    panel_width: float = 3.0,
    dpi: int = 100,
) -> Path:
    """Draw the panels of Fig. 3 side by side and write a PNG of exactly figsize × dpi pixels."""
    if color_scale not in COLOR_SCALES:
        raise AesopError(f'--color-scale must be one of {COLOR_SCALES}, got {color_scale!r}')
    height, width = maps['hr'].shape[:2]
    panels = 4 + (lr is not None)
    fig = new_figure(width=panel_width * panels + 0.8, height=panel_width * height / width + 0.7)
    axes = fig.subplots(1, panels)
    if lr is not None:
        image_panel(axes[0], lr, f'LR ({lr.shape[0]}×{lr.shape[1]})', nearest=True)
    image_panel(axes[-4], maps['sr'], 'SR')
    image_panel(axes[-3], maps['hr'], 'HR')
    errors = (('pixel', '|SR − HR|', axes[-2]), ('aesop', '|ψ(SR) − ψ(HR)|', axes[-1]))
    shared = np.concatenate([maps['pixel'].ravel(), maps['aesop'].ravel()])
    for key, title, ax in errors:
        values = shared if color_scale == 'shared' else maps[key]
        top = vmax or float(np.percentile(values, 99.5)) or 1.0  # 1.0 when the map is all zero
        im = ax.imshow(maps[key], cmap=cmap, vmin=0.0, vmax=top, interpolation='nearest')
        ax.set_title(f'{title}  (mean {maps[key].mean():.4f})', fontsize=9)
        ax.set_axis_off()
        if color_scale == 'per-panel':
            fig.colorbar(im, ax=ax, shrink=0.8)
    if color_scale == 'shared':
        fig.colorbar(im, ax=[axes[-2], axes[-1]], shrink=0.8, label='shared scale')
    return save_figure(fig, out, dpi=dpi)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        **command_help(
            'Loss maps of paper Fig. 3: the pixel error |SR − HR| beside the AESOP error |ψ(SR) − ψ(HR)| (Eq. 8), '
            "both averaged over RGB (each map's mean, the per-pixel L1 loss, in its title), after panels of "
            '[LR,] SR and HR. ψ = D∘E is the frozen auto-encoder whose arch is in --ae-opt (an AE pretraining or '
            'AESOP training option file), with weights from --ae; H and W are cropped to multiples of its scale. '
            'The two maps share one colour scale (0 to the 99.5th percentile of both, or --vmax) unless '
            '--color-scale per-panel.',
            (
                '{prog} --sr results/demo_test_aesop/visualization/demo_val/coffee_demo_test_aesop.png '
                '--hr datasets/demo/val/HR/coffee.png --ae experiments/demo_ae/models/net_g_latest.pth '
                '--ae-opt options/demo/train_ae.yml -o figures/loss_maps.png',
                '{prog} --sr SR.png --hr HR.png --lr LR.png '
                '--ae experiments/train_AESOP_AE_RRDB/models/net_g_latest.pth --ae-opt options/train_ae.yml '
                '--crop 100,200,128,128 -o loss_maps.png',
            ),
        )
    )
    parser.add_argument('--sr', type=Path, required=True, help='super-resolved image')
    parser.add_argument('--hr', type=Path, required=True, help='ground-truth HR image (same size as --sr)')
    parser.add_argument('--lr', type=Path, help='LR input, shown as an extra panel (optional)')
    add_autoencoder_arguments(parser, required=True)
    parser.add_argument('--crop', help='zoom on top,left,height,width (HR pixels)')
    parser.add_argument('--margin', type=int, default=32, help='context (HR pixels) ψ sees around --crop (default: 32)')
    parser.add_argument(
        '--color-scale', choices=COLOR_SCALES, default='shared', help='of the two error maps (default: shared)'
    )
    parser.add_argument('--vmax', type=float, help='top of the colour scale (default: 99.5th percentile)')
    parser.add_argument('--cmap', default='inferno', help='matplotlib colour map of the error maps')
    parser.add_argument('--panel-width', type=float, default=3.0, help='inches per panel (default: 3)')
    parser.add_argument('--dpi', type=int, default=100, help='resolution of the PNG (default: 100)')
    parser.add_argument(
        '-o', '--out', type=Path, default=Path('loss_maps.png'), help='output PNG (default: %(default)s)'
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    box = parse_box(args.crop) if args.crop else None
    sr, hr = read_image(args.sr), read_image(args.hr)
    lr = read_image(args.lr) if args.lr else None
    net = load_autoencoder(args.ae_opt, args.ae, param_key=args.ae_key)
    maps = loss_maps(net, sr, hr, box=box, margin=args.margin)
    lr = lr_region(lr, hr.shape, box) if lr is not None else None
    out = plot_loss_maps(
        maps,
        out=args.out,
        lr=lr,
        color_scale=args.color_scale,
        vmax=args.vmax,
        cmap=args.cmap,
        panel_width=args.panel_width,
        dpi=args.dpi,
    )
    print(f'mean |SR − HR| = {maps["pixel"].mean():.5f}, mean |ψ(SR) − ψ(HR)| = {maps["aesop"].mean():.5f}')
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(cli_main(main))
