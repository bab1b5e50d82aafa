"""Reading option files safely, and normalising the options right after BasicSR parses them.

:func:`load_option_file` is the one way an option file is read (train, test, the tools, and
basicsr's own parser through :func:`ordered_yaml`): YAML's safe loader, so a tag such as
``!!python/object/apply`` is refused instead of running code, with the mappings as ``OrderedDict``
as basicsr's loader gives them. :func:`normalize_options` runs before any dataset or network is
built, so a wrong path fails at start-up with the option key that holds it, not an hour into
training.
"""

from __future__ import annotations

import ast
import builtins
import collections
import difflib
import importlib.util
import inspect
import re
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import yaml
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from aesop.archs.autoencoder_arch import AUTOENCODER_TYPES
from aesop.archs.hraware_arch import CLIP_RN50
from aesop.backbones import missing_imagenet_file
from aesop.errors import AesopError
from aesop.metrics.metrics import metric_backbone
from aesop.schema import admits, apply_schema
from aesop.utils import clone_root, closest, did_you_mean, iter_keyed_mappings, warn
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


def ordered_yaml() -> tuple[type[yaml.SafeLoader], type[yaml.SafeDumper]]:
    """basicsr's ``ordered_yaml`` made safe: (loader, dumper) for option files."""
    return OptionLoader, OptionDumper


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


def load_option_file(path: str | Path, *, required: tuple[str, ...] = ()) -> dict:
    """The options of ``path`` as a mapping (safely parsed, see :func:`parse_yaml`).

    Refuses, in one line each: a missing or unreadable file, an empty one, one whose top level is
    not a mapping, and one without the ``required`` top-level sections.
    """
    path = Path(path)
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
    missing = [key for key in required if not isinstance(opt.get(key), dict)]
    if missing:
        raise AesopError(f'option file {path} has no {", ".join(missing)} section (each a mapping)')
    return opt


def read_option_file(path: str | Path, *, required: tuple[str, ...] = ()) -> dict:
    """:func:`load_option_file` with the release's names translated (:func:`aesop.official.translate_options`):
    what the tools read an option file with."""
    from aesop.official import translate_options

    return translate_options(load_option_file(path, required=required))


# top-level sections basicsr reads unconditionally, by stage (is_train)
REQUIRED_SECTIONS = {
    True: ('network_g', 'datasets', 'train', 'path', 'logger'),
    False: ('network_g', 'datasets', 'path', 'val'),
}
_KEY = re.compile(r'[A-Za-z_][\w.\-]*')


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


def prepare_options(opt: dict) -> dict:
    """The options as every run reads them, prepared once, in place: the release's names translated
    (:func:`aesop.official.translate_options`), basicsr's ``PairedImageDataset`` built as
    :class:`~aesop.data.AesopPairedImageDataset`, and the schema applied (:func:`aesop.schema.apply_schema`:
    validated values and every declared default written back). Returns ``opt``."""
    from aesop.official import translate_options

    translate_options(opt)
    for dataset in (opt.get('datasets') or {}).values():
        if isinstance(dataset, dict):
            dataset['type'] = UPGRADED_DATASETS.get(dataset.get('type'), dataset.get('type'))
    return apply_schema(opt)


