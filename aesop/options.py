"""The option pipeline: :func:`load_options` is how train, test, the tools, the benchmark, the demo and the tests
read an option file.

It is basicsr's ``parse_options`` owned here (read → overrides → the release's names → validate → dist, seed and
paths → start-up checks), with YAML's safe loader (a tag such as ``!!python/object/apply`` is refused instead of
running code; YAML 1.2's floats), ``--force_yml`` values read as YAML after their keys are checked (basicsr
``exec``-ed them), the schema's validation and defaults, every ``type:`` entry checked against its component, and
every file and folder a run reads checked before any dataset or network is built: a wrong path fails at start-up
with the option key that holds it, not an hour into training.
"""

from __future__ import annotations

import collections
import copy
import difflib
import importlib.util
import os
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import torch
import yaml
from basicsr.utils import set_random_seed
from basicsr.utils.dist_util import get_dist_info
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from aesop.archs.autoencoder_arch import AUTOENCODER_TYPES
from aesop.archs.hraware_arch import CLIP_RN50
from aesop.backbones import missing_imagenet_file
from aesop.distributed import init_dist
from aesop.errors import AesopError
from aesop.metrics.fid import missing_fid_weights
from aesop.metrics.iqa import IQA_EXTRA, niqe_implementation
from aesop.metrics.metrics import metric_backbone
from aesop.metrics.scoring import SCOPE_KEY, crop_shortfall, is_set_level, scores_on
from aesop.schema import admits, apply_schema, check_call, check_component
from aesop.utils import clone_root, closest, did_you_mean, iter_keyed_mappings, not_a_file, warn
from aesop.wandb_login import check_wandb
from aesop.weights import PUBLISHED_WEIGHTS


class OptionLoader(yaml.SafeLoader):
    """YAML's safe loader (plain data, ``!!float`` and the other standard tags) with ordered mappings, reading
    floats as YAML 1.2 does: PyYAML implements YAML 1.1, where ``1e-3`` and ``4e5`` (an exponent without a dot)
    are strings, so basicsr's files write ``!!float 1e-3``. Here they are floats; ``4`` stays an int and a
    quoted ``'1e-3'`` a string."""


# YAML 1.2's floats (core schema), with a dot or an exponent so that an int stays an int; .inf and .nan as
# PyYAML reads them. Added to OptionLoader's own table (after YAML 1.1's resolvers), not to yaml.SafeLoader's.
OptionLoader.add_implicit_resolver(
    'tag:yaml.org,2002:float',
    re.compile(
        r'^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$'
    ),
    list('-+0123456789.'),
)
OptionLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: collections.OrderedDict(loader.construct_pairs(node)),
)


class OptionDumper(yaml.SafeDumper):
    """YAML's safe dumper that writes ``OrderedDict`` as a plain mapping."""


OptionDumper.add_representer(collections.OrderedDict, lambda dumper, data: dumper.represent_dict(data.items()))


def parse_yaml(text: str, *, source: str) -> object:
    """``text`` parsed with :class:`OptionLoader`; a syntax error or a refused tag is one line naming
    ``source`` (a file name or an option) with the line and column."""
    try:
        return yaml.load(text, Loader=OptionLoader)  # noqa: S506  (a safe loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f'{source}:{mark.line + 1}:{mark.column + 1}' if mark else source
        if isinstance(err, yaml.constructor.ConstructorError) and 'tag' in str(err.problem):
            tag = str(err.problem).rsplit("tag '", 1)[-1].rstrip("'")
            raise AesopError(
                f'{where}: refused YAML tag {tag}: option files hold plain data only (this tag would run code)'
            ) from None
        raise AesopError(f'{where}: YAML syntax error: {err.problem}') from None
    except yaml.YAMLError as err:
        raise AesopError(f'{source}: YAML error: {err}') from None


def load_option_file(path: str | Path) -> dict:
    """The options of ``path`` as a mapping, as written (safely parsed, see :func:`parse_yaml`).

    Refuses, in one line each: a missing or unreadable file, one that is no file (a named pipe would block the
    reader forever; a folder, a broken link), an empty one, and one whose top level is not a mapping.
    """
    path = Path(path)
    if what := not_a_file(path):
        raise AesopError(f'option file {path} is {what}, not a YAML file')
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise AesopError(f'option file not found: {path}') from None
    except (OSError, UnicodeDecodeError) as err:
        raise AesopError(f'cannot read option file {path}: {err}') from None
    opt = parse_yaml(text, source=str(path))
    if opt is None:
        raise AesopError(f'option file {path} is empty')
    if not isinstance(opt, dict):
        raise AesopError(f'option file {path} must be a mapping of options (key: value), not a {type(opt).__name__}')
    return opt


