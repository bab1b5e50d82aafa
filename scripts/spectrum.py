"""Spectra of paper Fig. 6: what ψ = D∘E keeps of an image, against a Gaussian low-pass filter.

Three panels on one colour scale: log(1 + |FFT|) (zero frequency at the centre) of the Y channel
(BT.601; for a grey image, its grey level up to an affine map) of the image, of ψ(image) and of a Gaussian low-pass
of it (σ = --sigma HR pixels, the transform of the Tab. 5(b) baseline loss, AesopLowPassLoss).
ψ is the frozen auto-encoder whose arch is in --ae-opt, with weights from --ae; H and W are
cropped to multiples of its scale. --hann windows each channel first (no cross from the borders).

Examples: ``python scripts/spectrum.py --help``.
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
    gaussian_lowpass,
    load_autoencoder,
    log_spectrum,
    luminance,
    mod_crop,
    new_figure,
    parse_box,
    read_image,
    save_figure,
)


def spectra(
    net: nn.Module, img: np.ndarray, *, sigma: float = 1.5, box: Box | None = None, margin: int = 32, hann: bool = False
) -> dict:
    """Log-magnitude spectra of the Y channel of ``img``, ψ(img) and its Gaussian low-pass (Fig. 6).

    Args:
        net: the frozen auto-encoder ψ.
        img: (H, W, 3) RGB in [0, 1]; mod-cropped to ψ's scale here.
        sigma: standard deviation of the low-pass, in pixels.
        box: region (top, left, height, width) to analyse; ψ sees ``margin`` pixels around it.
        hann: apply a Hann window before the FFT (:func:`aesop.figures.log_spectrum`).

    Returns:
        ``{'image': S, 'psi': S, 'lowpass': S}``, each an (h, w) array.
    """
    scale = autoencoder_scale(net)
    img = mod_crop(img, scale)
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise AesopError(f'image smaller than the auto-encoder scale {scale}')
    if box is not None:
        check_box(box, img.shape, what=f'the image (cropped to multiples of {scale})')
    psi = autoencode_region(net, img, box, margin=margin)
    region = crop(img, box)
    lowpass = gaussian_lowpass(region, sigma=sigma)
    return {
        name: log_spectrum(luminance(x), hann=hann)
        for name, x in (('image', region), ('psi', psi), ('lowpass', lowpass))
    }


def plot_spectra(
    spec: dict[str, np.ndarray],
    *,
    out: str | Path,
    sigma: float,
    cmap: str = 'viridis',
    panel: float = 3.2,
    dpi: int = 100,
) -> Path:
    """Three spectra side by side on one shared colour scale; a PNG of exactly figsize × dpi pixels."""
    height, width = spec['image'].shape
    fig = new_figure(width=3 * panel + 0.8, height=panel * height / width + 0.6)
    axes = fig.subplots(1, 3)
    vmin = min(float(s.min()) for s in spec.values())
    vmax = max(float(s.max()) for s in spec.values())
    titles = {'image': 'image', 'psi': 'ψ(image) = D(E(image))', 'lowpass': f'Gaussian low-pass, σ = {sigma:g}'}
    for ax, (key, title) in zip(axes, titles.items()):
        im = ax.imshow(spec[key], cmap=cmap, vmin=vmin, vmax=vmax, interpolation='antialiased')
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.colorbar(im, ax=list(axes), shrink=0.8, label='log(1 + |FFT|), Y channel')
    return save_figure(fig, out, dpi=dpi)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        **command_help(
            'Spectra of paper Fig. 6: what ψ = D∘E keeps of an image, against a Gaussian low-pass filter. Three '
            'panels on one colour scale: log(1 + |FFT|) of the Y channel of the image, of ψ(image) and of a '
            'Gaussian low-pass of it (σ = --sigma HR pixels, the Tab. 5(b) baseline). ψ is the frozen auto-encoder '
            'whose arch is in --ae-opt, with weights from --ae; H and W are cropped to multiples of its scale. '
            '--hann windows each channel first (no cross from the borders).',
            (
                '{prog} --image datasets/demo/val/HR/coffee.png --ae experiments/demo_ae/models/net_g_latest.pth '
                '--ae-opt options/demo/train_ae.yml --hann -o figures/spectrum.png',
                '{prog} --image HR.png --ae experiments/train_AESOP_AE_RRDB/models/net_g_latest.pth '
                '--ae-opt options/train_ae.yml --sigma 1.5 --crop 0,0,256,256 -o spectrum.png',
            ),
        )
    )
    parser.add_argument('--image', type=Path, required=True, help='input image (e.g. an HR image)')
    add_autoencoder_arguments(parser, required=True)
    parser.add_argument('--sigma', type=float, default=1.5, help='Gaussian σ in pixels (default: 1.5)')
    parser.add_argument('--crop', help='analyse only top,left,height,width (pixels)')
    parser.add_argument('--margin', type=int, default=32, help='context (pixels) ψ sees around --crop (default: 32)')
    parser.add_argument('--hann', action='store_true', help='Hann window before the FFT (no border cross)')
    parser.add_argument('--cmap', default='viridis', help='matplotlib colour map (default: viridis)')
    parser.add_argument('--dpi', type=int, default=100, help='resolution of the PNG (default: 100)')
    parser.add_argument(
        '-o', '--out', type=Path, default=Path('spectrum.png'), help='output PNG (default: %(default)s)'
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.sigma <= 0:
        raise AesopError(f'--sigma must be > 0, got {args.sigma}')
    box = parse_box(args.crop) if args.crop else None
    img = read_image(args.image)
    net = load_autoencoder(args.ae_opt, args.ae, param_key=args.ae_key)
    spec = spectra(net, img, sigma=args.sigma, box=box, margin=args.margin, hann=args.hann)
    out = plot_spectra(spec, out=args.out, sigma=args.sigma, cmap=args.cmap, dpi=args.dpi)
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(cli_main(main))