def normalize_options(opt: dict, *, root_path: str | Path, prepared: bool = False) -> dict:
    """Normalise ``opt`` in place and return it.

    - unless ``prepared`` (the entry points prepare the file before basicsr's parser reads it), the options
      are prepared (:func:`prepare_options`: the release's names, the schema's validated values and defaults);
    - without CUDA, ``num_gpu`` becomes 0 so the run happens on the CPU, and a CUDA prefetcher
      (``prefetch_mode: cuda``, ``pin_memory``) falls back to the CPU one with a warning;
    - ``logger.wandb.project`` without the ``wandb`` package (``pip install -e '.[wandb]'``), or
      without a wandb login while ``WANDB_MODE`` is unset, is dropped with a warning: the run logs
      to tensorboard only;
    - relative data and weight paths are resolved against the project root (BasicSR resolves
      them against the working directory, so a run started elsewhere silently missed them);
    - every ``type`` must be registered and take the options given (:func:`check_components`);
    - every data folder and weight file the run needs must exist and not be empty (resume
      states excepted), and the ImageNet backbones the run builds must be found: all that are
      missing are listed in one error (:func:`missing_files`), one per line.
    """
    if not prepared:
        prepare_options(opt)
    check_components(opt)  # every ``type:`` entry's options, against its signature
    for phase, dataset in opt['datasets'].items():
        if dataset.get('metrics') is not None:  # the release's real-world file
            warn(opt, f'datasets.{phase}.metrics is ignored (as basicsr does): metrics are read from val.metrics')
    if not opt.get('is_train', True) and 'val' in opt:
        opt['val'].setdefault('suffix', None)  # basicsr's SRModel reads both in test mode
        opt['val'].setdefault('save_img', False)
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

    scan_dataset_folders(opt)  # a corrupt image or a looping symlink refused now, not when a batch draws it
    check_dataset_files(opt)
    return opt


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