# top-level sections basicsr reads unconditionally, by stage (is_train)
REQUIRED_SECTIONS = {
    True: ('network_g', 'datasets', 'train', 'path', 'logger'),
    False: ('network_g', 'datasets', 'path', 'val'),
}
_KEY = re.compile(r'[A-Za-z_][\w.\-]*')
LAUNCHERS = ('none', 'pytorch', 'slurm')
RUN_KEYS = {'name': 'tool', 'datasets': {}}  # what the schema requires of a run, not of a tool's read


def load_options(
    source: str | Path | dict,
    *,
    is_train: bool | None = None,
    overrides: Sequence[str] = (),
    required: tuple[str, ...] | None = None,
    root_path: str | Path | None = None,
    launcher: str = 'none',
    auto_resume: bool = False,
    debug: bool = False,
) -> dict:
    """The options of an option file (or of a mapping, prepared in place), as every reader reads them.

    One pipeline for train, test, the tools, the benchmark, the demo and the tests; basicsr's
    ``parse_options`` in this order, with the checks it lacked:

    1. read (:func:`load_option_file`: YAML's safe loader, YAML 1.2 floats; for a stage, its sections
       required: :data:`REQUIRED_SECTIONS`, or ``required``);
    2. ``overrides`` (``--force_yml`` entries, :func:`apply_force_yml`: checked keys, values read as YAML);
    3. the release's names translated (:func:`aesop.official.translate_options`) and basicsr's
       ``PairedImageDataset`` built as :class:`~aesop.data.AesopPairedImageDataset`;
    4. validated against the schema (:func:`aesop.schema.apply_schema`): every declared key's value checked,
       every declared default written back, so that code reads ``opt[...]`` and no default is written twice;
       every ``type:`` entry against its component (:func:`check_components`).

    That is all a tool (infer, export, evaluate, figures, the benchmark) needs. With ``root_path`` it is a run's
    (train, test), and basicsr's run set-up and this package's start-up checks follow:

    5. the process group (``launcher``: gloo on CPU, NCCL on GPUs), rank, world size, the seed
       (``manual_seed`` + rank), ``auto_resume``, ``debug`` (``debug_<name>``, validate and save every 8),
       ``num_gpu``, each dataset's phase and scale, and the run's folders under ``root_path``;
    6. :func:`check_start_up`: the CPU fallbacks, wandb, optional packages, every file and folder the run
       reads (all missing ones in one error), the dataset scan.

    ``is_train`` is the stage (default: ``opt['is_train']`` when set, else whether the file has a ``train``
    section); a run names it. A mapping is taken as its caller built it (no sections required) and prepared in
    place. Every problem is one :class:`AesopError` line naming the option.
    """
    opt = source if isinstance(source, dict) else load_option_file(source)
    if is_train is None:
        is_train = bool(opt.get('is_train', 'train' in opt))
    if required is None:  # a run's file needs its stage's sections; a tool names what it reads
        required = REQUIRED_SECTIONS[is_train] if root_path is not None and not isinstance(source, dict) else ()
    if missing := [key for key in required if not isinstance(opt.get(key), dict)]:
        where = 'the option mapping' if isinstance(source, dict) else f'option file {source}'
        raise AesopError(f'{where} has no {", ".join(missing)} section (each a mapping)')
    opt['is_train'] = is_train  # as basicsr's parser sets it (the release's names depend on it)
    apply_force_yml(opt, list(overrides))
    from aesop.official import translate_options

    translate_options(opt)
    for dataset in (opt.get('datasets') or {}).values():
        if isinstance(dataset, dict):
            dataset['type'] = UPGRADED_DATASETS.get(dataset.get('type'), dataset.get('type'))
    absent = [key for key in RUN_KEYS if key not in opt] if root_path is None else []
    opt.update({key: copy.deepcopy(RUN_KEYS[key]) for key in absent})  # a tool reads what it needs only
    apply_schema(opt)
    check_components(opt)
    for key in absent:
        del opt[key]
    if root_path is None:
        return opt
    _set_up_run(opt, root_path=Path(root_path), launcher=launcher, auto_resume=auto_resume, debug=debug)
    check_start_up(opt, root_path=root_path)
    return opt


