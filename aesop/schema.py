"""The declared schema of an option file's sections (pydantic): every key basicsr 1.4.2, this
project and the authors' release read, with its type. An unknown key is a start-up error naming
the closest known one; a wrong type names the key and the value.

Components (``type:`` entries: networks, losses, metrics, datasets) are not declared here: their options
are the parameters of the registered class or function, validated the same way against its annotated
signature (:func:`check_call`; a constructor decorated with :func:`checked` validates its own call so,
with the same messages). An annotation carries its rule (``Literal[...]``, ``Annotated[float, Field(ge=0)]``,
a ``BeforeValidator`` whose ``ValueError`` reads ``must …``), so a rule is written once, next to the parameter.

:func:`apply_schema` validates strictly and writes the result back: the dict basicsr and the models
read holds the validated values and every declared default (what ``docs/options.md`` calls a default
is what runs). Strict is pydantic's strict mode: a value has the type YAML gave it (the loader reads ``1e-3``
and ``4e5`` as floats, :class:`aesop.options.OptionLoader`), so ``'no'`` for a boolean, ``'4'`` or ``true``
for an integer and a quoted ``'1e-3'`` for a number are refused. The one coercion is an integral float for an
int (``total_iter: 4e5``, ``!!float 5e3``, in a list too): that int; ``2.5`` for an int is refused.
"""

from __future__ import annotations

import ast
import builtins
import collections.abc
import copy
import functools
import inspect
import math
import re
import textwrap
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from aesop.errors import AesopError, OptionValueError
from aesop.utils import did_you_mean

__all__ = [
    'LossWeight',
    'Number',
    'OptionFile',
    'Section',
    'admits',
    'apply_schema',
    'check_call',
    'checked',
    'declare_options',
    'keyword_fields',
    'known_keys',
    'option_file',
]

Number = int | float  # an int stays an int
Components = dict[str, Any] | None  # a ``type:`` entry: checked against its signature elsewhere


def loss_weight(value: Any) -> Any:
    """The rule of a loss term's weight (``loss_weight``, basicsr's ``perceptual_weight`` / ``style_weight``, the
    HR-aware ``hf_weight`` / ``lpips_weight``): a finite number ≥ 0 (0 switches the term off). A negative weight
    would train towards the opposite of the term without a word, a NaN or an infinite one only show as a non-finite
    loss at iteration 1."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0:
        raise ValueError(f'must be a finite number ≥ 0, got {value!r}')
    return value


LossWeight = Annotated[float, BeforeValidator(loss_weight)]  # a weight of a loss term (:func:`loss_weight`)


class _Section(BaseModel):
    """A section: unknown keys are refused (``extra='forbid'``); ``PREFIXES`` admit families of keys."""

    model_config = ConfigDict(
        extra='forbid', strict=True, populate_by_name=True, protected_namespaces=(), use_attribute_docstrings=True
    )
    PREFIXES: ClassVar[tuple[str, ...]] = ()  # keys starting with one of these are admitted (e.g. network_*)
    WRITE_DEFAULTS: ClassVar[bool] = True  # apply_schema writes the defaults of keys left out

    @field_validator('*', mode='before')
    @classmethod
    def _integral(cls, value: Any, info: ValidationInfo) -> Any:
        return _integral(cls.model_fields[info.field_name].annotation, value)

    @model_validator(mode='before')
    @classmethod
    def _admit_prefixed(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.PREFIXES:
            return {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith(cls.PREFIXES))}
        return data


Section = _Section  # the base of a section components declare (declare_options)


def _integral(annotation: Any, value: Any) -> Any:
    """An integral float (``4e5``, ``!!float 5e3``) where ``annotation`` takes an int and no float, or a list of
    them, as that int; a list where it takes a tuple (YAML has no tuples), as that tuple; any other value as it
    is (strict mode judges it)."""
    members = _union_members(
        typing.get_args(annotation)[0] if typing.get_origin(annotation) is Annotated else annotation
    )
    if isinstance(value, float) and value.is_integer() and int in members and float not in members:
        return int(value)
    if isinstance(value, list) and any(typing.get_origin(member) is tuple for member in members):
        return tuple(value)
    items = [typing.get_args(member)[0] for member in members if typing.get_origin(member) is list]
    if isinstance(value, list) and len(items) == 1:
        return [_integral(items[0], item) for item in value]
    return value


class IoBackend(_Section):
    type: Literal['disk', 'lmdb', 'memcached'] = 'disk'
    db_paths: str | list[str] | None = None
    """Set by basicsr's lmdb datasets."""
    client_keys: str | list[str] | None = None
    server_list_cfg: str | None = None
    """Memcached."""
    client_cfg: str | None = None
    sys_path: str | None = None