def missing_files(opt: dict, *, root: Path) -> list[str]:
    """One line for each data folder or file the run reads that is missing (or an empty data folder), with the
    option key, the path and where to get it; ``opt``'s relative paths are resolved against ``root`` on the way
    (in place). Then one for each ImageNet backbone file (the perceptual loss's VGG19, LPIPS's and DISTS's) that
    :class:`~aesop.backbones.OfflineZoo` would not find."""
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
        elif kind == 'file' and not path.is_file():
            data = key.startswith('datasets.')
            where = _where_data_comes_from(opt, path, root) if data else where_weights_come_from(path)
            problems.append(f'file not found: {path} (option {key}): {where}')
    for key, name, purpose in backbones(opt):
        if (problem := missing_imagenet_file(name, purpose=purpose, option=key)) is not None:
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
    auto-encoder's scale is the run's ``scale``.
    """
    from aesop.models.train_step import check_step_options

    model = _lookup(MODEL_REGISTRY, opt['model_type'], 'model_type') if 'model_type' in opt else None
    readable = getattr(model, 'LOSS_OPTIONS', None)  # the loss entries the model reads, if it says
    if hasattr(model, 'check_options'):  # e.g. the real-world model's degradation settings
        model.check_options(opt)
    check_step_options(model, opt)
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
            _check_kwargs(_lookup(LOSS_REGISTRY, value['type'], f'train.{key}.type'), value, f'train.{key}')
            if isinstance(value.get('autoencoder'), dict):
                _check_arch(value['autoencoder'], f'train.{key}.autoencoder', opt.get('scale'))
    for key, value in ((opt.get('val') or {}).get('metrics') or {}).items():
        _check_metric(_lookup(METRIC_REGISTRY, value.get('type'), f'val.metrics.{key}.type'), value, key)


def _check_metric(function, options: dict, key: str) -> None:
    """A metric entry's options are parameters of its function (basicsr's ``better`` too), at start-up."""
    params = _parameters(function)
    if params is None:
        return
    named = [n for n, p in params.items() if p.kind is not p.VAR_KEYWORD and n not in ('img', 'img2', 'lq')]
    accepted = [*named, 'better']
    _refuse_unknown(options, accepted, f'metric {options["type"]} (option val.metrics.{key})')
    _refuse_strings_for_numbers(options, params, f'val.metrics.{key}')


def _check_arch(arch: dict, key: str, scale: int | None) -> None:
    from aesop.official import rewrite_entry

    arch = rewrite_entry(arch)  # a release name (e.g. ``--arch '{type: DRCT, …}'``): checked as what it builds
    _check_kwargs(_lookup(ARCH_REGISTRY, arch.get('type'), f'{key}.type'), arch, key)
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


def _check_kwargs(component, options: dict, key: str) -> None:
    params = _parameters(component)
    if params is None:
        return
    _refuse_strings_for_numbers(options, params, key)
    accepted = _keywords(component)
    if accepted is None:  # it takes **kwargs and what it does with them can't be told
        return
    _refuse_unknown(options, accepted, f'{options["type"]} (option {key})')
    missing = [n for n in params if n in accepted and params[n].default is inspect.Parameter.empty and n not in options]
    if missing:
        raise AesopError(f'{options["type"]} (option {key}) needs {", ".join(missing)}')


def _keywords(component: Callable, cls: type | None = None, seen: tuple[Callable, ...] = ()) -> list[str] | None:
    """The keyword options ``component`` (a class: its ``__init__``) really reads; ``None``: anything, as far as
    can be told.

    Its named parameters; for a ``**kwargs`` (read with :mod:`ast`), also the keys its body reads
    (``kwargs['x']``, ``kwargs.get('x')``, ``kwargs.pop('x')``, ``'x' in kwargs``) and, where it passes
    ``**kwargs`` on, what the callee reads by the same rule (``super().__init__``, ``super(C, self).__init__``,
    a class or function its module names), less the callee's parameters that call fills itself (its first
    positional arguments, its explicit keywords). ``kwargs`` unused (basicsr's ``SwinIR``): the named parameters
    only. Any other use (stored, iterated, ``locals()``), an unresolvable callee (a name the function binds itself,
    e.g. ``Block = Other; Block(**kwargs)`` or a parameter), or no source: ``None``. ``cls`` is the class being
    built (whose MRO ``super()`` follows); ``seen`` stops forwarding cycles.
    """
    if isinstance(component, type):
        cls, function = component, component.__init__
    else:
        function = component
    params = _parameters(component)
    if params is None:
        return None
    accepted = [n for n, p in params.items() if p.kind is not p.VAR_KEYWORD and n != 'self']
    var = next((n for n, p in params.items() if p.kind is p.VAR_KEYWORD), None)
    if var is None or function in seen:
        return accepted
    try:
        definition = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0]
    except (OSError, TypeError, SyntaxError, IndexError):
        return None
    if not isinstance(definition, ast.FunctionDef) or getattr(definition.args.kwarg, 'arg', None) != var:
        return None  # the source is not this signature's (a lambda, another constructor)
    owner = next((k for k in (cls.__mro__ if cls else ()) if vars(k).get(function.__name__) is function), None)
    namespace = {**vars(builtins), **getattr(function, '__globals__', {})}
    parents = {child: node for node in ast.walk(definition) for child in ast.iter_child_nodes(node)}
    local = _local_names(definition)
    uses = [n for n in ast.walk(definition) if isinstance(n, ast.Name) and n.id in (var, 'locals')]
    for name in sorted(uses, key=lambda n: (n.lineno, n.col_offset)):  # in source order, for the message
        parent = parents[name]
        call = parents.get(parent)
        if name.id == 'locals':  # locals() hands kwargs on unseen
            return None
        if isinstance(parent, ast.keyword) and parent.arg is None and isinstance(call, ast.Call):  # f(**kwargs)
            func, target, implicit = call.func, None, 0
            if isinstance(func, ast.Attribute) and getattr(getattr(func.value, 'func', None), 'id', None) == 'super':
                args = func.value.args  # super().f(**kwargs), super(C, self).f(**kwargs): the next class in cls's MRO
                start = namespace.get(args[0].id) if args and isinstance(args[0], ast.Name) else owner
                if isinstance(start, type) and cls is not None and issubclass(cls, start):
                    target = getattr(super(start, cls), func.attr, None)
                    later = cls.__mro__[cls.__mro__.index(start) + 1 :]
                    raw = next((vars(k)[func.attr] for k in later if func.attr in vars(k)), None)
                    implicit = 0 if isinstance(raw, (staticmethod, classmethod)) else 1  # super() passes self
            else:  # Name(**kwargs), Name.f(**kwargs), module.Name(**kwargs)
                path = []
                while isinstance(func, ast.Attribute):
                    path, func = [func.attr, *path], func.value
                if isinstance(func, ast.Name) and func.id in local:
                    return None  # bound in the function (Block = Other, a parameter): not the module's name
                target = namespace.get(func.id) if isinstance(func, ast.Name) else None
                for attr in path:
                    target = getattr(target, attr, None)
            forwarded = _keywords(target, cls, (*seen, function))
            if forwarded is None:
                return None
            filled = _filled_by_call(target, call, implicit)
            accepted += [n for n in forwarded if n not in filled]
        elif (
            isinstance(parent, ast.Attribute)
            and parent.attr in ('get', 'pop')
            and isinstance(call, ast.Call)
            and call.func is parent
            and call.args
            and isinstance(call.args[0], ast.Constant)
        ):  # kwargs.get('x'), kwargs.pop('x', default)
            accepted.append(call.args[0].value)
        elif (
            isinstance(parent, ast.Subscript)
            and parent.value is name
            and isinstance(parent.ctx, ast.Load)
            and isinstance(parent.slice, ast.Constant)
        ):  # kwargs['x']
            accepted.append(parent.slice.value)
        elif (
            isinstance(parent, ast.Compare)
            and parent.comparators == [name]
            and isinstance(parent.ops[0], (ast.In, ast.NotIn))
            and isinstance(parent.left, ast.Constant)
        ):  # 'x' in kwargs
            accepted.append(parent.left.value)
        else:
            return None
    return [n for n in dict.fromkeys(accepted) if isinstance(n, str)]


def _local_names(definition: ast.FunctionDef) -> set[str]:
    """The names ``definition`` binds itself (so a call through one is not the module's): its parameters and those
    of the functions and lambdas inside it, and every name it assigns, deletes, imports or defines."""
    names = set()
    for node in ast.walk(definition):
        if isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split('.')[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not definition:
            names.add(node.name)
    return names


def _filled_by_call(target: Callable, call: ast.Call, implicit: int) -> set[str]:
    """The parameters of ``target`` that ``call`` fills itself, so its ``**kwargs`` cannot: the first positional
    ones (after the ``implicit`` ones ``super()`` passes, i.e. ``self``) up to its first ``*args``, and those it
    names as keywords."""
    named = {k.arg for k in call.keywords if k.arg is not None}
    count = next((i for i, a in enumerate(call.args) if isinstance(a, ast.Starred)), len(call.args))
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return named
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [p.name for p in params if p.kind in kinds]
    return named | set(positional[implicit : implicit + count])


def _refuse_strings_for_numbers(options: dict, params: dict[str, inspect.Parameter], key: str) -> None:
    """A string given to a parameter that takes a number (its annotation says so, or its default is one) is an
    error naming the option: the loader reads ``loss_weight: 1e-2`` as a number, so this one was quoted."""
    for name, value in options.items():
        parameter = params.get(name)
        if parameter is None or not isinstance(value, str):
            continue
        annotation = parameter.annotation
        if annotation is parameter.empty:
            number = isinstance(parameter.default, (int, float)) and not isinstance(parameter.default, bool)
        else:
            written = annotation.__name__ if isinstance(annotation, type) else str(annotation)
            number = bool(re.search(r'\b(int|float)\b', written)) and not re.search(r'\b(str|Any)\b', written)
        if number:
            raise AesopError(f'option {key}.{name} must be a number, got {value!r}')


def _refuse_unknown(options: dict, accepted: list[str], what: str) -> None:
    """The first key of ``options`` (``type`` aside) not in ``accepted`` is an error with the closest one."""
    for name in options:
        if name != 'type' and name not in accepted:
            hint = did_you_mean(name, accepted)
            raise AesopError(f'unknown option {name!r} for {what}: {hint}it takes {", ".join(accepted)}')


def _parameters(function) -> dict[str, inspect.Parameter] | None:
    """The named (keyword-passable) parameters of ``function`` and its ``**kwargs`` if any; ``None``
    when it has no inspectable signature."""
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD)
    return {n: p for n, p in params.items() if p.kind in kinds}