def parse_override_value(text: str) -> object:
    """The value of a ``--force_yml key=value`` entry, read as the option file's values are (:class:`OptionLoader`,
    never ``eval``): ``~`` / ``none`` (basicsr's spelling), booleans, numbers (``1e-4``, ``!!float 5e3``), flow
    lists ``[1, 2]``; what YAML cannot read, or reads as a mapping, is the string itself; a tag that would run
    code is refused in one line."""
    text = text.strip()
    if text.lower() == 'none':
        return None
    try:
        value = yaml.load(text, Loader=OptionLoader)  # noqa: S506  (a safe loader)
    except yaml.constructor.ConstructorError:
        return parse_yaml(text, source=f'--force_yml value {text!r}')  # raises: the refused tag, in one line
    except yaml.YAMLError:
        return text
    return text if isinstance(value, dict) else value


def apply_force_yml(opt: dict, entries: list[str]) -> dict:
    """Set each ``--force_yml`` entry ``section:key=value`` in ``opt`` (basicsr's semantics, values read by
    :func:`parse_override_value`), after checking it names a key the option file has or the schema declares
    (basicsr would silently add a misspelt one) and does not replace a section by a plain value. Returns ``opt``."""
    for entry in entries:
        if '=' not in entry:
            raise AesopError(f'--force_yml {entry!r}: expected key:subkey=value, e.g. train:ema_decay=0.999')
        keys, value = (part.strip() for part in entry.split('=', 1))
        node, path, parent = opt, [], None
        for key in keys.split(':'):
            if not _KEY.fullmatch(key):
                raise AesopError(f'--force_yml {entry!r}: {key!r} is not an option key')
            if isinstance(node, dict) and key not in node and admits('.'.join(path), key):
                parent, node, path = node, None, [*path, key]  # a declared option that the file leaves out
                continue
            if not isinstance(node, dict) or key not in node:
                close = closest(key, node if isinstance(node, dict) else [])
                hint = f'; did you mean {":".join([*path, close])!r}?' if close else ''
                where = ':'.join(path) or 'the top level'
                raise AesopError(f'--force_yml {entry!r}: no option {key!r} in {where}{hint}')
            parent, node, path = node, node[key], [*path, key]
        parsed = parse_override_value(value)
        if isinstance(node, dict) and not isinstance(parsed, dict):
            raise AesopError(f'--force_yml {entry!r}: {keys} is a section; set one of its keys ({", ".join(node)})')
        parent[path[-1]] = parsed
    return opt


def _set_up_run(opt: dict, *, root_path: Path, launcher: str, auto_resume: bool, debug: bool) -> None:
    """basicsr's run set-up (its ``parse_options`` after the file is read): the process group, rank and world size,
    the seed, the flags, ``num_gpu``, each dataset's phase and scale, the user's ``~`` in paths, and the run's
    folders under ``root_path`` (``experiments/<name>`` for training, ``results/<name>`` for testing)."""
    if launcher not in LAUNCHERS:
        raise AesopError(f'unknown --launcher {launcher!r}; use one of: {", ".join(LAUNCHERS)}')
    opt['dist'] = launcher != 'none'
    if opt['dist']:
        params = (opt.get('dist_params') or {}) if launcher == 'slurm' else {}
        init_dist(launcher, cpu=opt.get('num_gpu') == 0, **params)
    else:
        print('Disable distributed.', flush=True)  # basicsr's line
    opt['rank'], opt['world_size'] = get_dist_info()
    if opt.get('manual_seed') is None:
        opt['manual_seed'] = random.randint(1, 10000)
    set_random_seed(opt['manual_seed'] + opt['rank'])
    opt['auto_resume'] = auto_resume
    if debug and not opt['name'].startswith('debug'):
        opt['name'] = 'debug_' + opt['name']
    if opt.get('num_gpu') == 'auto':
        opt['num_gpu'] = torch.cuda.device_count()
    for phase, dataset in opt['datasets'].items():
        dataset['phase'] = phase.split('_')[0]  # val_1, val_2; test_1, test_2
        if 'scale' in opt:
            dataset['scale'] = opt['scale']
        for key in ('dataroot_gt', 'dataroot_lq'):
            if dataset.get(key) is not None:
                dataset[key] = os.path.expanduser(dataset[key])
    paths = opt['path']
    for key, value in paths.items():
        if value is not None and ('resume_state' in key or 'pretrain_network' in key):
            paths[key] = os.path.expanduser(value)
    if opt['is_train']:
        root = paths['experiments_root'] = str(root_path / 'experiments' / opt['name'])
        paths.update(models=f'{root}/models', training_states=f'{root}/training_states', log=root)
        paths['visualization'] = f'{root}/visualization'
        if 'debug' in opt['name']:  # basicsr's debug mode
            if 'val' in opt:
                opt['val']['val_freq'] = 8
            opt['logger'].update(print_freq=1, save_checkpoint_freq=8)
    else:
        root = paths['results_root'] = str(root_path / 'results' / opt['name'])
        paths.update(log=root, visualization=f'{root}/visualization')