class Dataset(_Section):
    """``datasets.<phase>``: the keys of basicsr's image (and video) datasets and their loaders."""

    name: str | None = None
    type: str
    phase: str | None = None
    """Set by basicsr's parser."""
    scale: int | None = None
    dataroot_gt: str | None = None
    dataroot_lq: str | None = None
    dataroot_flow: str | None = None
    meta_info_file: str | None = None
    """PairedImageDataset."""
    meta_info: str | None = None
    """RealESRGANDataset (``~``: scan the folder)."""
    io_backend: IoBackend | None = None
    filename_tmpl: str = '{}'
    gt_size: int | None = Field(default=None, gt=0)
    """HR patch size of training crops (a multiple of scale)."""
    lq_size: int | None = Field(default=None, gt=0)
    """AesopLRPatchDataset's crop."""
    use_hflip: bool = False
    use_rot: bool = False
    use_shuffle: bool = True
    """The release's key: basicsr always shuffles the training set."""
    mean: list[Number] | None = None
    std: list[Number] | None = None
    color: Literal['y'] | None = None
    # loader
    num_worker_per_gpu: int = Field(default=0, ge=0)
    """Data-loading worker processes per GPU."""
    batch_size_per_gpu: int = Field(default=1, gt=0)
    """Images per GPU (per process) and iteration."""
    dataset_enlarge_ratio: int = Field(default=1, gt=0)
    """Repeat the dataset this many times per epoch."""
    prefetch_mode: Literal['cpu', 'cuda'] | None = None
    num_prefetch_queue: int = Field(default=1, gt=0)
    pin_memory: bool = False
    persistent_workers: bool = False
    # RealESRGANDataset: the blur kernels of the two degradation stages
    blur_kernel_size: int | None = None
    kernel_list: list[str] | None = None
    kernel_prob: list[Number] | None = None
    sinc_prob: Number | None = None
    blur_sigma: list[Number] | None = None
    betag_range: list[Number] | None = None
    betap_range: list[Number] | None = None
    blur_kernel_size2: int | None = None
    kernel_list2: list[str] | None = None
    kernel_prob2: list[Number] | None = None
    sinc_prob2: Number | None = None
    blur_sigma2: list[Number] | None = None
    betag_range2: list[Number] | None = None
    betap_range2: list[Number] | None = None
    final_sinc_prob: Number | None = None
    # basicsr's video datasets
    num_frame: int | None = None
    interval_list: list[int] | None = None
    random_reverse: bool | None = None
    use_flip: bool | None = None
    """The release's (and old basicsr's) name of use_hflip: translated."""
    flip_sequence: bool | None = None
    test_mode: bool | None = None
    cache_data: bool | None = None
    padding: str | None = None
    val_partition: str | None = None
    use_duf_downsampling: bool | None = None
    border: Any = None
    metrics: Components = None
    """The release's real-world file has one here; basicsr ignores it (warned)."""

    @field_validator('use_shuffle', mode='before')
    @classmethod
    def _always_shuffled(cls, value: Any) -> Any:
        if value is not True:
            raise ValueError(f'{value!r} is not possible: basicsr always shuffles the training set')
        return value


class Optimizer(_Section):
    """``train.optim_*``: a ``torch.optim`` optimiser by name (basicsr 1.4.2 builds Adam only). Its other keys are
    that class's keyword arguments (Adam's ``betas``, ``eps``, ``weight_decay``, ``amsgrad``; SGD's ``momentum``,
    ``nesterov``; …), checked against its signature at start-up (``aesop.models.optim``)."""

    model_config = ConfigDict(extra='allow')  # the class's keyword arguments: checked against its signature
    type: str = 'Adam'
    """Any optimiser ``torch.optim`` exports (Adam, AdamW, SGD, RAdam, NAdam, Adamax, Adagrad, RMSprop, …) but
    LBFGS (needs a closure), SparseAdam (sparse gradients) and Muon (2-D parameters)."""
    lr: Number = Field(gt=0, allow_inf_nan=False)
    """The learning rate (the schedule's starting value)."""


class Scheduler(_Section):
    """``train.scheduler``: basicsr's ``MultiStepLR`` (its MultiStepRestartLR: ``milestones``, ``gamma``,
    ``restarts``, ``restart_weights``) or ``CosineAnnealingRestartLR`` (``periods``, ``restart_weights``,
    ``eta_min``), or a ``torch.optim.lr_scheduler`` class by name (``CosineAnnealingLR``, ``OneCycleLR``,
    ``LinearLR``, ``StepLR``, …); its other keys are that class's keyword arguments, checked against its signature
    at start-up. Stepped once per iteration after the first, as basicsr steps its own; one per optimiser."""

    model_config = ConfigDict(extra='allow')  # the class's keyword arguments: checked against its signature
    type: str
    """A scheduler that needs a metric (ReduceLROnPlateau), a function (LambdaLR, MultiplicativeLR) or other
    schedulers (SequentialLR, ChainedScheduler) is refused."""


class Train(_Section):
    """``train``: basicsr's keys, the release's and this project's; ``*_opt`` are loss entries."""

    total_iter: int = Field(gt=0)
    """Iterations to train (the last saves ``latest``)."""
    warmup_iter: int = -1
    """Linear learning-rate warm-up, basicsr's: below this iteration the lr is ``lr × iter / warmup_iter``, then the
    schedule's (-1: none)."""
    ema_decay: Number = Field(default=0, ge=0, lt=1)
    """Decay of the EMA generator ``net_g_ema`` (0: none; 0.999 in the paper; LDL needs it)."""
    optim_g: Optimizer | None = None
    """G's optimiser (every model that trains)."""
    optim_d: Optimizer | None = None
    """D's optimiser (the GAN models)."""
    scheduler: Scheduler | None = None
    """The learning-rate schedule, one per optimiser (none: the lr stays `lr`). On resume the file's optimisers and
    schedule win over the training state's (docs/training.md)."""
    net_d_iters: int = Field(default=1, gt=0)
    """G steps only every n-th iteration (D every iteration)."""
    net_d_init_iters: int = Field(default=0, ge=0)
    """Iterations that train D alone at the start."""
    # this project's models declare their keys next to their code (declare_options): the step options
    # (aesop.models.train_step), relativistic_gan and sync_bn_d (gan_model), allow_psi_change (base),
    # freeze_decoder (ae_model), controller (hraware_model)
    # basicsr's StyleGAN2 and video models
    r1_reg_weight: Number | None = None
    path_reg_weight: Number | None = None
    net_g_reg_every: int | None = None
    net_d_reg_every: int | None = None
    mixing_prob: Number | None = None
    path_batch_shrink: int | None = None
    tsa_iter: int | None = None
    fix_flow: int | None = None
    flow_lr_mul: Number | None = None
    dcn_lr_mul: Number | None = None

    @model_validator(mode='before')
    @classmethod
    def _loss_entries(cls, data: Any) -> Any:
        """``<name>_opt`` keys are loss entries (their options: the loss's signature). Every weight of every entry
        follows :func:`loss_weight`, whatever the loss (basicsr's are not annotated): a ``*_weight`` key, and each
        value of a ``*_weights`` mapping (PerceptualLoss's ``layer_weights``)."""
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(key, str) and key.endswith('_opt') and value is not None and not isinstance(value, dict):
                    raise ValueError(f'train.{key} must be a mapping with a type, got {value!r}')
                if isinstance(key, str) and key.endswith('_opt') and isinstance(value, dict):
                    _check_loss_weights(value, f'train.{key}')
            return {k: v for k, v in data.items() if not (isinstance(k, str) and k.endswith('_opt'))}
        return data


