"""Super-resolve user images with a trained generator: any size, tiled, 8/16-bit, grey and alpha.

The command line is ``aesop-infer`` (:func:`main`)::

    aesop-infer -i photos/ -o results/sr --opt options/test_rrdb.yml --tile 256
    aesop-infer -i lr.png -o out/ --weights net_g.pth \\
        --arch '{type: RRDBNet, num_in_ch: 3, num_out_ch: 3, num_feat: 64, num_block: 23}'
    aesop-infer -i lr.png -o out/ --weights 4x_model.pth   # the arch detected (spandrel)

The core is :func:`aesop.archs.tiling.upscale` (a tensor in, a tensor out; validation's ``val.tile``
uses it too): the input is mirror-padded to what the arch needs (SwinIR's ``window_size``),
optionally cut into overlapping tiles, and the output cropped back to ``(H * scale, W * scale)``.
Here: loading the network (from options, inline arch options, or detected from the weights),
reading and writing images of every kind, and the command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from torch import nn
from tqdm import tqdm

from aesop.archs.sizes import input_multiple
from aesop.archs.tiling import half_dtype, network_device, run_padded, upscale
from aesop.cli import ArgumentParser, cli_main
from aesop.commands import command_help
from aesop.data.scan import folder_images
from aesop.errors import AesopError
from aesop.options import OptionLoader, load_options
from aesop.utils import IMAGE_EXTENSIONS, check_output_path, default_device, not_a_file, project_root
from aesop.weights import atomic_write, freeze, load_weights, make_folder, read_checkpoint, select_state_dict

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma of R, G, B (as cv2's RGB2GRAY)


class ImageReadError(AesopError):
    """An input image that cannot be decoded (or has an unsupported pixel type): skipped, not fatal."""


@dataclass(frozen=True)
class Generator:
    """A loaded SR network and what inference needs to know about it.

    Attributes:
        net: the network, in eval mode, frozen, on its device.
        scale: upscaling factor: (N, 3, H, W) in, (N, C, H * scale, W * scale) out.
        window: H and W of the input must be multiples of this (SwinIR's ``window_size``);
            ``None``: any size.
        name: the arch's ``type``, for messages.
        weights: the checkpoint it was loaded from, for messages.
        arch: the arch options it was built from (``None`` for a network spandrel built).
        min_side: the shortest side, in px, the network takes once padded to ``window`` (measured by
            :func:`_checked`): 1 for most; spandrel's SwinIR pads to its window inside by reflection, which needs
            more px than it adds, so it takes nothing shorter than its window. Shorter inputs are padded up to it.
    """

    net: nn.Module
    scale: int
    window: int | None
    name: str
    weights: str = ''
    arch: dict | None = None
    min_side: int = 1


def load_generator(
    arch: Mapping,
    weights: str | Path,
    *,
    scale: int | None,
    param_key: str | None = 'params',
    option: str | None = None,
    device: torch.device | None = None,
) -> Generator:
    """Build ``arch`` with basicsr's registry, load ``weights[param_key]`` strictly and freeze it.

    Args:
        arch: ``network_g``-style options with ``type``; takes RGB input (3 channels).
        weights: checkpoint file (BasicSR's ``{'params': …, 'params_ema': …}``).
        scale: the arch's upscaling factor (checked here on a small zero input); ``None``: measured
            on it (1 for the auto-encoder ψ).
        param_key: key of the state dict in the checkpoint; a missing ``params_ema`` falls back
            to ``params``; ``None``: the checkpoint is the state dict itself.
        option: the option key that named ``weights``, for error messages.
        device: where the network runs; default :func:`default_device`.

    Raises:
        AesopError: unknown arch type or option, missing/unreadable checkpoint, missing key,
            tensors that don't fit, a network that does not take RGB or does not upscale by ``scale``.
    """
    from basicsr.archs import build_network

    from aesop.options import check_components

    arch = deepcopy(dict(arch))
    if 'type' not in arch:
        raise AesopError(f'the arch options need a type, e.g. {{type: RRDBNet, …}}; got {arch}')
    if scale is not None and scale < 1:
        raise AesopError(f'scale must be a positive integer, got {scale}')
    check_components({'network_g': arch, 'scale': scale or arch.get('scale') or 4})  # None: measured (ψ: ×1)
    in_channels = arch.get('num_in_ch', arch.get('in_chans', 3))
    if in_channels != 3:
        raise AesopError(f'inference needs a network with 3 input channels (RGB); {arch["type"]} has {in_channels}')
    try:
        net = build_network(deepcopy(arch))
    except (TypeError, ValueError, KeyError) as err:
        raise AesopError(f'cannot build {arch["type"]} from {arch}: {err}') from err
    load_weights(net, weights, param_key=param_key, strict=True, fallback=True, option=option)
    net = freeze(net).to(device or default_device())
    window = input_multiple(arch)
    return _checked(Generator(net=net, scale=scale, window=window, name=arch['type'], weights=str(weights), arch=arch))


def _checked(gen: Generator) -> Generator:
    """``gen`` after one small forward (a wrong scale fails here, before any image is read); a ``None``
    scale is measured, and so is the shortest side it takes (:attr:`Generator.min_side`)."""
    size = max(gen.window or 1, 8)
    probe = torch.zeros(1, 3, size, size)
    if gen.scale is None:
        with torch.no_grad():
            out = gen.net(probe.to(network_device(gen.net, probe.device)))
        gen = replace(gen, scale=max(out.shape[-1] // size, 1))
    run_padded(gen.net, probe, scale=gen.scale, window=gen.window, half=False)
    return replace(gen, min_side=_min_side(gen, size))


def _min_side(gen: Generator, works: int) -> int:
    """The shortest side (1, 2, 4, …, else ``works``, a size known to run) on which ``gen`` runs once padded to its
    window: a network that pads to a multiple by reflection inside (spandrel's SwinIR, HAT, …) fails on a side
    under half its multiple, and a 1×1 image would end in a traceback."""
    side = 1
    while side < works:
        try:
            run_padded(gen.net, torch.zeros(1, 3, side, side), scale=gen.scale, window=gen.window, half=False)
            return side
        except Exception:  # e.g. "Padding size should be less than the corresponding input dimension", or an assert
            side *= 2
    return works


def detect_generator(
    weights: str | Path, *, param_key: str | None = 'params_ema', device: torch.device | None = None
) -> Generator:
    """A checkpoint's network without its options: this project's ψ (:func:`aesop.archs.detect.detect_arch`),
    else what spandrel recognises (ESRGAN/RRDBNet in both layouts, SwinIR, DRCT, and the rest it knows).

    spandrel's network runs as it is, padded to spandrel's ``multiple_of`` like ours (mirror): it
    differs from this project's own SwinIR/DRCT only by padding (reflect in spandrel's models; DRCT
    to multiples of 16 whatever its window), so for exact agreement with validation pass ``--opt``.

    Raises:
        AesopError: the weights cannot be read, or neither recognises them.
    """
    import spandrel

    from aesop.archs.detect import detect_arch

    state_dict = select_state_dict(
        read_checkpoint(weights, option='--weights'), path=weights, param_key=param_key, fallback=True
    )
    arch = detect_arch(state_dict)
    if arch is not None:
        gen = load_generator(arch, weights, scale=None, param_key=param_key, option='--weights', device=device)
        inline = yaml.safe_dump(arch, default_flow_style=True, width=1 << 16).strip()
        print(f'detected {arch["type"]} (this project): {inline}', file=sys.stderr)
        return gen
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state_dict)
    except spandrel.UnsupportedModelError as err:
        raise AesopError(
            f'cannot tell the architecture of {weights}: neither spandrel nor this project knows its keys '
            f'(e.g. {next(iter(state_dict), "none")}); pass --arch or --opt'
        ) from err
    except (RuntimeError, KeyError, ValueError, AssertionError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AesopError(
            f'spandrel recognised {weights} but could not load it ({first}); pass --arch or --opt'
        ) from err
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.input_channels != 3:
        raise AesopError(f'{weights} is a {descriptor.architecture.name} network, not a 3-channel image model')
    multiple = descriptor.size_requirements.multiple_of
    name = descriptor.architecture.name
    net = freeze(descriptor.model).to(device or default_device())
    gen = Generator(net=net, scale=descriptor.scale, window=multiple if multiple > 1 else None, name=name)
    gen = _checked(replace(gen, weights=str(weights)))
    short = f', shorter sides padded to {gen.min_side} px' if gen.min_side > 1 else ''
    print(
        f'detected {name} x{descriptor.scale} with spandrel (inputs padded to multiples of {multiple}{short})',
        file=sys.stderr,
    )
    return gen


def generator_from_options(
    option_file: str | Path,
    *,
    weights: str | Path | None = None,
    param_key: str | None = None,
    scale: int | None = None,
    measure_scale: bool = False,
    device: torch.device | None = None,
) -> Generator:
    """The ``network_g`` of a BasicSR option file, with its ``path.pretrain_network_g`` weights.

    Args:
        option_file: a test or train option file (YAML); ``scale``, ``network_g`` and
            ``path.pretrain_network_g`` / ``path.param_key_g`` (default ``params``) are read.
            A relative weights path is relative to the project root (:func:`aesop.utils.project_root`).
        weights: use this checkpoint instead of ``path.pretrain_network_g``.
        param_key: use this key instead of ``path.param_key_g``.
        scale: must equal the file's ``scale`` if given.
        measure_scale: without ``scale``, measure the network's own factor instead of taking the
            file's (the auto-encoder ψ of an AE option file is ×1).
        device: where the network runs; default :func:`default_device`.
    """
    option_file = Path(option_file).expanduser()
    opt = load_options(option_file, required=('network_g',))  # validated; the release's names too
    file_scale = opt.get('scale', 4)
    if scale is not None and scale != file_scale:
        raise AesopError(f'--scale {scale} differs from scale: {file_scale} in {option_file}')
    paths = opt.get('path') or {}
    option = None
    if weights is None:
        weights, option = paths.get('pretrain_network_g'), 'path.pretrain_network_g'
        if not weights:
            raise AesopError(f'option file {option_file} sets no path.pretrain_network_g: pass --weights')
        weights = Path(weights).expanduser()
        weights = weights if weights.is_absolute() else project_root() / weights
    if param_key is None:
        param_key = paths.get('param_key_g', 'params')
    return load_generator(
        opt['network_g'],
        weights,
        scale=None if measure_scale and scale is None else int(file_scale),
        param_key=param_key,
        option=option,
        device=device,
    )


def read_image(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an 8- or 16-bit image (PNG, JPEG, TIFF, BMP, WebP), grey, RGB or RGBA.

    JPEGs are turned upright by their EXIF orientation.

    Returns:
        (H, W, C) float32 in [0, 1] with C = 1 (grey), 3 (RGB) or 4 (RGBA), and the bit depth (8 or 16).

    Raises:
        ImageReadError: the file cannot be read or decoded, or holds another pixel type.
    """
    path = Path(path)
    if what := not_a_file(path):  # never opened: a named pipe would block forever
        raise ImageReadError(what)
    try:
        data = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: that fails silently on some paths
    except OSError as err:
        raise ImageReadError(f'cannot read: {err.strerror or err}') from err
    if data.size == 0:
        raise ImageReadError('empty file')
    is_jpeg = data[:2].tobytes() == b'\xff\xd8'  # never has alpha; IMREAD_UNCHANGED would ignore EXIF rotation
    image = cv2.imdecode(data, cv2.IMREAD_ANYCOLOR if is_jpeg else cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageReadError('not an image or corrupt')
    if image.dtype == np.uint8:
        depth, image = 8, image.astype(np.float32) / 255
    elif image.dtype == np.uint16:
        depth, image = 16, image.astype(np.float32) / 65535
    else:
        raise ImageReadError(f'unsupported pixel type {image.dtype} (8- or 16-bit images only)')
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    elif image.shape[2] != 1:
        raise ImageReadError(f'unsupported number of channels: {image.shape[2]}')
    return image, depth


def write_image(path: str | Path, image: np.ndarray, *, bit_depth: int) -> None:
    """Write (H, W, C) in [0, 1] (C = 1, 3 RGB or 4 RGBA) as an 8- or 16-bit PNG, atomically: encoded first, then
    written to a temporary file renamed over ``path`` (:func:`aesop.weights.atomic_write`), so that a full disk or
    a kill leaves the previous ``path`` (or none), never a truncated image.

    Raises:
        AesopError: the image cannot be encoded or the file written (naming it; the previous one kept).
    """
    if bit_depth not in (8, 16):
        raise ValueError(f'bit_depth must be 8 or 16, got {bit_depth}')
    peak, dtype = (255, np.uint8) if bit_depth == 8 else (65535, np.uint16)
    image = np.clip(image, 0, 1)
    if image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode('.png', np.round(image * peak).astype(dtype))
    if not ok:
        raise AesopError(f'cannot encode {path} as PNG')
    atomic_write(path, buf.tobytes())


def upscale_image(
    gen: Generator, image: np.ndarray, *, tile: int = 0, tile_pad: int = 16, half: bool = False
) -> np.ndarray:
    """Super-resolve one image as read by :func:`read_image`.

    Grey is run as 3 channels and turned back into grey (BT.601 luma); the RGB of RGBA goes
    through the network and its alpha is upscaled with bicubic interpolation.

    Args:
        gen: the loaded network.
        image: (H, W, C) float32 in [0, 1], C = 1, 3 or 4.
        tile: tile size in input px (0: whole image); see :func:`upscale`.
        tile_pad: context px around each tile.
        half: fp16 (CUDA) / bf16 (CPU) autocast.

    Returns:
        (H * scale, W * scale, C) float32 in [0, 1].
    """
    h, w, channels = image.shape
    rgb = np.repeat(image, 3, axis=2) if channels == 1 else image[..., :3]
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    out = upscale(
        gen.net, x, scale=gen.scale, tile=tile, tile_pad=tile_pad, window=gen.window, half=half, min_side=gen.min_side
    )
    out = out[0].permute(1, 2, 0).numpy()
    if channels == 1:
        return (out[..., :3] @ np.asarray(GRAY_WEIGHTS, dtype=np.float32))[..., None]
    if channels == 4:
        size = (w * gen.scale, h * gen.scale)
        alpha = cv2.resize(image[..., 3], size, interpolation=cv2.INTER_CUBIC)
        return np.concatenate([out, np.clip(alpha, 0, 1)[..., None]], axis=2)
    return out


def list_images(path: str | Path) -> list[Path]:
    """``path`` itself if it is a file, else the images (by extension) directly in the folder, sorted.

    In a folder, an image name that is not a regular file (a broken or looping symlink, a named pipe, a socket, a
    device; not a folder) is listed too: :func:`read_image` refuses it without opening it, and the command line
    skips it by name with exit status 1, as a corrupt image (never silently, never blocking on a pipe).
    """
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if (what := not_a_file(path)) not in (None, 'a folder'):
        raise AesopError(f'-i {path} is {what}: give an image or a folder of images')
    if not path.is_dir():
        raise AesopError(f'input not found: {path}')
    images, skipped = folder_images(path, '-i')  # what is no file is listed too (read_image names it): not folders
    images = sorted([*images, *(entry for entry, _ in skipped if not entry.is_dir())])
    if not images:
        raise AesopError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in {path}')
    return images


def output_paths(inputs: Sequence[Path], out_dir: Path, suffix: str) -> list[Path]:
    """``out_dir / f'{stem}{suffix}.png'`` for each input; refuses collisions and overwriting an input."""
    outputs = [out_dir / f'{p.stem}{suffix}.png' for p in inputs]
    seen: dict[Path, Path] = {}
    for src, dst in zip(inputs, outputs):
        if dst in seen:
            raise AesopError(f'{seen[dst].name} and {src.name} would both be written to {dst}: use separate runs')
        seen[dst] = src
        if os.path.realpath(dst) == os.path.realpath(src):  # not resolve(): a symlink loop raises there
            raise AesopError(f'{dst} would overwrite its input: choose another -o or a --suffix')
        if (what := not_a_file(dst)) is not None and not os.path.islink(dst):  # a link is replaced by the image
            raise AesopError(f'{dst} is {what}: it cannot be replaced by the output image of {src.name}')
    return outputs


def build_parser() -> argparse.ArgumentParser:
    """The ``aesop-infer`` command line; usage errors raise :class:`AesopError`."""

    parser = ArgumentParser(
        **command_help(
            'Super-resolve images of any size with a trained generator, tiled if asked, and write '
            'OUT_DIR/<stem><suffix>.png (8-bit in: 8-bit PNG; 16-bit in: 16-bit PNG; grey stays grey; alpha is '
            'upscaled bicubically). The arch comes from --opt (an option file), --arch (inline YAML) or, with '
            "--weights alone, from the checkpoint (spandrel; this project's ψ and RRDBNet). Exit status 0: all "
            'written; 1: unreadable inputs were skipped (corrupt images, broken or looping symlinks, named pipes: '
            'listed at the end); 2: bad arguments, options or weights, or an output that cannot be written. Each '
            'image is written whole or not at all (a temporary file renamed).',
            (
                '{prog} -i photos/ -o out/ --opt options/test_rrdb.yml --tile 256 --tile-pad 16',
                "{prog} -i img.png -o out/ --arch '{type: RRDBNet, num_in_ch: 3, num_out_ch: 3}' --weights G.pth",
                '{prog} -i img.png -o out/ --weights 4x_model.pth --half',
            ),
        )
    )
    parser.add_argument('-i', '--input', required=True, type=Path, help='an image or a folder of images')
    parser.add_argument('-o', '--output', required=True, type=Path, help='output folder (created)')
    add_network_arguments(parser)
    parser.add_argument('--tile', type=int, default=0, help='tile size in input px, e.g. 256 (default 0: whole image)')
    parser.add_argument('--tile-pad', type=int, default=16, help='context px around each tile (default 16)')
    parser.add_argument('--half', action='store_true', help='autocast: fp16 on CUDA, bf16 on the CPU')
    parser.add_argument('--suffix', default='', help='appended to each output stem (default: none)')
    return parser


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """``--opt`` / ``--arch`` / neither (detected), ``--weights``, ``--param-key``, ``--scale`` (infer, export)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        '--opt', type=Path, help='BasicSR option file: its network_g, scale, path.pretrain_network_g and param_key_g'
    )
    source.add_argument('--arch', help="arch options as inline YAML, e.g. '{type: RRDBNet, num_in_ch: 3, …}'")
    parser.add_argument(
        '--weights',
        type=Path,
        help='checkpoint (.pth or .safetensors); overrides the --opt one; alone, its arch is detected (spandrel, ψ)',
    )
    parser.add_argument(
        '--param-key',
        help="checkpoint key of the weights (default: params_ema; with --opt the file's param_key_g); "
        'a missing params_ema falls back to params',
    )
    parser.add_argument(
        '--scale', type=int, help='upscaling factor of the arch (with --arch; default: its scale/upscale, else 4)'
    )


def load_from_args(args: argparse.Namespace, *, measure_scale: bool = False) -> Generator:
    """The network that the parsed command line (:func:`add_network_arguments`) names.

    ``measure_scale``: with ``--opt``/``--arch`` and no ``--scale``, the scale is measured on the
    network (export: ψ is ×1) instead of read from the options.
    """
    if args.opt is not None:
        return generator_from_options(
            args.opt, weights=args.weights, param_key=args.param_key, scale=args.scale, measure_scale=measure_scale
        )
    if args.weights is None:
        raise AesopError('give --weights (its arch is detected), or --opt, or --arch with --weights')
    if args.arch is None:
        return detect_generator(args.weights, param_key=args.param_key or 'params_ema')
    try:
        arch = yaml.load(args.arch, Loader=OptionLoader)  # noqa: S506  (a safe loader: 1e-3 a float, as in a file)
    except yaml.YAMLError as err:
        raise AesopError(f'--arch is not valid YAML: {" ".join(str(err).split())}') from err
    if not isinstance(arch, dict):
        raise AesopError(f"--arch must be a YAML mapping such as '{{type: RRDBNet, …}}', got {args.arch!r}")
    scale = args.scale or (None if measure_scale else arch.get('upscale') or arch.get('scale') or 4)
    param_key = args.param_key or 'params_ema'
    return load_generator(
        arch, args.weights, scale=int(scale) if scale else None, param_key=param_key, option='--weights'
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    0: every image written; 1: some inputs were skipped (unreadable, corrupt, a broken or looping symlink, a
    named pipe or device under an image name, out of memory), listed by name at the end; 2: bad arguments,
    options or weights, or an output that cannot be written (one line ``aesop: error: …``, after which the
    images already written stay, each complete; ``AESOP_TRACEBACK=1`` raises instead).
    """
    return cli_main(_run, argv)


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.tile < 0 or args.tile_pad < 0:
        raise AesopError(f'--tile and --tile-pad must be >= 0, got {args.tile} and {args.tile_pad}')
    check_output_path(args.output, option='-o', folder=True, give='a folder for the output images')
    inputs = list_images(args.input)
    outputs = output_paths(inputs, args.output, args.suffix)
    gen = load_from_args(args)
    device = network_device(gen.net, default_device())
    precision = f', {half_dtype(device)} autocast'.replace('torch.', '') if args.half else ''
    tiling = f'tiles of {args.tile} px (+{args.tile_pad})' if args.tile else 'whole images'
    print(f'{gen.name} x{gen.scale} on {device}, {tiling}{precision}: {len(inputs)} image(s)', file=sys.stderr)
    make_folder(args.output, '-o')
    skipped, written = [], 0
    for src, dst in zip(tqdm(inputs, unit='image', desc='infer'), outputs):
        try:
            image, depth = read_image(src)
            sr = upscale_image(gen, image, tile=args.tile, tile_pad=args.tile_pad, half=args.half)
            if not np.isfinite(sr).all():  # a black image written with exit 0 would hide broken weights
                raise AesopError(f'{src}: the output of {gen.name} from {gen.weights} is not finite (NaN or inf)')
        except ImageReadError as err:
            skipped.append(f'{src} ({err})')
            continue
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            skipped.append(f'{src} (out of GPU memory: use --tile, e.g. --tile 256)')
            continue
        try:
            write_image(dst, sr, bit_depth=depth)  # atomic: a full disk keeps the previous file, and stops here
        except AesopError as err:
            raise AesopError(f'{err}; {written} of {len(inputs)} image(s) written to {args.output} before') from err
        written += 1
    print(f'wrote {written} image(s) to {args.output}', file=sys.stderr)
    if skipped:
        plural = 'file' if len(skipped) == 1 else 'files'
        print(f'aesop: skipped {len(skipped)} {plural}: ' + '; '.join(skipped), file=sys.stderr)
        return 1
    return 0