def check_start_up(opt: dict, *, root_path: str | Path) -> dict:
    """The start-up checks of a run, in place, before any dataset or network is built (returns ``opt``):

    - without CUDA, ``num_gpu`` becomes 0 so the run happens on the CPU, and a CUDA prefetcher
      (``prefetch_mode: cuda``, ``pin_memory``) falls back to the CPU one with a warning;
    - ``logger.wandb.project`` without the ``wandb`` package (``pip install -e '.[wandb]'``), or
      without a wandb login while ``WANDB_MODE`` is unset, is dropped with a warning: the run logs
      to tensorboard only;
    - a network or metric that needs an optional package names it;
    - relative data and weight paths are resolved against the project root (BasicSR resolves
      them against the working directory, so a run started elsewhere silently missed them);
    - every data folder and weight file the run needs must exist and not be empty (resume
      states excepted), and the ImageNet backbones the run builds must be found: all that are
      missing are listed in one error (:func:`missing_files`), one per line;
    - every image of the datasets decodes (:func:`aesop.data.scan.scan_dataset_folders`), none is smaller than the
      crop its dataset cuts (``gt_size``, ``lq_size``), and every metric's ``crop_border`` leaves pixels of the
      smallest validation or test image (:func:`check_crop_borders`).
    """
    for phase, dataset in opt['datasets'].items():
        if dataset.get('metrics') is not None:  # the release's real-world file
            warn(opt, f'datasets.{phase}.metrics is ignored (as basicsr does): metrics are read from val.metrics')
    if not opt.get('is_train', True) and 'val' in opt:
        opt['val'].setdefault('suffix', None)  # basicsr's SRModel reads it in test mode (a ~ default: not written)
    paths = opt.get('path') or {}
    arch = (opt.get('network_g') or {}).get('type')
    weightless = arch in ARCH_REGISTRY and getattr(ARCH_REGISTRY.get(arch), 'weightless', False)  # AesopBicubic
    testing = not opt.get('is_train', True)
    if testing and not weightless and not paths.get('pretrain_network_g') and not paths.get('allow_random_init'):
        raise AesopError(
            'path.pretrain_network_g is not set: testing would score a randomly initialised network '
            '(set path.allow_random_init: true to do that on purpose)'
        )
    if not torch.cuda.is_available():
        opt['num_gpu'] = 0
    if opt.get('num_gpu') == 0:
        _cpu_prefetch(opt)
    check_wandb(opt)
    check_optional_packages(opt)
    check_niqe(opt)
    problems = missing_files(opt, root=Path(root_path))
    if len(problems) == 1:
        raise AesopError(problems[0])
    if problems:  # all at once, one per line: not one by one over as many runs
        raise AesopError('\n  '.join([f'{len(problems)} files or folders the run needs are missing:', *problems]))
    resume, experiment = (opt.get('path') or {}).get('resume_state'), (opt.get('path') or {}).get('experiments_root')
    if resume and experiment and Path(resume).resolve().parent.parent != Path(experiment).resolve():
        raise AesopError(
            f'path.resume_state {resume} is not a state of this experiment ({experiment}/training_states): '
            'a resumed run continues its own experiment; set name to that experiment'
        )
    from aesop.data.scan import check_dataset_files, scan_dataset_folders

    smallest = scan_dataset_folders(opt)  # a corrupt image or a looping symlink refused now, not when a batch draws it
    check_dataset_files(opt)
    check_crop_borders(opt, smallest)
    return opt