def _check_loss_weights(entry: dict, key: str) -> None:
    """The weights of the loss entry ``entry`` (option ``key``) by :func:`loss_weight`; the first bad one is a
    ``ValueError`` naming its option."""
    weights = [(name, value) for name, value in entry.items() if isinstance(name, str) and name.endswith('_weight')]
    for name, value in entry.items():
        if isinstance(name, str) and name.endswith('_weights') and isinstance(value, dict):
            weights += [(f'{name}.{layer}', weight) for layer, weight in value.items()]
    for name, value in weights:
        try:
            loss_weight(value)
        except ValueError as error:
            raise ValueError(f'option {key}.{name} {error}') from None


class SaveBest(_Section):
    """``val.save_best``: keep the generator of the best validation as ``models/net_g_best.pth`` (any model).

    Paper 003, Sec. 5: "we split a validation set from the testing data and use the early stopping strategy".
    The iteration and value are logged, written beside it (``net_g_best.json``) and kept in the training state,
    so a resumed run replaces the file only with a better one."""

    metric: str
    """A key of ``val.metrics``: its mean over the validation set decides (a set-level metric's value: FID)."""
    better: Literal['higher', 'lower'] | None = None
    """Default: the metric's own ``better`` (basicsr's key); without one, its function's (``calculate_fid``,
    ``calculate_patch_fid``: ``lower``), else ``higher``."""
    dataset: str | None = None
    """The ``name`` of the validation set that decides (default: the first one)."""


class Val(_Section):
    val_freq: int | None = Field(default=None, gt=0)
    """Validate every n iterations."""
    val_start_iter: int = Field(default=0, ge=0)
    """The release's: no validation before this iteration."""
    save_img: bool = False
    """Save the SR images of each validation (test: under results/<name>/visualization)."""
    suffix: str | None = None
    """Suffix of saved test images (default: the option file's name)."""
    pbar: bool = False
    """A progress bar over the validation images."""
    metrics: dict[str, dict[str, Any]] | None = None
    """Metrics by name, each ``{type: …, <its options>}`` (basicsr's and this project's), on every dataset, or with
    ``datasets: [<name>, …]`` on those only; a ``crop_border`` is an integer ≥ 0."""
    tile: int = Field(default=0, ge=0)
    """Validate tile by tile (input px; 0: whole images)."""
    tile_pad: int = Field(default=16, ge=0)
    """Context px around each tile."""
    save_best: SaveBest | None = None
    """Early stopping: keep the best validation's generator (training)."""
    # basicsr's StyleGAN2 and video models
    num_val_samples: int | None = None
    flip_seq: bool | None = None
    center_frame_only: bool | None = None

    @model_validator(mode='before')
    @classmethod
    def _crop_borders(cls, data: Any) -> Any:
        """A metric's ``crop_border`` (the pixels cut off each side before scoring; basicsr's metrics do not annotate
        it) is an integer ≥ 0: a negative one scored an empty crop, a NaN mean with exit status 0."""
        metrics = data.get('metrics') if isinstance(data, dict) else None
        for key, entry in (metrics or {}).items() if isinstance(metrics, dict) else ():
            value = entry.get('crop_border', 0) if isinstance(entry, dict) else 0
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f'option val.metrics.{key}.crop_border must be an integer ≥ 0, got {value!r}')
        return data


class Wandb(_Section):
    project: str | None = None
    resume_id: str | None = None


class Logger(_Section):
    print_freq: int = Field(default=100, gt=0)
    """Log the losses every n iterations."""
    save_checkpoint_freq: int = Field(default=5000, gt=0)
    """Save networks and the training state every n iterations."""
    use_tb_logger: bool = False
    """Write tensorboard logs (tb_logger/<name>)."""
    wandb: Wandb | None = None


class Paths(_Section):
    """``path``: the initial weights of every network (``*_<net>``), resuming, and the folders basicsr sets."""

    PREFIXES = ('pretrain_network_', 'param_key_', 'strict_load_')
    WRITE_DEFAULTS = False  # basicsr's make_exp_dirs makes a folder of every key here it does not know
    SETTINGS: ClassVar[tuple[str, ...]] = ('save_format', 'allow_random_init', 'allow_partial_g')  # not folders
    resume_state: str | None = None
    """A training state to resume from (or ``--auto_resume``)."""
    save_format: Literal['pth', 'safetensors'] = 'pth'
    """How a training run saves its networks (``models/net_g_<iter>``, ``net_d_…``, ``net_g_best``): ``pth``
    (basicsr's pickled ``{params, params_ema}``) or ``safetensors`` (tensors only, one file: ``params.*``,
    ``params_ema.*``); both are read wherever weights are, ``--auto_resume`` too. Training states stay ``.state``."""
    allow_random_init: bool = False
    """Test.py: score a randomly initialised network on purpose."""
    allow_partial_g: bool = False
    """Test.py: score G although ``pretrain_network_g`` (with ``strict_load_g: false``) left some of its tensors
    at their random initialisation (a file of another arch or layout); without it such a test is refused, naming the
    tensors loaded. Training only warns."""
    root: str | None = None
    experiments_root: str | None = None
    results_root: str | None = None
    models: str | None = None
    training_states: str | None = None
    log: str | None = None
    visualization: str | None = None

    @model_validator(mode='before')
    @classmethod
    def _network_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(key, str) and key.startswith('strict_load_') and not isinstance(value, bool):
                    raise ValueError(f'path.{key} must be true or false, got {value!r}')
                if isinstance(key, str) and key.startswith(('pretrain_network_', 'param_key_')):
                    if value is not None and not isinstance(value, str):
                        raise ValueError(f'path.{key} must be a string, got {value!r}')
        return data


