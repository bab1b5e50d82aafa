"""Export a trained generator or auto-encoder ψ: safetensors (tensors only) or ONNX.

The command line is ``aesop-export`` (:func:`main`)::

    aesop-export --weights experiments/X/models/net_g_latest.pth --opt options/test_rrdb.yml --format onnx -o g.onnx
    aesop-export --weights ae.pth --opt options/train_ae.yml --key params --format safetensors -o psi.safetensors
    aesop-export --weights 4x_model.pth --format onnx -o g.onnx          # the arch detected (spandrel, ψ)
    aesop-export --weights ae.pth --opt options/train_ae.yml --format safetensors --layout traiNNer -o psi.safetensors

- **safetensors**: the state dict alone (no pickled code), with the arch options in the file's
  metadata (``aesop.arch``); it loads back strictly into the same arch, and everything that
  reads weights here reads it (``--weights`` of ``aesop-infer``, ``path.pretrain_network_*``,
  ψ's ``pretrained``).
- **--layout traiNNer** (ψ only, safetensors): the auto-encoder in traiNNer-redux's layout, the file its
  ``AESOPLoss`` reads as ``pretrain_network_ae`` (:mod:`aesop.archs.trainner`: keys, both registrations of
  the encoder, the trunk's channel order for its one ×s unshuffle); its options are printed and kept in
  the metadata (``aesop.trainner``). This project reads such a file back as its own ψ.
- **ONNX** (opset 17 to the newest the installed ``onnx`` knows, through ``torch.onnx.export(dynamo=True)``; the
  opset printed is read back from the file): input ``input`` (N, 3, H, W)
  in [0, 1], output ``output`` (N, C, H·s, W·s); batch, height and width are dynamic. The mirror
  padding to the arch's multiple (SwinIR's window, ψ's scale) and the crop back are inside the
  graph, as :func:`aesop.archs.tiling.upscale` does them, so any size ≥ the multiple runs. The file
  is then run with onnxruntime on the CPU against the PyTorch network (max abs error printed;
  above ``--atol`` is an error). ``--half`` exports fp16 weights and inputs (for GPU runtimes;
  onnxruntime's CPU provider lacks fp16 kernels for some of these ops, and the check says so).

Both are built in memory and written with :func:`aesop.weights.atomic_write` (a temporary file renamed over
``-o``): a failed write (a full disk) is one line naming the file, and the earlier file stays.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn

from aesop.archs.sizes import pad_to_multiple
from aesop.cli import ArgumentParser, cli_main
from aesop.commands import command_help
from aesop.errors import AesopError
from aesop.inference import Generator, add_network_arguments, load_from_args
from aesop.utils import check_output_path
from aesop.weights import atomic_write, make_folder, onnx_opset, safetensors_bytes

__all__ = ['OnnxGraph', 'export_onnx', 'export_safetensors', 'export_trainner', 'main']

OPSET = 18
MIN_OPSET = 17  # LayerNorm (SwinIR, DRCT)
OTHER_SUFFIXES = {'onnx': ('.safetensors', '.pth', '.pt'), 'safetensors': ('.onnx', '.pth', '.pt')}
FP32_ATOL = 1e-4  # onnxruntime vs PyTorch on the CPU (a tiny net is ~1e-7; a full RRDB ~1e-5)


class OnnxGraph(nn.Module):
    """What the ONNX file computes: pad H and W to ``multiple`` (mirror), run ``net``, crop to ``(H·s, W·s)``."""

    def __init__(self, net: nn.Module, *, multiple: int | None, scale: int) -> None:
        super().__init__()
        self.net, self.multiple, self.scale = net, multiple, scale

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if self.multiple:
            x = pad_to_multiple(x, self.multiple)
        return self.net(x)[..., : h * self.scale, : w * self.scale]


def _probe_size(gen: Generator) -> int:
    """The side of the example input: a multiple plus a remainder, so the padding is traced."""
    multiple = max(gen.window or 1, getattr(gen.net, 'window_size', 1) or 1)
    return 2 * multiple + 3 if multiple > 1 else 21


def _write_safetensors(out: Path, state_dict: dict, metadata: dict[str, str], *, half: bool) -> None:
    """``state_dict`` (fp16 with ``half``) with ``metadata``, written atomically to ``out``."""
    tensors = {k: v.half() if half and v.is_floating_point() else v for k, v in state_dict.items()}
    atomic_write(out, safetensors_bytes(tensors, metadata))


def export_safetensors(gen: Generator, out: Path, *, half: bool = False) -> Path:
    """Write ``gen``'s state dict (fp16 with ``half``) and, as metadata, its arch options and scale."""
    metadata = {'aesop.scale': str(gen.scale), 'aesop.source': Path(gen.weights).name}
    if gen.arch is not None:
        metadata['aesop.arch'] = json.dumps(gen.arch)
    _write_safetensors(out, gen.net.state_dict(), metadata, half=half)
    return out