def check_crop_borders(opt: dict, smallest: Mapping[str, tuple[Path, tuple[int, int]]]) -> None:
    """Each ``val.metrics`` entry's ``crop_border`` leaves every GT image of the validation and test sets it scores
    (``smallest``: each one's GT image with the smallest side, from the start-up scan) the least side its metric
    needs (:func:`aesop.metrics.scoring.crop_shortfall`: SSIM 11 px, NIQE 96, others 1); less scored NaN (basicsr's
    PSNR of an empty crop, exit status 0) or failed after the images were made."""
    for key, entry in ((opt.get('val') or {}).get('metrics') or {}).items():
        border = entry.get('crop_border') or 0
        for phase, dataset in opt['datasets'].items():
            if phase == 'train' or not scores_on(entry, dataset.get('name')) or phase not in smallest:
                continue
            path, (width, height) = smallest[phase]
            if short := crop_shortfall((width, height), border, entry['type']):
                left, need, most = short
                fix = f'at most {most}' if most >= 0 else f'leave {key} out of this set: its images are too small'
                raise AesopError(
                    f'option val.metrics.{key}.crop_border {border} leaves {left} of {path} ({height}×{width}, '
                    f'datasets.{phase}.dataroot_gt) for {entry["type"]}, which needs {need} px a side: {fix}'
                )


METRIC_INPUTS = ('img', 'img2', 'lq')  # what basicsr's validation passes a metric
# initial weights of networks a run saves (not needed on resume; a frozen network's always are)
SAVED_NETWORKS = ('pretrain_network_g', 'pretrain_network_d', 'pretrain_network_decoder')
# basicsr's datasets built as this package's subclass (same options and items, one-line errors)
UPGRADED_DATASETS = {'PairedImageDataset': 'AesopPairedImageDataset'}


def _cpu_prefetch(opt: dict) -> None:
    """Without a GPU, the CUDA prefetcher and pinned memory become the CPU prefetcher."""
    for phase, dataset in (opt.get('datasets') or {}).items():
        if dataset.get('prefetch_mode') == 'cuda' or dataset.get('pin_memory'):
            warn(opt, f'datasets.{phase}: prefetch_mode cuda / pin_memory need a GPU; using the CPU prefetcher')
            dataset['prefetch_mode'] = None
            dataset['pin_memory'] = False


def check_optional_packages(opt: dict) -> None:
    """A network or metric that needs an optional package (its ``requires = (module, extra)``) names it
    and its extra at start-up: a pyiqa metric would otherwise stop a training run at its first validation."""
    for key, node in iter_keyed_mappings(opt):
        name = node.get('type')
        for registry in (ARCH_REGISTRY, METRIC_REGISTRY):
            if isinstance(name, str) and name in registry and (needs := getattr(registry.get(name), 'requires', None)):
                module, extra = needs
                if importlib.util.find_spec(module) is None:
                    raise AesopError(
                        f"{name} (option {key}) needs the optional package {module}: pip install -e '.[{extra}]'"
                    )


def check_niqe(opt: dict) -> None:
    """Which NIQE each ``aesop_niqe`` entry runs, at start-up: ``implementation: pyiqa`` without pyiqa is refused
    naming the extra; ``auto`` without pyiqa says once that basicsr's computes it (not the release's pyiqa one)."""
    for key, entry in ((opt.get('val') or {}).get('metrics') or {}).items():
        if entry.get('type') != 'aesop_niqe':
            continue
        implementation = entry.get('implementation', 'auto')
        try:
            used = niqe_implementation(implementation, entry.get('options'))
        except AesopError as error:
            raise AesopError(f'{error} (option val.metrics.{key})') from None
        if implementation == 'auto' and used == 'basicsr':
            warn(
                opt,
                f"val.metrics.{key}: pyiqa is not installed, so NIQE is basicsr's calculate_niqe, labelled "
                f"'{key} (basicsr)'; the release's is pyiqa's ({IQA_EXTRA}) and gives other numbers",
            )