class DistParams(_Section):
    backend: Literal['nccl', 'gloo', 'mpi'] = 'nccl'
    port: int | None = None


class OptionFile(_Section):
    """The top level: ``network_*`` entries are components. Keys a component reads at the top level (the
    Real-ESRGAN degradation's, the real-world model's USM switches) are declared next to it
    (:func:`declare_options`) and join these in :func:`option_file`."""

    PREFIXES = ('network_',)
    name: str
    model_type: str | None = None
    scale: int = Field(default=4, gt=0)
    num_gpu: int | Literal['auto'] = 1
    manual_seed: int | None = None
    find_unused_parameters: bool = False
    datasets: dict[str, Dataset]
    train: Train | None = None
    val: Val | None = None
    logger: Logger | None = None
    path: Paths | None = None
    dist_params: DistParams | None = None
    # basicsr's real-world models (RealESRNetModel, RealESRGANModel); the degradation's keys and the USM
    # switches are declared by the components that read them (declare_options)
    high_order_degradation: bool | None = None
    gt_usm: bool | None = None
    # set by basicsr's parser and the command line
    is_train: bool | None = None
    dist: bool | None = None
    rank: int | None = None
    world_size: int | None = None
    auto_resume: bool | None = None
    root_path: str | None = None

    @model_validator(mode='after')
    def _crops_fit_the_scale(self) -> OptionFile:
        """A training crop ``datasets.train.gt_size`` is a multiple of ``scale`` (its LR crop is gt_size / scale)."""
        dataset = self.datasets.get('train')
        if self.train is not None and dataset is not None and dataset.gt_size and dataset.gt_size % self.scale:
            raise ValueError(f'datasets.train.gt_size ({dataset.gt_size}) must be a multiple of scale ({self.scale})')
        return self

    @model_validator(mode='after')
    def _save_best_names_a_validation(self) -> OptionFile:
        """``val.save_best`` names one of ``val.metrics`` and, with ``dataset``, a validation set."""
        rule = self.val.save_best if self.val else None
        if rule is None:
            return self
        metrics = self.val.metrics or {}
        if rule.metric not in metrics:
            raise ValueError(
                f'val.save_best.metric {rule.metric!r} is not one of val.metrics: {did_you_mean(rule.metric, metrics)}'
                f'(known: {", ".join(metrics) or "none"})'
            )
        names = [d.name for phase, d in self.datasets.items() if phase.split('_')[0] == 'val']
        if not names and self.train is not None:
            raise ValueError('val.save_best needs a validation set (datasets.val) to pick the best iteration')
        if rule.dataset is not None and rule.dataset not in names:
            raise ValueError(
                f'val.save_best.dataset {rule.dataset!r} is not the name of a validation set: '
                f'{did_you_mean(rule.dataset, [n for n in names if n])}(known: {", ".join(map(str, names)) or "none"})'
            )
        return self


_DECLARED: dict[str, dict[str, type[_Section]]] = {}  # section ('' or a key of OptionFile) → reader → its keys


def declare_options(section: str, reader: str, doc: str, fields: dict[str, tuple]) -> type[_Section]:
    """Declare keys of ``section`` (``''``: the top level; ``'train'``, ``'val'``, …) next to the component that
    reads them. ``fields`` maps each key to (type, description) or (type, description, ``Field`` keywords: a
    ``default``, bounds); a key without a default is optional (``~``: the reader's own default applies). The keys
    join the section's in :func:`option_file` and in ``docs/options.md``, under ``reader``. Returns the part."""
    base = _base_section(section)
    taken = set(base.model_fields) | {key for part in _DECLARED.get(section, {}).values() for key in part.model_fields}
    clash = [key for key in fields if key in taken]
    if clash:
        where = f'{section}.{clash[0]}' if section else clash[0]
        raise TypeError(f'option {where!r} of {reader} is declared twice')
    defined = {}
    for key, (annotation, text, *rest) in fields.items():
        keywords = {'default': None, **(rest[0] if rest else {})}
        kind = annotation | None if keywords['default'] is None else annotation
        defined[key] = (kind, Field(description=text, **keywords))
    part = create_model(reader, __base__=_Declared, __doc__=doc, __module__=__name__, **defined)
    _DECLARED.setdefault(section, {})[reader] = part
    option_file.cache_clear()
    return part


class _Declared(_Section):
    """A part declared with :func:`declare_options`: its descriptions are its fields' (no class source to read
    attribute docstrings from, which pydantic would look for through every module of the call stack)."""

    model_config = ConfigDict(use_attribute_docstrings=False)


def _base_section(section: str) -> type[_Section]:
    """The schema's own model of ``section`` (``''``: :class:`OptionFile`; else one of its optional sections)."""
    field = OptionFile.model_fields.get(section)
    child, mapping = _child_section(field.annotation) if field else (None, False)
    if section and (child is None or mapping or field.is_required()):
        raise TypeError(f'{section!r} is not an optional section of an option file')
    return child or OptionFile


