"""Perception–distortion plot (paper Fig. 4): PSNR (x, higher is better) against LPIPS (y, lower is better).

Reads the CSVs written by aesop-evaluate (header `image,<metric>,...`, one row per image,
a last row whose image is `mean`) and plots each file's mean row as one point. A column computed on a
random backbone (header `lpips (random AlexNet)`, AESOP_RANDOM_BACKBONES=1) is read as its metric and
its axis is labelled the same way, with a legend title saying those values mean nothing.

  Methods, one point each (NAME=FILE; a bare FILE is named by its stem):
    python scripts/plot_pd_curve.py --csv ESRGAN=esrgan.csv LDL=ldl.csv AESOP@300k=aesop.csv -o pd.png
  Checkpoints of a method, a curve through the files in the order given (points labelled by
  LABEL=FILE, else the file's stem, or its folder's name when the stems repeat), several methods:
    python scripts/plot_pd_curve.py --method AESOP --csv 100k=a100.csv 200k=a200.csv 300k=a300.csv \\
        --method LDL --csv l100.csv l200.csv l300.csv -o pd.png
  Plain --csv entries must come before the first --method. Other axes: --x ssim --y dists.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aesop  # noqa: E402,F401  (first: fixes basicsr before anything imports it)
from aesop.cli import cli_main  # noqa: E402
from aesop.commands import command_help  # noqa: E402
from aesop.errors import AesopError  # noqa: E402
from aesop.figures import new_figure, save_figure  # noqa: E402
from aesop.metrics.scoring import RANDOM_LABEL, metric_name  # noqa: E402

LOWER_IS_BETTER = frozenset({'lpips', 'dists', 'fid', 'patch_fid', 'niqe'})
AXIS_NAMES = {'psnr': 'PSNR (dB)', 'ssim': 'SSIM', 'lpips': 'LPIPS', 'dists': 'DISTS', 'ae_psnr': 'AE-PSNR (dB)'}
AXIS_NAMES |= {'lr_psnr': 'LR-PSNR (dB)', 'niqe': 'NIQE', 'fid': 'FID', 'patch_fid': 'patch-FID'}
MARKERS = 'osD^vP*Xhp'


@dataclass
class Series:
    """One method: a single point (``curve=False``) or its checkpoints joined in order."""

    name: str
    files: list[tuple[str | None, Path]] = field(default_factory=list)
    curve: bool = False


def read_columns(path: Path, *, metrics: Sequence[str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """``({metric: its column's header}, rows)`` of an evaluator CSV, for ``metrics``: a header labelled
    ``lpips (random AlexNet)`` is the column of ``lpips``.

    Raises:
        AesopError: missing file, no ``image`` column or a missing metric column.
    """
    if not path.is_file():
        raise AesopError(f'CSV not found: {path}')
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        rows = list(reader)
    if 'image' not in columns:
        raise AesopError(
            f'{path} has no column image (columns: {", ".join(columns) or "none"}); '
            'expected a CSV of aesop-evaluate with header image,<metric>,...'
        )
    by_name = {metric_name(c): c for c in columns if c != 'image'}
    for metric in metrics:
        if metric not in by_name:
            raise AesopError(f'{path} has no column {metric!r} (its metrics: {", ".join(by_name) or "none"})')
    return {metric: by_name[metric] for metric in metrics}, rows


def read_means(path: Path, *, metrics: Sequence[str]) -> dict[str, float]:
    """The ``mean`` row of an evaluator CSV, for ``metrics``.

    Raises:
        AesopError: missing file, missing column, no ``mean`` row, or a value that is not a number.
    """
    headers, rows = read_columns(path, metrics=metrics)
    means = [row for row in rows if (row.get('image') or '').strip() == 'mean']
    if not means:
        raise AesopError(f"{path} has no mean row (expected a last row whose image is 'mean')")
    out = {}
    for metric in metrics:
        text = (means[-1].get(headers[metric]) or '').strip()
        try:
            out[metric] = float(text)
        except ValueError:
            out[metric] = math.nan
        if not math.isfinite(out[metric]):
            raise AesopError(f'{path}: the mean of {metric!r} is not a finite number: {text!r}')
    return out


def split_entry(text: str) -> tuple[str | None, Path]:
    """``'NAME=FILE'`` → ``('NAME', Path('FILE'))``; ``'FILE'`` → ``(None, Path('FILE'))``."""
    name, sep, file = text.partition('=')
    return (name.strip() or None, Path(file)) if sep else (None, Path(text))


def point_labels(files: Sequence[tuple[str | None, Path]]) -> list[str]:
    """Given labels, else file stems, else (stems repeat, e.g. ``metrics.csv``) folder names."""
    stems = [path.stem for _, path in files]
    fallback = stems if len(set(stems)) == len(stems) else [path.parent.name or path.stem for _, path in files]
    return [label or auto for (label, _), auto in zip(files, fallback)]


def axis_label(metric: str, header: str | None = None) -> str:
    """``LPIPS  (↓ lower is better)``; with a random backbone's column ``header``, ``LPIPS (random AlexNet)  (…)``."""
    arrow = '↓ lower is better' if metric in LOWER_IS_BETTER else '↑ higher is better'
    mark = RANDOM_LABEL.search(header or '')
    return f'{AXIS_NAMES.get(metric, metric)}{mark.group(0) if mark else ""}  ({arrow})'


def random_headers(files: Sequence[Path], metric: str) -> list[str]:
    """The headers of ``metric``'s column in ``files`` that mark a random backbone."""
    headers = (read_columns(path, metrics=(metric,))[0][metric] for path in files)
    return [header for header in headers if RANDOM_LABEL.search(header)]


def plot_pd_curve(
    series: Sequence[Series],
    *,
    out: str | Path,
    x: str = 'psnr',
    y: str = 'lpips',
    title: str | None = None,
    width: float = 6.0,
    height: float = 4.5,
    dpi: int = 150,
) -> Path:
    """Plot the mean ``x``/``y`` of every CSV of every series (Fig. 4) and write a PNG to ``out``."""
    fig = new_figure(width=width, height=height)
    ax = fig.add_subplot()
    for index, item in enumerate(series):
        points = [read_means(path, metrics=(x, y)) for _, path in item.files]
        xs, ys = [p[x] for p in points], [p[y] for p in points]
        style = {'marker': MARKERS[index % len(MARKERS)], 'color': f'C{index % 10}', 'label': item.name}
        if item.curve:
            ax.plot(xs, ys, '-', linewidth=1.5, markersize=6, **style)
            for label, px, py in zip(point_labels(item.files), xs, ys):
                ax.annotate(label, (px, py), textcoords='offset points', xytext=(5, 4), fontsize=8)
        else:
            ax.plot(xs, ys, linestyle='none', markersize=8, **style)
    files = [path for item in series for _, path in item.files]
    marked = {metric: random_headers(files, metric) for metric in (x, y)}
    ax.set_xlabel(axis_label(x, next(iter(marked[x]), None)))
    ax.set_ylabel(axis_label(y, next(iter(marked[y]), None)))
    ax.set_title(title or 'Perception–distortion trade-off', fontsize=10)
    ax.margins(0.08)  # room for the point labels
    ax.grid(True, alpha=0.3)
    random = [AXIS_NAMES.get(metric, metric) for metric in (x, y) if marked[metric]]
    legend_title = f'{" and ".join(random)}: random backbone, values mean nothing' if random else None
    ax.legend(fontsize=8, title=legend_title, title_fontsize=8)
    return save_figure(fig, out, dpi=dpi)


class _MethodAction(argparse.Action):
    """``--method NAME``: the ``--csv`` files that follow are checkpoints of NAME (one curve)."""

    def __call__(self, parser, namespace, values, option_string=None):
        entries = getattr(namespace, self.dest, None) or []
        entries.append(Series(name=values, curve=True))
        setattr(namespace, self.dest, entries)


class _CsvAction(argparse.Action):
    """``--csv ...``: into the current ``--method``, or one single-point series per file."""

    def __call__(self, parser, namespace, values, option_string=None):
        entries = getattr(namespace, self.dest, None) or []
        for value in values:
            label, path = split_entry(value)
            if entries and entries[-1].curve:
                entries[-1].files.append((label, path))
            else:
                entries.append(Series(name=label or path.stem, files=[(label, path)]))
        setattr(namespace, self.dest, entries)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        **command_help(
            'Perception–distortion plot (paper Fig. 4): the mean PSNR (x) against the mean LPIPS (y) of each '
            'evaluator CSV (aesop-evaluate --csv), one point per method, or a curve through the checkpoints '
            'of a method (--method NAME, then its CSVs in order). A bare FILE is named by its stem, NAME=FILE by '
            'NAME; plain --csv entries come before the first --method. Other axes: --x ssim --y dists.',
            (
                '{prog} --csv ESRGAN=esrgan.csv LDL=ldl.csv AESOP@300k=aesop.csv -o pd.png',
                '{prog} --method AESOP --csv 100k=a100.csv 200k=a200.csv 300k=a300.csv '
                '--method LDL --csv l100.csv l200.csv l300.csv -o pd.png',
            ),
        )
    )
    parser.add_argument(
        '--csv', dest='series', nargs='+', action=_CsvAction, metavar='[NAME=]FILE', help='evaluator CSV file(s)'
    )
    parser.add_argument(
        '--method', dest='series', action=_MethodAction, metavar='NAME', help='start a curve of checkpoints of NAME'
    )
    parser.add_argument('--x', default='psnr', help='CSV column on the x axis (default: psnr)')
    parser.add_argument('--y', default='lpips', help='CSV column on the y axis (default: lpips)')
    parser.add_argument('--title', help='figure title')
    parser.add_argument('--dpi', type=int, default=150, help='resolution of the PNG (default: 150)')
    parser.add_argument(
        '-o', '--out', type=Path, default=Path('pd_curve.png'), help='output PNG (default: %(default)s)'
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    series: list[Series] = args.series or []
    if not series:
        raise AesopError('nothing to plot: give --csv NAME=FILE ... or --method NAME --csv FILE FILE ...')
    for item in series:
        if not item.files:
            raise AesopError(f'--method {item.name} has no --csv files after it')
    out = plot_pd_curve(series, out=args.out, x=args.x, y=args.y, title=args.title, dpi=args.dpi)
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(cli_main(main))
