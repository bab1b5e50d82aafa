"""Checkpoint files: the one place that reads, checks, loads and writes them.

Everything here loads with ``weights_only=True`` (no arbitrary unpickling) onto the CPU first,
and turns the usual failures (missing file, missing key, tensors that don't fit the arch) into
one-line :class:`~aesop.errors.AesopError` messages that name the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

import torch
from torch import nn

from aesop.errors import AesopError
from aesop.utils import check_output_path, not_a_file

logger = logging.getLogger('basicsr')

# where the published checkpoints that option files name come from (said when one is missing at start-up)
_ESRGAN = 'the ESRGAN release, https://github.com/xinntao/ESRGAN (Google Drive link in its README)'
_SWINIR = 'https://github.com/JingyunLiang/SwinIR/releases/download/v0.0/'
_REAL_ESRGAN = 'https://github.com/xinntao/Real-ESRGAN/releases/download/'
PUBLISHED_WEIGHTS = {
    'ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth': (
        "BasicSR's model zoo, https://github.com/XPixelGroup/BasicSR/blob/master/docs/ModelZoo.md (ESRGAN's "
        "RRDB_PSNR_x4.pth in BasicSR's keys; that one: https://github.com/xinntao/ESRGAN, a Google Drive link in "
        'its README)'
    ),
    'MSRResNet_x4.pth': (  # the ψ decoder's initialisation of Tab. 5(a) (options/train_ae_srresnet.yml)
        "BasicSR's model zoo, https://github.com/XPixelGroup/BasicSR/blob/master/docs/ModelZoo.md (its reproduced "
        '001_MSRResNet_x4_f64b16_DIV2K_1000k_B16G1_wandb: models/net_g_1000000.pth in the "reproduced models and '
        'logs" Google Drive folder, saved under this name)'
    ),
    'RRDB_PSNR_x4.pth': _ESRGAN,
    'RRDB_ESRGAN_x4.pth': _ESRGAN,
    '001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth': f'{_SWINIR}001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth',
    '003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth': f'{_SWINIR}003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth',
    'DRCT_X4.pth': (  # the ×4 file's name in the DRCT authors' release, which the AESOP release's DRCT options load
        'the DRCT release, https://github.com/ming053l/DRCT (Google Drive link in its README)'
    ),
    'RealESRNet_x4plus.pth': f'{_REAL_ESRGAN}v0.1.1/RealESRNet_x4plus.pth',
    'RealESRGAN_x4plus.pth': f'{_REAL_ESRGAN}v0.1.0/RealESRGAN_x4plus.pth',
    'SPSR.pth': 'the SPSR release, https://github.com/Maclory/SPSR (links in its README)',
}


SAVE_FORMATS = ('pth', 'safetensors')  # path.save_format: how a training run saves its networks
PARAM_KEYS = 'aesop.param_keys'  # metadata of a .safetensors holding several state dicts (params, params_ema)


def read_checkpoint(path: str | Path, *, option: str | None = None) -> dict:
    """Read a ``.pth`` file safely (``weights_only=True``, mapped to the CPU), or a ``.safetensors`` file.

    A ``.safetensors`` file is one state dict (``aesop-export``, other projects' files), or, when its metadata
    lists ``aesop.param_keys`` (networks a run saved with ``path.save_format: safetensors``), basicsr's
    ``{param_key: state dict}`` as a ``.pth`` holds it (tensor ``params.conv_first.weight`` →
    ``['params']['conv_first.weight']``).

    Args:
        path: checkpoint file.
        option: the option key that named the file, quoted in error messages.
    """
    where = f' (option {option})' if option else ''
    path = Path(path).expanduser()
    if not path.is_file():
        if what := not_a_file(path):  # a folder, a named pipe (which would block), a broken or looping symlink
            raise AesopError(f'checkpoint {path}{where} is {what}, not a checkpoint file')
        raise AesopError(f'checkpoint not found: {path}{where}')
    try:
        if path.suffix == '.safetensors':  # tensors only, nothing to unpickle (e.g. open_clip's weights)
            return _read_safetensors(path)
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # torch and safetensors raise many types for a truncated or garbage file
        raise _unreadable(err, path, where) from err


def _unreadable(err: Exception, path: Path, where: str) -> AesopError:
    """The one-line error for a checkpoint ``path`` that ``torch.load`` / safetensors could not read (``err``)."""
    if what := not_a_checkpoint(path):  # an ONNX model, an image, an option file: say so, not how to unpickle
        return AesopError(f'{path}{where} is {what}')
    if isinstance(err, pickle.UnpicklingError):
        found = re.search(r'Unsupported global: GLOBAL ([\w.]+)', str(err))
        what = f' (it references {found.group(1)})' if found else ''
        return AesopError(
            f'refused to load {path}{where}: it needs arbitrary unpickling{what}, which weights_only=True forbids; '
            'if you trust the file, re-save its tensors with torch.save(state_dict)'
        )
    detail = ' '.join(str(err).split()) or type(err).__name__
    return AesopError(f'cannot read checkpoint {path}{where}: truncated or corrupt file ({detail})')


_IMAGE_MAGIC = (
    (b'\x89PNG\r\n\x1a\n', 'PNG'),
    (b'\xff\xd8\xff', 'JPEG'),
    (b'GIF8', 'GIF'),
    (b'BM', 'BMP'),
    (b'II*\x00', 'TIFF'),
    (b'MM\x00*', 'TIFF'),
)


def not_a_checkpoint(path: str | Path) -> str | None:
    """What the file ``path``, which does not read as a checkpoint, is instead, as the end of a sentence
    ``'<path> is …'`` that says what reads it: empty, an ONNX model, an image, a safetensors file under another
    suffix, a YAML (option) file; ``None``: none of these (truncated or corrupt)."""
    path = Path(path)
    try:
        with open(path, 'rb') as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    if not head:
        return 'an empty file (0 bytes), not a checkpoint'
    image = next((name for magic, name in _IMAGE_MAGIC if head.startswith(magic)), None)
    if image is None and head[:4] == b'RIFF' and head[8:12] == b'WEBP':
        image = 'WebP'
    if image:
        return f"a {image} image, not a checkpoint: give the network's weights (.pth or .safetensors)"
    if onnx := _onnx_summary(path, head):
        return (
            f'an ONNX model ({onnx}), not a PyTorch checkpoint: ONNX runtimes such as onnxruntime run it; '
            'this project reads .pth and .safetensors weights'
        )
    if path.suffix != '.safetensors' and _is_safetensors(head):
        return f'a safetensors file: name it {path.stem}.safetensors to read it'
    try:
        text = head.decode('utf-8') if b'\x00' not in head else None
    except UnicodeDecodeError:
        text = None
    if text is not None:
        import yaml

        try:
            content = yaml.safe_load(text) if len(head) < (1 << 16) else None  # head is the whole file
        except (yaml.YAMLError, OSError, UnicodeDecodeError):
            content = None
        if isinstance(content, dict) and 'network_g' in content:
            return 'a YAML option file (it has network_g), not a checkpoint: option files go to --opt'
        if isinstance(content, dict):
            return 'a YAML file, not a checkpoint'
        return 'a text file, not a checkpoint'
    return None


def _onnx_summary(path: Path, head: bytes) -> str | None:
    """``'opset 18'`` when ``path`` is an ONNX model (a protobuf ModelProto whose first field is its ir_version, with
    a graph of nodes), else ``None``."""
    if head[:1] != b'\x08':  # field 1 (ir_version), a varint: how every ModelProto serializer starts
        return None
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except ImportError:
        return 'by its suffix' if path.suffix == '.onnx' else None
    except Exception:  # not a protobuf ModelProto
        return None
    if not model.ir_version or not model.graph.node:
        return None
    opset = onnx_opset(model)
    return f'opset {opset}' if opset is not None else f'IR version {model.ir_version}'


def onnx_opset(model) -> int | None:
    """The default-domain opset an ONNX ``ModelProto`` imports (``None``: none)."""
    return next((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), None)


def _is_safetensors(head: bytes) -> bool:
    """Whether ``head`` starts as a safetensors file: an 8-byte little-endian header length, then a JSON object."""
    if len(head) < 10:
        return False
    size = int.from_bytes(head[:8], 'little')
    return 2 <= size < (100 << 20) and head[8:9] == b'{'


def _read_safetensors(path: Path) -> dict:
    """The tensors of a ``.safetensors`` file, grouped by ``param_key`` when its metadata lists them."""
    from safetensors import safe_open

    with safe_open(str(path), framework='pt', device='cpu') as f:
        metadata = f.metadata() or {}
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    if PARAM_KEYS not in metadata:
        return tensors
    checkpoint: dict[str, dict[str, torch.Tensor]] = {key: {} for key in json.loads(metadata[PARAM_KEYS])}
    for name, tensor in tensors.items():
        key, _, rest = name.partition('.')
        if key not in checkpoint:
            raise ValueError(f'tensor {name} is under none of the param keys {list(checkpoint)} of its metadata')
        checkpoint[key][rest] = tensor
    return checkpoint


def safetensors_checkpoint(checkpoint: Mapping[str, Mapping[str, torch.Tensor]]) -> bytes:
    """basicsr's ``{param_key: state dict}`` as the bytes of one ``.safetensors`` file (:func:`read_checkpoint`
    reads it back): tensor ``<param_key>.<name>``, the param keys in order in the metadata (``aesop.param_keys``)
    (:func:`safetensors_bytes`).
    """
    tensors = {}
    for key, state_dict in checkpoint.items():
        if not key or '.' in key:
            raise AesopError(f'param key {key!r} cannot be saved as safetensors: it must be a name without a dot')
        for name, value in state_dict.items():
            if not torch.is_tensor(value):
                raise AesopError(f'cannot save {key}.{name} as safetensors: a {type(value).__name__}, not a tensor')
            tensors[f'{key}.{name}'] = value
    return safetensors_bytes(tensors, {PARAM_KEYS: json.dumps(list(checkpoint))})


def safetensors_bytes(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> bytes:
    """The bytes of a ``.safetensors`` file of ``tensors`` and ``metadata``, each tensor written from a contiguous
    CPU copy: safetensors refuses tensors that share memory (ψ registers its encoder's modules twice) and copies
    none itself."""
    from safetensors.torch import save

    copies = {k: v.detach().to('cpu', copy=True, memory_format=torch.contiguous_format) for k, v in tensors.items()}
    return save(copies, metadata={'format': 'pt', **metadata})


def save_checkpoint(checkpoint: Mapping[str, Mapping[str, torch.Tensor]], path: str | Path) -> None:
    """Write ``{param_key: state dict}`` atomically in the format of ``path``'s suffix: ``.safetensors``
    (:func:`safetensors_checkpoint`), else ``torch.save`` (basicsr's ``.pth``)."""
    if Path(path).suffix == '.safetensors':
        atomic_write(path, safetensors_checkpoint(checkpoint))
    else:
        atomic_save(dict(checkpoint), path)


def saved_network(models: str | Path, name: str, save_format: str = 'pth') -> Path:
    """``<models>/<name>.<save_format>`` (e.g. ``net_g_4.safetensors``), or that name in the other format when
    only that one exists (a run resumed after its ``path.save_format`` changed); the former when neither does."""
    own = Path(models) / f'{name}.{save_format}'
    if own.exists():
        return own
    return next((other for fmt in SAVE_FORMATS if (other := Path(models) / f'{name}.{fmt}').exists()), own)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file, in hex (what identifies a frozen ψ across a resumed run)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def atomic_save(obj, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``.

    A kill at any moment leaves either the previous file or the complete new one, never a
    truncated checkpoint.
    """
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write(path: str | Path, data: bytes | Callable[[BinaryIO], None]) -> None:
    """Write ``data`` (bytes, or a function writing to the open file) as :func:`atomic_save` does."""
    path = Path(path)
    tmp = path.with_name(f'.{path.name}.tmp{os.getpid()}')
    try:
        with open(tmp, 'wb') as f:
            if isinstance(data, bytes):
                f.write(data)
            else:
                data(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # e.g. the disk filled up: one line, and the previous file is still there
        kept = ' (the previous one is kept)' if path.exists() else ''
        raise AesopError(f'cannot write {path}: {err.strerror or err}{kept}') from err
    except RuntimeError as err:  # torch.save reports a failed write as a RuntimeError
        kept = ' (the previous one is kept)' if path.exists() else ''
        raise AesopError(f'cannot write {path}: {err}{kept}') from err
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # e.g. its folder is a file (NotADirectoryError): nothing was created to remove
            pass


def check_output_file(path: str | Path, option: str | None = None, *, folder: bool = False) -> Path:
    """``path`` if a result file (``folder``: a folder of them) can be written there, else one line naming ``option``
    (:func:`aesop.utils.check_output_path`): a tool checks its outputs before any work, not after an hour of it."""
    give = 'a folder' if folder else 'a file name'
    return check_output_path(path, option=option, folder=folder, give=give)


def make_folder(path: str | Path, option: str | None = None) -> Path:
    """``path`` made as a folder (with its parents) if it is not one; a file in the way is one line
    (:func:`check_output_file`), as is a folder that cannot be made."""
    path = check_output_file(path, option, folder=True)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise AesopError(f'cannot make the folder {path}: {err.strerror or err}') from err
    return path


def write_image(path: str | Path, img, params: tuple[int, ...] = ()) -> None:
    """An 8-bit or 16-bit BGR image (basicsr's layout) encoded in the format of ``path``'s suffix (cv2, with
    ``params``) and written atomically (:func:`write_result`): a full disk leaves no truncated image, and the failure
    is one line naming the file (``cv2.imwrite`` returns False without a word)."""
    import cv2

    ok, encoded = cv2.imencode(Path(path).suffix, img, list(params))
    if not ok:
        raise AesopError(f'cannot encode the image {path} ({img.shape}, {img.dtype})')
    write_result(path, encoded.tobytes())


def write_result(path: str | Path, data: bytes | Callable[[BinaryIO], None], *, option: str | None = None) -> None:
    """Write a result file (a table, a record, an image) in place: its missing folders made, then
    :func:`atomic_write` (a failed write is one line naming the file; the previous file is kept). A folder or a
    file in the way is one line too (:func:`check_output_file`), never a traceback."""
    path = check_output_file(path, option)
    make_folder(path.parent)
    atomic_write(path, data)


def select_state_dict(
    checkpoint: Mapping, *, path: str | Path, param_key: str | None, fallback: bool = False
) -> dict[str, torch.Tensor]:
    """Pick the state dict under ``param_key`` (``None``: the checkpoint itself).

    With ``fallback``, a missing ``params_ema`` falls back to ``params`` as BasicSR does, and a
    file that is itself a state dict of tensors (the published ESRGAN / SPSR checkpoints) is used
    whatever the key. A ``.safetensors`` file that is one state dict (``aesop-export``, other projects')
    has no key to select; one a training run saved holds its param keys as a ``.pth`` does
    (:func:`read_checkpoint`), selected the same way. Strips a DDP ``module.`` prefix.
    """
    if Path(path).suffix == '.safetensors' and all(torch.is_tensor(v) for v in checkpoint.values()):
        param_key = None
    if param_key is not None:
        if param_key not in checkpoint and fallback and param_key == 'params_ema' and 'params' in checkpoint:
            logger.info(f'{path}: params_ema does not exist, use params.')
            param_key = 'params'
        if (
            param_key not in checkpoint
            and fallback
            and checkpoint
            and all(torch.is_tensor(v) for v in checkpoint.values())
        ):
            logger.info(f'{path}: a bare state dict (no {param_key!r}), used as it is')  # e.g. RRDB_ESRGAN_x4.pth
            param_key = None
        if param_key is not None and param_key not in checkpoint:
            keys = ', '.join(str(k) for k in checkpoint.keys())
            raise AesopError(f'checkpoint {path} has no key {param_key!r}; it has: {keys}')
        if param_key is not None:
            checkpoint = checkpoint[param_key]
    if not isinstance(checkpoint, Mapping) or not all(torch.is_tensor(v) for v in checkpoint.values()):
        raise AesopError(f'checkpoint {path} (key {param_key!r}) is not a state dict of tensors')
    return {k.removeprefix('module.'): v for k, v in checkpoint.items()}


def check_shapes(net: nn.Module, state_dict: Mapping[str, torch.Tensor], *, path: str | Path) -> None:
    """Raise on the first tensor whose shape differs from ``net``'s, naming both shapes."""
    own = net.state_dict()
    for key, value in state_dict.items():
        if key in own and own[key].shape != value.shape:
            raise AesopError(
                f'weights in {path} do not fit {type(net).__name__}: {key} has shape '
                f'{tuple(value.shape)} in the file but {tuple(own[key].shape)} in the network'
            )


def load_weights(
    net: nn.Module,
    path: str | Path,
    *,
    param_key: str | None = 'params',
    strict: bool = True,
    fallback: bool = False,
    option: str | None = None,
    refuse_partial: str | None = None,
) -> PartialLoad | None:
    """Load ``path[param_key]`` into ``net``; clear errors for missing/mismatching tensors.

    An arch with a ``canonical_state_dict(state_dict)`` method (DRCT, the legacy ESRGAN layout, traiNNer's ψ)
    first converts the file's key layout to its own. Non-strict loading skips tensors whose shapes
    differ, as BasicSR does, and when it leaves any of ``net``'s tensors unloaded (a file of another arch) says so
    in a warning naming how many loaded, and which are missing, unexpected or of another shape (basicsr warned
    here too; a file with more tensors than ``net`` takes is warned about as well) and returns that
    :class:`PartialLoad` (``None``: every tensor of ``net`` loaded). With ``refuse_partial`` (why: a caller that must
    not go on with a partly random network, ``aesop-test``: :meth:`aesop.models.base.AesopModel.load_network`) it
    raises that line instead.
    """
    state_dict = select_state_dict(
        read_checkpoint(path, option=option), path=path, param_key=param_key, fallback=fallback
    )
    if hasattr(net, 'canonical_state_dict'):  # aesop.archs.layouts.ReadsOtherLayouts (DRCT, ESRGAN's, traiNNer's ψ)
        try:
            state_dict = net.canonical_state_dict(state_dict)
        except AesopError as err:
            raise AesopError(f'cannot read {path} as {type(net).__name__}: {err}') from err
    own = net.state_dict()
    if strict:
        check_shapes(net, state_dict, path=path)
    else:
        reshaped = [k for k, v in state_dict.items() if k in own and own[k].shape != v.shape]
        skipped = set(reshaped)
        state_dict = {k: v for k, v in state_dict.items() if k not in skipped}
    result = net.load_state_dict(state_dict, strict=False)
    if strict and (result.missing_keys or result.unexpected_keys):
        missing, unexpected = result.missing_keys, result.unexpected_keys
        detail = f'missing {missing[0]}' if missing else f'unexpected {unexpected[0]}'
        raise AesopError(
            f'weights in {path} do not fit {type(net).__name__}: {detail} '
            f'({len(missing)} missing, {len(unexpected)} unexpected keys)'
        )
    if strict or not (result.missing_keys or result.unexpected_keys):
        return None
    partial = PartialLoad(
        path=str(path),
        option=option,
        arch=type(net).__name__,
        loaded=len(own) - len(result.missing_keys),
        total=len(own),
        missing=[k for k in result.missing_keys if k not in skipped],
        unexpected=list(result.unexpected_keys),
        reshaped=reshaped,
    )
    if not result.missing_keys:  # every tensor of net loaded; the file has more (a larger network's)
        logger.warning(str(partial))
        return None
    if refuse_partial:
        raise AesopError(f'{partial}: {refuse_partial}')
    logger.warning(f'{partial}; the others keep their initialisation')
    return partial


class PartialLoad(typing.NamedTuple):
    """What a non-strict :func:`load_weights` left out: ``loaded`` of ``net``'s ``total`` tensors came from ``path``;
    ``missing`` (not in the file), ``reshaped`` (in the file with another shape) and ``unexpected`` (in the file, not
    in ``net``) tensor names."""

    path: str
    option: str | None
    arch: str
    loaded: int
    total: int
    missing: list[str]
    unexpected: list[str]
    reshaped: list[str]

    def __str__(self) -> str:
        where = f' (option {self.option})' if self.option else ''
        parts = [f'{len(names)} {what}: {abbreviated(names)}' for what, names in (
            ('missing from the file', self.missing),
            ('of another shape in the file', self.reshaped),
            ('in the file but not in the network', self.unexpected),
        ) if names]  # fmt: skip
        return (
            f'{self.path}{where} loaded {self.loaded} of the {self.total} tensors of {self.arch} '
            f'(non-strict load): {"; ".join(parts)}'
        )


def abbreviated(names: list[str], shown: int = 3) -> str:
    """The first ``shown`` of ``names``, then how many more (``a, b, c and 33 more``)."""
    more = f' and {len(names) - shown} more' if len(names) > shown else ''
    return ', '.join(names[:shown]) + more


def freeze(net: nn.Module) -> nn.Module:
    """Eval mode and ``requires_grad=False`` for every parameter; returns ``net``."""
    net.eval()
    for param in net.parameters():
        param.requires_grad_(False)
    return net