def keyword_fields(function: Any, *, skip: tuple[str, ...] = (), describe: Any = None) -> dict[str, tuple[Any, str]]:
    """The fields :func:`declare_options` takes for ``function``'s keyword parameters: each typed by its annotation
    (a ``Sequence[float]`` read as a YAML list) and described by ``describe(name, default)``, the default written
    as YAML (without ``describe``: "Default: …")."""
    hints = typing.get_type_hints(function, include_extras=True)
    fields = {}
    for key, parameter in inspect.signature(function).parameters.items():
        if key in skip or parameter.kind is not parameter.KEYWORD_ONLY:
            continue
        annotation, rules = hints[key], ()
        if typing.get_origin(annotation) is Annotated:  # its rules (validators, bounds) kept
            annotation, *rules = typing.get_args(annotation)
        if typing.get_origin(annotation) is collections.abc.Sequence:
            annotation = list[typing.get_args(annotation)]  # type: ignore[misc]
        if rules:
            annotation = Annotated[(annotation, *rules)]
        default = _yaml(parameter.default)
        text = describe(key, default) if describe else f'Default: `{default}`.'
        fields[key] = (annotation, text)
    return fields


@functools.cache
def option_file() -> type[OptionFile]:
    """The schema of an option file: :class:`OptionFile` and its sections with the keys components declared
    (:func:`declare_options`)."""
    overrides = {}
    for section, parts in _DECLARED.items():
        if section:
            base = _base_section(section)
            merged = create_model(
                base.__name__, __base__=(base, *parts.values()), __doc__=base.__doc__, __module__=__name__
            )
            field = OptionFile.model_fields[section]
            overrides[section] = (merged | None, Field(default=None, description=field.description))
    tops = tuple(_DECLARED.get('', {}).values())
    if not tops and not overrides:
        return OptionFile
    return create_model(
        'OptionFile', __base__=(OptionFile, *tops), __doc__=OptionFile.__doc__, __module__=__name__, **overrides
    )


def _schema(section: str) -> type[_Section] | None:
    """The schema class of a dotted section (``''``, ``train.optim_g``, ``datasets.val.io_backend``), or None."""
    node: Any = option_file()
    for part in section.split('.') if section else ():
        if isinstance(node, type) and issubclass(node, _Section):
            field = node.model_fields.get(part)
            node = field.annotation if field else None
        elif typing.get_origin(node) is dict:
            node = typing.get_args(node)[1]  # datasets.<phase>
        else:
            return None
        kinds = typing.get_args(node) if typing.get_origin(node) in (Union, types.UnionType) else (node,)
        node = next((k for k in kinds if _is_section(k) or typing.get_origin(k) is dict), None)
    return node if _is_section(node) else None


def _is_section(node: Any) -> bool:
    return isinstance(node, type) and issubclass(node, _Section)


def known_keys(section: str) -> tuple[str, ...]:
    """The keys the schema declares for ``section`` (``''`` for the top level, ``datasets.<phase>``,
    ``train``, ``train.optim_g``, …), for ``--force_yml`` and "did you mean" hints."""
    schema = _schema(section)
    if schema is None:
        return ()
    return (*schema.model_fields, *(f'{prefix}{net}' for prefix in schema.PREFIXES for net in ('g', 'd', 'decoder')))


def admits(section: str, key: str) -> bool:
    """Whether ``key`` is declared in ``section`` or belongs to one of its key families."""
    schema = _schema(section)
    if schema is None:
        return False
    loss_entry = section == 'train' and key.endswith('_opt')
    open_section = schema.model_config.get('extra') == 'allow'  # a class's keyword arguments (train.optim_g)
    return key in schema.model_fields or key.startswith(schema.PREFIXES) or loss_entry or open_section


def apply_schema(opt: dict) -> dict:
    """Validate ``opt`` against :class:`OptionFile` and write the result back, in place: each declared key
    given holds its validated value, each one left out of a section the file has holds its default (a
    ``~`` default is not written). Returns ``opt``. The first error is one :class:`AesopError` line: an
    unknown key names the closest declared one; a wrong type or range names the key, what it must be and
    the value found."""
    try:
        validated = option_file().model_validate(opt)
    except ValidationError as error:
        raise AesopError(_describe(error.errors(include_url=False), opt)) from None
    _write_back(validated, opt)
    return opt


def _write_back(section: _Section, node: dict) -> None:
    for name in type(section).model_fields:
        value = getattr(section, name)
        if name not in node:
            if value is not None and section.WRITE_DEFAULTS:
                node[name] = copy.deepcopy(value)  # the declared default
        elif isinstance(value, _Section):
            _write_back(value, node[name])
        elif isinstance(value, dict) and all(isinstance(item, _Section) for item in value.values()):
            for key, item in value.items():  # datasets.<phase>
                _write_back(item, node[name][key])
        elif not isinstance(value, dict):  # a scalar or a list; a mapping of components stays as written
            node[name] = value