def export_trainner(gen: Generator, out: Path, *, half: bool = False) -> dict:
    """Write ψ (an ``AesopAutoEncoder``) in traiNNer-redux's layout (:func:`aesop.archs.trainner.to_trainner`), as a
    safetensors file its ``AutoEncoder`` loads strictly; returns traiNNer's options for it (also in the metadata)."""
    from aesop.archs.autoencoder_arch import AesopAutoEncoder
    from aesop.archs.trainner import to_trainner, trainner_options

    if not isinstance(gen.net, AesopAutoEncoder):
        raise AesopError(f'--layout traiNNer writes an auto-encoder ψ (AesopAutoEncoder), not {gen.name}')
    own = gen.net.state_dict()
    options = trainner_options(own)
    metadata = {'aesop.layout': 'traiNNer', 'aesop.source': Path(gen.weights).name}
    metadata['aesop.trainner'] = json.dumps(options)
    _write_safetensors(out, to_trainner(own), metadata, half=half)
    return options


def onnx_opsets() -> range:
    """The opsets ``--opset`` may name: 17 (LayerNorm, used by SwinIR/DRCT) to the newest the installed ``onnx``
    knows (its version converter, which torch.onnx calls for any opset but 18, cannot write another: asked for one,
    torch.onnx logs a traceback and writes opset 18)."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx's dynamo exporter needs it)
    except ImportError as err:
        raise AesopError("ONNX export needs onnx and onnxscript: pip install -e '.[export]'") from err
    return range(MIN_OPSET, onnx.defs.onnx_opset_version() + 1)


def check_opset(opset: int) -> None:
    """Refuse an ``--opset`` the exporter cannot write (:func:`onnx_opsets`), in one line naming the range."""
    opsets = onnx_opsets()
    if opset not in opsets:
        why = 'LayerNorm, used by SwinIR/DRCT, needs 17' if opset < MIN_OPSET else 'the newest the installed onnx knows'
        raise AesopError(f'--opset {opset} cannot be written: {opsets[0]} to {opsets[-1]} ({why})')


def export_onnx(gen: Generator, out: Path, *, half: bool = False, opset: int = OPSET) -> Path:
    """Write ``gen`` as ONNX with dynamic batch, height and width (padding and crop in the graph), atomically: the
    model is built in memory, its opset checked (one the converter did not reach is refused, nothing written), and
    its bytes written to a temporary file renamed over ``out`` (:func:`aesop.weights.atomic_write`)."""
    import logging

    from torch.export import Dim

    check_opset(opset)
    dtype = torch.float16 if half else torch.float32
    graph = OnnxGraph(gen.net, multiple=gen.window, scale=gen.scale).eval().to(dtype)
    size = _probe_size(gen)
    example = torch.rand(2, 3, size, size + 1, dtype=dtype, device=next(graph.parameters()).device)
    dims = {'x': {0: Dim.AUTO, 2: Dim.AUTO, 3: Dim.AUTO}}
    converter = logging.getLogger('onnxscript.version_converter')  # a failed conversion: a traceback in the log
    level = converter.level
    converter.setLevel(logging.CRITICAL)
    try:
        program = torch.onnx.export(
            graph,
            (example,),
            None,  # in memory: written below, whole or not at all
            dynamo=True,
            opset_version=opset,
            input_names=['input'],
            output_names=['output'],
            dynamic_shapes=dims,
            external_data=False,
        )
        proto = program.model_proto
        data = proto.SerializeToString()
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AesopError(f'ONNX export of {gen.name} failed: {first}') from err
    finally:
        converter.setLevel(level)
        graph.float()  # --half cast the generator's own weights for the trace
    got = onnx_opset(proto)
    if got != opset:
        raise AesopError(
            f'ONNX export of {gen.name}: torch.onnx made opset {got}, not --opset {opset}; {out} not written'
        )
    atomic_write(out, data)
    return out


def check_onnx(gen: Generator, path: Path, *, half: bool = False) -> float | None:
    """Max abs difference between onnxruntime (CPU) and PyTorch on two inputs of other sizes than the
    example's (one not a multiple of the arch's); ``None`` when onnxruntime cannot run the file."""
    import numpy as np
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    except Exception as err:  # e.g. NOT_IMPLEMENTED: no fp16 kernel for an op on the CPU
        print(f'onnxruntime cannot load {path.name} on the CPU ({str(err).splitlines()[0]})', file=sys.stderr)
        return None
    size = _probe_size(gen)
    dtype = torch.float16 if half else torch.float32
    graph = OnnxGraph(gen.net, multiple=gen.window, scale=gen.scale).eval().to(dtype)
    worst = 0.0
    try:
        for shape in ((1, 3, size + 5, size + 2), (2, 3, size - 2, size + 9)):
            x = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(dtype)
            with torch.no_grad():
                ref = graph(x.to(next(graph.parameters()).device)).float().cpu().numpy()
            try:
                (got,) = session.run(None, {'input': x.numpy()})
            except Exception as err:
                print(f'onnxruntime cannot run {path.name} on the CPU ({str(err).splitlines()[0]})', file=sys.stderr)
                return None
            if got.shape != ref.shape:
                raise AesopError(f'{path}: onnxruntime gave {got.shape} for {tuple(shape)}, PyTorch {ref.shape}')
            worst = max(worst, float(np.abs(got.astype(np.float32) - ref).max()))
    finally:
        graph.float()  # the generator's own weights were cast: give them back in fp32, whatever happened
    return worst


def build_parser() -> argparse.ArgumentParser:
    """The ``aesop-export`` command line; usage errors raise :class:`AesopError`."""
    parser = ArgumentParser(
        **command_help(
            'Export a generator or auto-encoder checkpoint to safetensors (tensors + arch metadata) or ONNX '
            '(dynamic batch/height/width, padding inside the graph, checked against PyTorch with onnxruntime). '
            "Without --arch/--opt the arch is detected (spandrel; this project's ψ). Exit status 0: written (and "
            'checked); 2: bad arguments or weights, or onnxruntime disagreeing with PyTorch.',
            (
                '{prog} --weights G.pth --opt options/test_rrdb.yml --format onnx -o g.onnx',
                '{prog} --weights experiments/train_AESOP_AE_RRDB/models/net_g_latest.pth --opt options/train_ae.yml '
                '--format safetensors -o psi.safetensors',
                '{prog} --weights 4x_model.pth --format onnx --half -o model_fp16.onnx',
                '{prog} --weights psi.pth --opt options/train_ae.yml --format safetensors --layout traiNNer '
                '-o psi_trainner.safetensors',
            ),
        )
    )
    add_network_arguments(parser)
    parser.add_argument('--key', dest='key', help='alias of --param-key (e.g. params_ema)')
    parser.add_argument('--format', required=True, choices=('onnx', 'safetensors'))
    parser.add_argument(
        '--layout',
        choices=('aesop', 'traiNNer'),
        default='aesop',
        help="the state dict's keys: this project's (default), or traiNNer-redux's ψ (safetensors; its AESOPLoss's "
        'pretrain_network_ae)',
    )
    parser.add_argument('--half', action='store_true', help='fp16 weights (and, for ONNX, inputs and outputs)')
    parser.add_argument(
        '--opset', type=int, default=OPSET, help=f'ONNX opset (default {OPSET}; 17 to the newest that onnx knows)'
    )
    parser.add_argument(
        '--atol', type=float, help=f'largest onnxruntime-vs-PyTorch error accepted (default {FP32_ATOL}; fp16: 1e-2)'
    )
    parser.add_argument('--no-check', action='store_true', help='do not run the ONNX file with onnxruntime')
    parser.add_argument('-o', '--output', required=True, type=Path, help='output file (.onnx / .safetensors)')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; 0: written (and checked); 2: bad arguments or weights, or a failed check."""
    return cli_main(_run, argv)


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.key:
        args.param_key = args.key
    check_output_path(args.output, option='-o', folder=False, give='the output file')
    if args.layout == 'traiNNer' and args.format != 'safetensors':
        raise AesopError(
            '--layout traiNNer writes safetensors (what traiNNer-redux reads ψ from): --format safetensors'
        )
    for option, source in (('--weights', args.weights), ('--opt', args.opt)):
        if source is not None and os.path.realpath(args.output) == os.path.realpath(Path(source).expanduser()):
            raise AesopError(f'-o {args.output} is the {option} file: write the export elsewhere')
    suffix = args.output.suffix.lower()
    if suffix in OTHER_SUFFIXES[args.format]:
        raise AesopError(f'-o {args.output}: --format {args.format} writes a .{args.format} file, not a {suffix} one')
    if args.format == 'onnx':
        check_opset(args.opset)  # before the network is loaded
    gen = load_from_args(args, measure_scale=True)
    make_folder(args.output.parent)
    gen = replace(gen, net=gen.net.cpu())
    if args.layout == 'traiNNer':
        options = export_trainner(gen, args.output, half=args.half)
        print(f"wrote {args.output} (ψ in traiNNer-redux's layout, {'fp16' if args.half else 'fp32'})", file=sys.stderr)
        loss = {'type': 'aesoploss', 'scale': options['scale'], 'decoder_opt': options['decoder_opt']}
        print(f'traiNNer-redux: {json.dumps({**loss, "pretrain_network_ae": str(args.output)})}', file=sys.stderr)
        if options['nf'] != 64:
            print(f"note: traiNNer-redux's AESOPLoss builds nf 64; this ψ's nf is {options['nf']}", file=sys.stderr)
        return 0
    if args.format == 'safetensors':
        export_safetensors(gen, args.output, half=args.half)
        print(f'wrote {args.output} ({gen.name} x{gen.scale}, {"fp16" if args.half else "fp32"})', file=sys.stderr)
        return 0
    export_onnx(gen, args.output, half=args.half, opset=args.opset)  # the opset the model imports: checked there
    print(f'wrote {args.output} ({gen.name} x{gen.scale}, opset {args.opset}, dynamic N/H/W)', file=sys.stderr)
    if args.no_check:
        return 0
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("not checked: onnxruntime is not installed (pip install -e '.[export]')", file=sys.stderr)
        return 0
    error = check_onnx(gen, args.output, half=args.half)
    if error is None:
        print('not checked: run it where the runtime has these kernels (e.g. a GPU provider)', file=sys.stderr)
        return 0
    atol = args.atol if args.atol is not None else (1e-2 if args.half else FP32_ATOL)
    print(f'onnxruntime vs PyTorch: max abs error {error:.2e} (limit {atol:.0e})', file=sys.stderr)
    if error > atol:
        raise AesopError(f'{args.output}: onnxruntime differs from PyTorch by {error:.2e} > {atol:.0e}')
    return 0