def missing_files(opt: dict, *, root: Path) -> list[str]:
    """One line for each data folder or file the run reads that is missing (or an empty data folder), with the
    option key, the path and where to get it; ``opt``'s relative paths are resolved against ``root`` on the way
    (in place). Then one for each ImageNet backbone file (the perceptual loss's VGG19, LPIPS's and DISTS's) that
    :class:`~aesop.backbones.OfflineZoo` would not find, and one for FID's Inception weights when an entry needs
    them (:func:`~aesop.metrics.fid.missing_fid_weights`)."""
    problems = []
    for key, container, name, kind in file_options(opt):
        path = Path(container[name]).expanduser()
        if not path.is_absolute():
            path = root / path
        container[name] = str(path)
        if kind == 'dir' and not path.is_dir():
            where = _where_data_comes_from(opt, path, root)
            problems.append(f'dataset folder not found: {path} (option {key}): {where}')
        elif kind == 'dir' and next(path.iterdir(), None) is None:
            problems.append(f'dataset folder is empty: {path} (option {key})')
        elif kind == 'file' and path.is_dir():
            state = 'resume_state' in key
            what = 'a training state (training_states/<iter>.state) or use --auto_resume' if state else 'a file'
            problems.append(f'{path} (option {key}) is a folder: name {what}')
        elif kind == 'file' and not path.is_file():
            data = key.startswith('datasets.')
            where = _where_data_comes_from(opt, path, root) if data else where_weights_come_from(path)
            problems.append(f'file not found: {path} (option {key}): {where}')
    for key, name, purpose in backbones(opt):
        if (problem := missing_imagenet_file(name, purpose=purpose, option=key)) is not None:
            problems.append(problem)
    metrics = (opt.get('val') or {}).get('metrics') or {}
    inception = [f'val.metrics.{key}' for key, entry in metrics.items() if is_set_level(entry.get('type'))]
    if inception and (problem := missing_fid_weights(inception)) is not None:  # FID, patch-FID: one file
        problems.append(problem)
    return list(dict.fromkeys(problems))  # a backbone two metrics build is named once


# what makes the demo's data (datasets/demo) and checkpoints (the runs of options/demo)
MAKE_DEMO = "run make demo (scripts/demo.py makes the demo's data and checkpoints)"


def _where_data_comes_from(opt: dict, path: Path, root: Path) -> str:
    """Where the data at ``path`` comes from: the demo (``datasets/demo`` under ``root``), else your own copy, with
    the docs' section for a training or a test run."""
    if path.resolve().is_relative_to((root / 'datasets' / 'demo').resolve()):
        return MAKE_DEMO
    training = opt.get('is_train', True)
    doc = 'docs/training.md#train-for-real-df2k-several-gpus' if training else 'docs/evaluation.md#the-papers-test-sets'
    return f'edit the option file to point at your data (see {doc})'


def where_weights_come_from(path: Path) -> str:
    """Where to get the checkpoint ``path`` names: the address of a published one (by its file name), or the
    option file of this project whose run writes it (``experiments/<name>/models/…``; a demo run's: ``make demo``)."""
    source = {**PUBLISHED_WEIGHTS, CLIP_RN50['file']: CLIP_RN50['url']}.get(path.name)
    if source is not None:
        return f'download it from {source}'
    if path.parent.name == 'models' and (made_by := option_file_named(path.parent.parent.name)) is not None:
        if Path(made_by).parent == Path('options', 'demo'):
            return f"written by the demo's stage {made_by}: {MAKE_DEMO}"
        return f'an earlier stage writes it: python aesop/train.py -opt {made_by}'
    return 'edit the option file or put the file there'


def option_file_named(name: str) -> str | None:
    """The training option file of this project (``options/*.yml`` or the demo's ``options/demo/*.yml`` of the
    clone) whose run is called ``name``, as a path relative to the clone, or ``None``."""
    clone = clone_root()
    for path in [*sorted(clone.glob('options/*.yml')), *sorted(clone.glob('options/demo/*.yml'))] if clone else ():
        found = re.search(r'^name:\s*(\S+)', path.read_text(), re.MULTILINE)
        if found and found.group(1) == name and path.name.startswith(('train_', 'finetune_')):
            return str(path.relative_to(clone))
    return None