def _describe(problems: list[dict], opt: dict) -> str:
    """The first of pydantic's ``problems`` with ``opt`` as one line; of a union's (``int | float``: one per member,
    each under its member's tag), the one for a number."""
    loc = _keys(problems[0], opt)
    same = [problem for problem in problems if _keys(problem, opt) == loc]
    problem = next((p for p in same if p['type'] == 'float_type'), same[0])
    key = '.'.join(loc)
    if problem['type'] == 'extra_forbidden':
        section = '.'.join(loc[:-1])
        where = f'in {section}' if section else 'at the top level'
        hint = did_you_mean(loc[-1], known_keys(section))
        return f'unknown option {loc[-1]!r} {where}: {hint}(a typo would be ignored silently)'
    if problem['type'] == 'missing':
        return f'option {key} is missing'
    found = problem.get('input')
    if problem['type'] == 'value_error':
        message = problem['msg'].removeprefix('Value error, ')
        if message.startswith('must '):  # an annotation's rule (a BeforeValidator): "must …, got …"
            return f'option {key} {message}'
        return message if _schema(key) is not None else f'option {key}: {message}'  # a section's check names its key
    if problem['type'] == 'literal_error' and isinstance(found, str):
        choices = [choice.strip(" '") for choice in re.split(r', | or ', problem['ctx']['expected'])]
        hint = did_you_mean(found, choices).strip()
        return f'option {key}: {problem["msg"][0].lower()}{problem["msg"][1:]}, got {found!r}' + (
            f'; {hint}' if hint else ''
        )
    if problem['type'] in _BOUNDS:
        return f'option {key} must be {_BOUNDS[problem["type"]]} {next(iter(problem["ctx"].values())):g}, got {found!r}'
    message = problem['msg'].split(', got ')[0]  # pydantic's own "got …" is replaced by the value found
    return f'option {key}: {message[0].lower()}{message[1:]}, got {found!r}'


def _keys(problem: dict, opt: dict) -> list[str]:
    """The keys (and list indices) of ``opt`` a problem's location passes through, without the tags pydantic adds
    for a union's members (``'int'``, ``'list[str]'``); a missing key is the last."""
    node, keys = opt, []
    for index, part in enumerate(problem['loc']):
        if isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int):
            node = node[part] if isinstance(node, dict) or part < len(node) else None
            keys.append(str(part))
        elif problem['type'] == 'missing' and index == len(problem['loc']) - 1:
            keys.append(str(part))
    return keys


_BOUNDS = {'greater_than': '>', 'greater_than_equal': '≥', 'less_than': '<', 'less_than_equal': '≤'}


class _Call(_Section):
    """The keyword options of a component's call (:func:`check_call`): unknown keys refused."""

    model_config = ConfigDict(arbitrary_types_allowed=True, use_attribute_docstrings=False)  # built from a signature


class _OpenCall(_Call):
    """The keyword options of a component whose ``**kwargs`` might read any key."""

    model_config = ConfigDict(extra='allow')


_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@functools.cache
def call_model(component: Any, skip: tuple[str, ...] = (), extra: tuple[str, ...] | None = ()) -> type[_Call] | None:
    """The schema of ``component``'s keyword options (a class: its constructor's), from its signature: each
    parameter typed by its annotation (with its ``Annotated`` rules); one without an annotation by its default (a
    number: :data:`Number`, else anything); required when it has no default. ``skip``: parameters the caller fills
    (a metric's images); ``extra``: the keys its ``**kwargs`` reads, or ``None`` when it might read any. ``None``
    for a component without a signature."""
    try:
        params = inspect.signature(component).parameters
    except (TypeError, ValueError):
        return None
    function = component.__init__ if isinstance(component, type) else component
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:  # noqa: BLE001  an annotation that does not resolve (a TYPE_CHECKING import): untyped
        hints = {}
    fields: dict[str, Any] = {}
    for name, parameter in params.items():
        if name in skip or name == 'self' or parameter.kind not in _KEYWORD_KINDS:
            continue
        if name in hints:
            annotation = hints[name]
        elif parameter.annotation is not parameter.empty:
            annotation = Any
        else:  # unannotated: a number's default asks for a number
            number = isinstance(parameter.default, (int, float)) and not isinstance(parameter.default, bool)
            annotation = Number if number else Any
        fields[name] = (annotation, ... if parameter.default is parameter.empty else parameter.default)
    for name in extra or ():
        fields.setdefault(name, (Any, None))
    base = _Call if extra is not None else _OpenCall
    return create_model(f'{getattr(component, "__name__", "Component")}Options', __base__=base, **fields)


def check_call(
    component: Any,
    options: collections.abc.Mapping[str, Any],
    *,
    key: str,
    what: str,
    skip: tuple[str, ...] = (),
    extra: tuple[str, ...] | None = (),
) -> dict[str, Any]:
    """``options`` (a ``type:`` entry's, ``type`` aside) validated against ``component``'s signature
    (:func:`call_model`): the values given, as validated (an integral float for an int as that int, a YAML list
    for a tuple as that tuple, what a ``BeforeValidator`` returns). The first problem is one
    :class:`~aesop.errors.OptionValueError` line: an unknown option with the closest one and those it takes, the
    missing required ones, or the option's key (``key`` + its name; ``what`` names the component) with what it
    must be and the value found."""
    model = call_model(component, skip, extra)
    given = {name: value for name, value in options.items() if name != 'type'}
    if model is None:
        return given
    try:
        validated = model.model_validate(given)
    except ValidationError as error:
        raise OptionValueError(_describe_call(error.errors(include_url=False), given, model, key, what)) from None
    values = {**validated.__dict__, **(validated.model_extra or {})}
    return {name: values[name] for name in given}


def checked(init: Callable | None = None, *, key: str | None = None) -> Callable:
    """A constructor that validates its keyword arguments as :func:`check_call` validates options (the same
    annotations, the same one-line :class:`~aesop.errors.OptionValueError`) and runs on the validated values.
    An argument is named ``<key>.<name>`` (default ``key``: the class's name; ``''``: the name alone, for options
    that sit at the top level of an option file). ``@checked`` or ``@checked(key=…)``."""
    if init is None:
        return functools.partial(checked, key=key)

    @functools.wraps(init)
    def wrapper(self, *args: Any, **kwargs: Any) -> None:
        owner = next(k for k in type(self).__mro__ if vars(k).get('__init__') is wrapper)
        where = owner.__name__ if key is None else key
        if kwargs:
            kwargs = check_call(init, kwargs, key=where, what=owner.__name__)
        init(self, *args, **kwargs)

    return wrapper


