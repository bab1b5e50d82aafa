"""Helpers shared by the figure and data scripts under ``scripts/`` (paper Figs. 3, 4 and 6).

Images are handled as float32 ``(H, W, 3)`` RGB arrays in [0, 1]; ψ = D∘E is built, loaded and
frozen by :func:`aesop.archs.autoencoder_arch.load_frozen_autoencoder` (the one place that does it) and runs on
CUDA when available, else on the CPU. Figures are drawn on a bare :class:`matplotlib.figure.Figure`
with the Agg canvas, so no GUI backend and no global pyplot state are involved.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from basicsr.utils.color_util import rgb2ycbcr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from aesop.archs.autoencoder_arch import autoencoder_arch, load_frozen_autoencoder
from aesop.errors import AesopError
from aesop.losses.fidelity_loss import AesopLowPassLoss
from aesop.options import load_options
from aesop.utils import default_device, project_root
from aesop.weights import write_result

Box = tuple[int, int, int, int]  # (top, left, height, width) in pixels


def resolve_path(path: str | Path) -> Path:
    """``path`` as given if it exists, else relative to the project root (for defaults like ``options/…``)."""
    path = Path(path).expanduser()
    if path.exists() or path.is_absolute():
        return path
    in_root = project_root() / path
    return in_root if in_root.exists() else path


def read_image(path: str | Path) -> np.ndarray:
    """An image file as float32 ``(H, W, 3)`` RGB in [0, 1] (8/16 bit; grey repeated, alpha dropped).

    Raises:
        AesopError: missing or unreadable file.
    """
    from aesop.inference import read_image as read_any

    path = Path(path)
    if not path.is_file():
        raise AesopError(f'image not found: {path}')
    try:
        img, _ = read_any(path)
    except AesopError as err:
        raise AesopError(f'cannot read image {path}: {err}') from err
    return np.ascontiguousarray(np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[..., :3])


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right of an ``(H, W, …)`` array so H and W are multiples of ``scale``."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def parse_box(text: str) -> Box:
    """Parse ``'top,left,height,width'`` (pixels) for ``--crop``."""
    try:
        top, left, height, width = (int(v) for v in text.split(','))
    except ValueError as err:
        raise AesopError(f'--crop must be four integers top,left,height,width; got {text!r}') from err
    if top < 0 or left < 0 or height <= 0 or width <= 0:
        raise AesopError(f'--crop needs top, left >= 0 and height, width > 0; got {text!r}')
    return top, left, height, width


def check_box(box: Box, shape: Sequence[int], *, what: str) -> Box:
    """Raise unless ``box`` lies inside an image of ``shape`` ``(H, W, …)``."""
    top, left, height, width = box
    if top + height > shape[0] or left + width > shape[1]:
        raise AesopError(
            f'--crop {top},{left},{height},{width} goes outside {what} of size {shape[0]}×{shape[1]} (H×W)'
        )
    return box


def crop(img: np.ndarray, box: Box | None) -> np.ndarray:
    """``img[top:top+height, left:left+width]``; the whole image for ``box=None``."""
    if box is None:
        return img
    top, left, height, width = box
    return img[top : top + height, left : left + width]


def load_autoencoder(
    option_file: str | Path,
    checkpoint: str | Path,
    *,
    param_key: str = 'params_ema',
    device: torch.device | None = None,
) -> nn.Module:
    """The frozen ψ = D∘E (Eq. 8) whose arch is in ``option_file``, from ``checkpoint[param_key]``.

    ``option_file`` is any BasicSR option file holding ψ's arch (:func:`aesop.archs.autoencoder_arch.autoencoder_arch`:
    AE pretraining files, AESOP training files); relative paths fall back to the project root.
    """
    option_file = resolve_path(option_file)
    if not option_file.is_file():
        raise AesopError(f'option file not found: {option_file} (--ae-opt)')
    opt = load_options(option_file)  # validated; the release's files too
    net = load_frozen_autoencoder(autoencoder_arch(opt), resolve_path(checkpoint), param_key=param_key, option='--ae')
    return net.to(device or default_device())


def autoencoder_scale(net: nn.Module) -> int:
    """The factor H and W of ψ's input must be multiples of (its encoder's downscaling)."""
    return int(getattr(net, 'scale', 4))


@torch.inference_mode()
def autoencode(net: nn.Module, img: np.ndarray) -> np.ndarray:
    """ψ(img) for an ``(H, W, 3)`` array (H, W multiples of the AE scale), on ψ's device; not clipped."""
    device = next(net.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float().to(device)
    return net(x)[0].permute(1, 2, 0).float().cpu().numpy()


def autoencode_region(net: nn.Module, img: np.ndarray, box: Box | None, *, margin: int = 32) -> np.ndarray:
    """ψ(img) inside ``box`` (the whole image for ``None``), computed on a window around it.

    The window adds ``margin`` pixels of context on each side (within the image) and its corners
    are aligned to the AE scale in image coordinates, so the encoder's pixel-unshuffle sees the
    same pixel grid as on the whole image; ψ of a big image is thus never run in full just to zoom.
    ``img`` must already be mod-cropped to the AE scale.
    """
    if box is None:
        return autoencode(net, img)
    s = autoencoder_scale(net)
    top, left, height, width = box
    h, w = img.shape[:2]
    y0, x0 = max(top - margin, 0) // s * s, max(left - margin, 0) // s * s
    y1 = min(math.ceil((top + height + margin) / s) * s, h)
    x1 = min(math.ceil((left + width + margin) / s) * s, w)
    out = autoencode(net, img[y0:y1, x0:x1])
    return out[top - y0 : top - y0 + height, left - x0 : left - x0 + width]


def luminance(img: np.ndarray) -> np.ndarray:
    """Y of YCbCr (ITU-R BT.601, as the paper's PSNR-Y; basicsr's ``rgb2ycbcr``) of RGB in [0, 1]."""
    return rgb2ycbcr(img[..., :3].astype(np.float32), y_only=True)


def log_spectrum(channel: np.ndarray, *, hann: bool = False) -> np.ndarray:
    """``log(1 + |FFT₂(x)|)`` of an ``(H, W)`` array, zero frequency moved to ``(H // 2, W // 2)`` (Fig. 6).

    With ``hann``, ``x`` is first multiplied by a 2-D Hann window, which removes the cross that the
    jump between opposite borders (the FFT's periodic extension) adds to the spectrum.
    """
    x = channel.astype(np.float64)
    if hann:
        x = x * np.outer(np.hanning(x.shape[0]), np.hanning(x.shape[1]))
    return np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(x))))


def gaussian_lowpass(img: np.ndarray, *, sigma: float) -> np.ndarray:
    """Gaussian low-pass of an ``(H, W, 3)`` array: the transform of the Tab. 5(b) baseline loss."""
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float()
    return AesopLowPassLoss(filter='gaussian', sigma=sigma).transform(x)[0].permute(1, 2, 0).numpy()


def new_figure(*, width: float, height: float) -> Figure:
    """A figure of ``width`` × ``height`` inches with constrained layout, on the Agg canvas."""
    fig = Figure(figsize=(width, height), layout='constrained')
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path, *, dpi: int) -> Path:
    """Write ``fig`` as a PNG of exactly figsize × dpi pixels, atomically (:func:`aesop.weights.write_result`: the
    folder made, a path in the way or a full disk one line, an earlier figure kept whole)."""
    path = Path(path)
    write_result(path, lambda f: fig.savefig(f, dpi=dpi, format='png'))
    return path


def image_panel(ax, img: np.ndarray, title: str, *, nearest: bool = False) -> None:
    """An RGB image in [0, 1] without ticks."""
    ax.imshow(np.clip(img, 0, 1), interpolation='nearest' if nearest else 'antialiased')
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