def backbones(opt: dict) -> Iterator[tuple[str, str, str]]:
    """``(option key, torchvision builder, purpose)`` for every ImageNet backbone the run builds through
    :class:`~aesop.backbones.OfflineZoo`: the perceptual loss's VGG (basicsr's ``PerceptualLoss``, training only)
    and those of the ``val.metrics`` entries on a torchvision backbone (LPIPS, DISTS:
    :data:`~aesop.metrics.metrics.METRIC_BACKBONES`)."""
    if opt.get('is_train', True):
        for key, value in (opt.get('train') or {}).items():
            if isinstance(value, dict) and value.get('type') == 'PerceptualLoss':
                yield f'train.{key}', value.get('vgg_type', 'vgg19'), 'perceptual loss'
    for key, value in ((opt.get('val') or {}).get('metrics') or {}).items():
        if (backbone := metric_backbone(value)) is not None and backbone.builder is not None:
            yield f'val.metrics.{key}', backbone.builder, backbone.purpose


def file_options(opt: dict) -> Iterator[tuple[str, dict, str, str]]:
    """Yield ``(dotted key, container, name, 'dir' | 'file')`` for every path the run reads."""
    for phase, dataset in opt.get('datasets', {}).items():
        for name in ('dataroot_gt', 'dataroot_lq'):
            if dataset.get(name) is not None:
                yield f'datasets.{phase}.{name}', dataset, name, 'dir'
        lmdb = (dataset.get('io_backend') or {}).get('type') == 'lmdb'  # lmdb reads its own meta_info.txt
        for name in ('meta_info_file', 'meta_info'):  # PairedImageDataset / RealESRGANDataset
            if dataset.get(name) is not None and not lmdb:
                yield f'datasets.{phase}.{name}', dataset, name, 'file'
    paths = opt.get('path', {})
    resuming = is_resuming(opt)
    for name, value in paths.items():
        if value is None or not name.startswith(('pretrain_network', 'resume_state')):
            continue
        if resuming and name in SAVED_NETWORKS:
            continue  # a resumed run loads its own checkpoints, never the initial weights
        if name == 'pretrain_network_decoder' and paths.get('pretrain_network_g'):
            continue  # ignored when the whole auto-encoder is loaded (e.g. on resume)
        yield f'path.{name}', paths, name, 'file'
    for section in ('train', 'val'):
        yield from _loss_files(opt.get(section) or {}, section)
    for key, network in opt.items():  # e.g. network_clip's pretrained CLIP weights
        if key.startswith('network_') and isinstance(network, dict):
            yield from _loss_files(network, key)


def is_resuming(opt: dict) -> bool:
    """Whether this run resumes: ``path.resume_state``, or ``--auto_resume`` with a training state to read."""
    paths = opt.get('path') or {}
    if paths.get('resume_state'):
        return True
    states = paths.get('training_states')
    return bool(opt.get('auto_resume') and states and any(Path(states).glob('*.state')))


def _loss_files(node: dict, prefix: str) -> Iterator[tuple[str, dict, str, str]]:
    """Checkpoint paths in loss, metric and network options: ``pretrained`` (the release's keys are translated)."""
    for name, value in node.items():
        if isinstance(value, dict):
            yield from _loss_files(value, f'{prefix}.{name}')
        elif isinstance(value, str) and name == 'pretrained':
            yield f'{prefix}.{name}', node, name, 'file'


def check_components(opt: dict) -> None:
    """Every ``type`` names a registered component and every option is one it takes.

    Raises an :class:`AesopError` naming the option key, with the closest registered names
    for an unknown type and the accepted options for an unknown key. Also checks that an
    auto-encoder's scale is the run's ``scale``, and the optimisers and the scheduler
    (:func:`aesop.models.optim.check_optim_options`).
    """
    from aesop.models.optim import check_optim_options
    from aesop.models.train_step import check_step_options

    model = _lookup(MODEL_REGISTRY, opt['model_type'], 'model_type') if 'model_type' in opt else None
    readable = getattr(model, 'LOSS_OPTIONS', None)  # the loss entries the model reads, if it says
    if hasattr(model, 'check_options'):  # e.g. the real-world model's degradation settings
        model.check_options(opt)
    check_step_options(model, opt)
    check_optim_options(opt)
    for key, value in opt.items():
        if key.startswith('network_') and isinstance(value, dict):
            _check_arch(value, key, opt.get('scale'))
    for phase, dataset in (opt.get('datasets') or {}).items():
        _lookup(DATASET_REGISTRY, dataset.get('type'), f'datasets.{phase}.type')
    for key, value in (opt.get('train') or {}).items():
        if readable is not None and key.endswith('_opt') and value is not None and key not in readable:
            raise AesopError(
                f'{opt["model_type"]} does not read train.{key}: {did_you_mean(key, readable)}'
                f'it reads {", ".join(readable)}'
            )
        if key.endswith('_opt') and isinstance(value, dict) and 'type' in value:
            check_component(_lookup(LOSS_REGISTRY, value['type'], f'train.{key}.type'), value, f'train.{key}')
            if isinstance(value.get('autoencoder'), dict):
                _check_arch(value['autoencoder'], f'train.{key}.autoencoder', opt.get('scale'))
    for key, value in ((opt.get('val') or {}).get('metrics') or {}).items():
        _check_metric(_lookup(METRIC_REGISTRY, value.get('type'), f'val.metrics.{key}.type'), value, key)
        _check_metric_scope(opt, value, key)
        _check_set_level(model, value, key)