def _describe_call(problems: list[dict], given: dict, model: type[_Call], key: str, what: str) -> str:
    first = next((p for p in problems if p['type'] == 'extra_forbidden'), problems[0])  # a typo before what it hid
    name = first['loc'][0] if first['loc'] else ''
    if first['type'] == 'extra_forbidden':
        accepted = list(model.model_fields)
        return f'unknown option {name!r} for {what}: {did_you_mean(name, accepted)}it takes {", ".join(accepted)}'
    if first['type'] == 'missing' and len(first['loc']) == 1:
        missing = [p['loc'][0] for p in problems if p['type'] == 'missing' and len(p['loc']) == 1]
        return f'{what} needs {", ".join(missing)}'
    same = [problem for problem in problems if problem['loc'][:1] == (name,)]
    parts = key.split('.') if key else []
    if first['type'] == 'missing':  # an item of a tuple (Adam's betas: [0.9])
        return f'option {".".join([*parts, name])}: too few items, got {given[name]!r}'
    if isinstance(given.get(name), str) and any(p['type'] in ('float_type', 'int_type') for p in same):
        return f'option {".".join([*parts, name])} must be a number, got {given[name]!r}'
    nested: dict = given
    for part in reversed(parts):
        nested = {part: nested}
    return _describe([{**problem, 'loc': (*parts, *problem['loc'])} for problem in same], nested)


# The options reference (docs/options.md), generated from the models above by scripts/options_reference.py.

_FAMILIES: dict[tuple[str, str], str] = {
    ('', 'network_'): "a network built from its `type:` (any arch in basicsr's registry or this package's), whose "
    "other keys are the arch's parameters, checked against its signature: `network_g` (G), `network_d` (D), "
    '`network_recon` and `network_clip` (HR-aware finetuning).',
    ('path', 'pretrain_network_'): 'the initial weights of `network_<name>` (`pretrain_network_decoder`: those of '
    "ψ's decoder in an auto-encoder file); a file, never downloaded: a missing one stops the run at start-up naming "
    'this key. Not needed on resume.',
    ('path', 'param_key_'): 'the key of that checkpoint holding the weights (`params`, `params_ema`, …).',
    ('path', 'strict_load_'): '`true` or `false`: whether every tensor of that checkpoint must fit the network. '
    '`false` loads those that fit and warns naming how many did and which did not; a test refuses a G loaded so '
    'in part (`allow_partial_g`).',
    ('train', '_opt'): 'a loss entry (`pixel_opt`, `aesop_opt`, `perceptual_opt`, `gan_opt`, `artifacts_opt`, …): '
    "a mapping with a `type:`, whose other keys are the loss's parameters, checked against its signature; an "
    'entry the model does not read is refused. Every weight in it (`loss_weight`, `perceptual_weight`, '
    '`style_weight`, …: any `*_weight`, and each of `layer_weights`) is a finite number ≥ 0, whatever the loss '
    '(0 switches the term off).',
}


def check_component(component: Any, options: dict, key: str) -> None:
    """A network's or loss's ``type:`` entry ``options`` (at option ``key``) against its signature
    (:func:`check_call`); what a ``**kwargs`` takes is read from its source (:func:`_keywords`)."""
    accepted = _keywords(component)
    extra = None if accepted is None else tuple(accepted)
    check_call(component, options, key=key, what=f'{options["type"]} (option {key})', extra=extra)


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


def _parameters(function) -> dict[str, inspect.Parameter] | None:
    """The named (keyword-passable) parameters of ``function`` and its ``**kwargs`` if any; ``None``
    when it has no inspectable signature."""
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD)
    return {n: p for n, p in params.items() if p.kind in kinds}


_BOUND_SIGNS = {'gt': '>', 'ge': '≥', 'lt': '<', 'le': '≤'}


def options_reference() -> str:
    """The Markdown of ``docs/options.md``: a table of keys (type, default, description) per section of an option
    file, walking the models from :class:`OptionFile` down, and the open families of keys.

    A model reached under several keys (``train.optim_g``, ``train.optim_d``) is listed once. A description is the
    field's ``Field(description=...)``; without one the cell is empty.
    """
    lines = [
        '# Options reference',
        '',
        '<!-- Generated from the option schema (aesop/schema.py and the sections components declare) by '
        '`python scripts/options_reference.py`: do not edit by hand. -->',
        '',
        "Every key of an option file that basicsr 1.4.2, the authors' release and this project read, by section, "
        'as declared in `aesop/schema.py`, or next to the component that reads it (the top-level keys of the '
        "Real-ESRGAN degradation: its constructor's signature; the USM switches: the real-world model). An unknown "
        'key is a start-up error naming the closest declared one; a '
        "wrong type or range names the key and the value. `~` is YAML's null, *required* keys have no default and "
        '`number` is an int or a float. Components (`type:` entries: networks, losses, metrics) are not listed here: '
        'their options are the parameters of the registered class or function, checked against its signature (a '
        'parameter that takes a number, by annotation or default, refuses a string).',
        '',
        'The validated options are what runs: a default listed here is written into every section the file has '
        '(except `path`, whose unknown keys basicsr makes folders of) when the key is left out. Numbers are read as '
        'YAML 1.2 reads them: `1e-3` and `4e5` are floats without `!!float` (YAML 1.1 left them strings), a quoted '
        "`'1e-3'` is a string. Types are strict (pydantic's strict mode): `'no'` for a `bool`, `'4'` or `true` for "
        'an `int` and a string for a `number` are refused; the one coercion is an integral float for an `int` '
        '(`total_iter: 4e5` is 400000; `2.5` is refused).',
    ]
    for names, schema in _sections():
        declared = _declared_part(schema)
        heading = ' / '.join(f'`{name}`' for name in names) if names[0] else 'Top level'
        lines += ['', '## ' + heading + (f', read by `{schema.__name__}`' if declared else ''), '']
        if schema.__doc__:
            lines += [_markdown(schema.__doc__), '']
        lines += ['| key | type | default | description |', '|---|---|---|---|']
        for key, field in schema.model_fields.items():
            cells = (f'`{key}`', _type_cell(field), _default_cell(field), _markdown(field.description or ''))
            lines.append('| ' + ' | '.join(cell.replace('|', '\\|') for cell in cells) + ' |')
        families = [(a, text) for (section, a), text in _FAMILIES.items() if section == names[0] and not declared]
        families += [(p, 'admitted as a family of keys.') for p in schema.PREFIXES if (names[0], p) not in _FAMILIES]
        if families:
            lines += ['', 'Open families of keys:', '']
            lines += [
                f'- `{"*" + affix if affix.startswith("_") else affix + "*"}`: {text}' for affix, text in families
            ]
    return '\n'.join(lines) + '\n'


def _sections() -> list[tuple[tuple[str, ...], type[_Section]]]:
    """Every section reachable from :class:`OptionFile`, depth first in field order: (its dotted names, its model);
    the keys components declare for a section (:func:`declare_options`) follow that section's own."""
    found: list[tuple[tuple[str, ...], type[_Section]]] = [(('',), OptionFile)]
    found += [(('',), part) for part in _DECLARED.get('', {}).values()]

    def walk(prefix: str, schema: type[_Section]) -> None:
        groups: dict[type[_Section], list[str]] = {}
        for key, field in schema.model_fields.items():
            child, mapping = _child_section(field.annotation)
            if child is not None:
                groups.setdefault(child, []).append(f'{prefix}{key}' + ('.<phase>' if mapping else ''))
        for child, names in groups.items():
            parts = list(_DECLARED.get(names[0], {}).values()) if not prefix else []
            found.append((tuple(names), child))
            found.extend(((names[0],), part) for part in parts)
            for schema_ in (child, *parts):
                walk(f'{names[0]}.', schema_)

    walk('', OptionFile)
    for part in _DECLARED.get('', {}).values():
        walk('', part)
    return found


def _declared_part(schema: type[_Section]) -> bool:
    return any(schema in parts.values() for parts in _DECLARED.values())


def _child_section(annotation: Any) -> tuple[type[_Section] | None, bool]:
    """The section model a field holds (optional or not), and whether it holds a mapping of them (``datasets``)."""
    for kind in _union_members(annotation):
        if _is_section(kind):
            return kind, False
        if typing.get_origin(kind) is dict and _is_section(typing.get_args(kind)[1]):
            return typing.get_args(kind)[1], True
    return None, False


def _union_members(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation) if typing.get_origin(annotation) in (Union, types.UnionType) else (annotation,)


def _type_name(annotation: Any) -> str:
    """A readable type: ``int``, ``number``, ``list[int]``, ``'nccl' | 'gloo' | 'mpi'``, ``str | ~``, ``section``."""
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = typing.get_args(annotation)
        if int in members and float in members:  # Number
            annotation = Union[tuple(m for m in members if m is not int)]  # noqa: UP007
            return _type_name(annotation)
        return ' | '.join(_type_name(member) for member in typing.get_args(annotation))
    if origin is Literal:
        return ' | '.join(repr(value) for value in typing.get_args(annotation))
    if origin in (list, dict):
        return f'{origin.__name__}[{", ".join(_type_name(arg) for arg in typing.get_args(annotation))}]'
    if annotation is type(None):
        return '~'
    if annotation is Any:
        return 'any'
    if _is_section(annotation):
        return 'section'
    return 'number' if annotation is float else getattr(annotation, '__name__', str(annotation))


def _type_cell(field: Any) -> str:
    """The type in code, followed by the field's bounds (``> 0``, ``length 2``)."""
    bounds = [
        f'{sign} {_yaml(getattr(m, key))}'
        for m in field.metadata
        for key, sign in _BOUND_SIGNS.items()
        if hasattr(m, key)
    ]
    lengths = [(getattr(m, 'min_length', None), getattr(m, 'max_length', None)) for m in field.metadata]
    low = next((lo for lo, _ in lengths if lo is not None), None)
    high = next((hi for _, hi in lengths if hi is not None), None)
    if low is not None and low == high:
        bounds.append(f'length {low}')
    else:
        bounds += [f'length ≥ {low}'] * (low is not None) + [f'length ≤ {high}'] * (high is not None)
    return ', '.join([f'`{_type_name(field.annotation)}`', *bounds])


def _default_cell(field: Any) -> str:
    if field.is_required():
        return '*required*'
    return f'`{_yaml(field.get_default(call_default_factory=True))}`'


def _yaml(value: Any) -> str:
    """``value`` as it would be written in an option file (``~``, ``true``, ``1e-8``, ``[0.9, 0.999]``)."""
    if value is None:
        return '~'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float):
        mantissa, _, exponent = repr(value).partition('e')
        return f'{mantissa}e{int(exponent)}' if exponent else mantissa
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_yaml(item) for item in value) + ']'
    if isinstance(value, dict):
        return '{' + ', '.join(f'{key}: {_yaml(item)}' for key, item in value.items()) + '}'
    return str(value)


def _markdown(docstring: str) -> str:
    """A docstring or description on one line, reST's ``code`` and :role:`target` as Markdown code."""
    text = ' '.join(docstring.split())
    for role in (':class:', ':func:', ':meth:', ':mod:'):
        text = text.replace(role, '')
    return text.replace('``', '`')