def _check_set_level(model, entry: dict, key: str) -> None:
    """A set-level metric (FID, patch-FID) needs this package's validation, which keeps each image's features and
    computes the value once per set: basicsr's models would call it on one pair at a time."""
    if not is_set_level(entry['type']) or model is None:
        return
    from aesop.models.base import AesopModel

    if not issubclass(model, AesopModel):
        raise AesopError(
            f'val.metrics.{key}: {entry["type"]} is set-level, computed by the validation of the models of this '
            f"package (Aesop…Model), not by basicsr's {model.__name__}"
        )


def _check_metric(function, options: dict, key: str) -> None:
    """A metric entry's options are parameters of its function (basicsr's ``better`` and this project's
    ``datasets`` too), at start-up."""
    what = f'metric {options["type"]} (option val.metrics.{key})'
    check_call(function, options, key=f'val.metrics.{key}', what=what, skip=METRIC_INPUTS, extra=('better', SCOPE_KEY))


def _check_metric_scope(opt: dict, entry: dict, key: str) -> None:
    """``val.metrics.<key>.datasets``: a list of the names of the run's validation or test sets (a misspelt name would
    silently compute the metric nowhere); ``val.save_best`` cannot rely on a metric its dataset does not compute."""
    names = entry.get(SCOPE_KEY)
    if names is None:
        return
    option = f'val.metrics.{key}.{SCOPE_KEY}'
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise AesopError(f'option {option} must be a list of dataset names (their name:), got {names!r}')
    known = [d.get('name') for phase, d in (opt.get('datasets') or {}).items() if phase != 'train']
    if not known:  # a tool's read of the file, or training without validation: nothing to restrict
        return
    for name in names:
        if name not in known:
            raise AesopError(
                f'option {option}: {name!r} is not the name of a validation or test set: '
                f'{did_you_mean(name, [n for n in known if n])}(known: {", ".join(map(str, known))})'
            )
    rule = (opt.get('val') or {}).get('save_best') or {}
    if rule.get('metric') == key:
        deciding = rule.get('dataset') or next(
            (d.get('name') for phase, d in opt['datasets'].items() if phase.split('_')[0] == 'val'), None
        )
        if deciding not in names:
            raise AesopError(
                f'val.save_best.metric {key!r} is computed on {", ".join(names)} only ({option}), '
                f'not on {deciding!r}, the validation set that decides'
            )


def _check_arch(arch: dict, key: str, scale: int | None) -> None:
    from aesop.official import rewrite_entry

    arch = rewrite_entry(arch)  # a release name (e.g. ``--arch '{type: DRCT, …}'``): checked as what it builds
    check_component(_lookup(ARCH_REGISTRY, arch.get('type'), f'{key}.type'), arch, key)
    for name, value in arch.items():
        if isinstance(value, dict) and 'type' in value:
            _check_arch(value, f'{key}.{name}', None)
    if arch['type'] in AUTOENCODER_TYPES and scale is not None:
        ae_scale = arch.get('scale', 4)
        if ae_scale != scale:
            raise AesopError(f'the auto-encoder at {key} works at ×{ae_scale} but scale is {scale}')


def _lookup(registry, name, key: str):
    if name in registry:
        return registry.get(name)
    close = difflib.get_close_matches(str(name), list(registry.keys()), n=3, cutoff=0.5)
    hint = f'; did you mean {", ".join(close)}?' if close else ''
    raise AesopError(f'unknown {registry._name} type {name!r} (option {key}){hint}')
