"""Optimisers and learning-rate schedules by name (``train.optim_g``, ``train.optim_d``, ``train.scheduler``).

basicsr 1.4.2 builds ``torch.optim.Adam`` only and two schedules of its own. Here an optimiser entry's ``type`` is any
``torch.optim`` optimiser (:func:`optimizer_classes`; three are refused with the reason, :data:`REFUSED_OPTIMIZERS`)
and a scheduler's is basicsr's ``MultiStepLR`` (its ``MultiStepRestartLR``) or ``CosineAnnealingRestartLR``, or any
``torch.optim.lr_scheduler`` class (:func:`scheduler_classes`; those that need a metric, a function or other
schedulers are refused, :data:`REFUSED_SCHEDULERS`). The other keys of an entry are the class's keyword arguments,
validated against its signature by :func:`aesop.schema.check_call` (the same messages as every ``type:`` entry),
at start-up (:func:`check_optim_options`, with a trial build on a one-element parameter, which also runs the
constructor's own checks) and again when the model builds them (:func:`build_optimizer`, :func:`build_scheduler`).
A scheduler is stepped once per iteration after the first, as basicsr steps its own.
"""

from __future__ import annotations

import collections
import functools
import inspect
import warnings
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import torch
from basicsr.models.lr_scheduler import CosineAnnealingRestartLR, MultiStepRestartLR
from pydantic import Field
from torch.optim import lr_scheduler

from aesop.errors import AesopError, OptionValueError
from aesop.schema import Number, check_call
from aesop.utils import did_you_mean

__all__ = [
    'REFUSED_OPTIMIZERS',
    'REFUSED_SCHEDULERS',
    'build_optimizer',
    'build_scheduler',
    'check_optim_options',
    'optimizer_classes',
    'optimizer_record',
    'replay',
    'scheduler_classes',
    'scheduler_record',
]

#: ``torch.optim`` optimisers the training step cannot run, and why
REFUSED_OPTIMIZERS = {
    'LBFGS': 'it needs a closure that re-evaluates the loss at each step, and the training step calls step() '
    'without one',
    'SparseAdam': 'it takes sparse gradients only, and these networks have dense ones',
    'Muon': 'it takes 2-D parameters only, and convolutions have 4-D weights',
}
#: ``torch.optim.lr_scheduler`` classes an option file cannot drive, and why
REFUSED_SCHEDULERS = {
    'ReduceLROnPlateau': 'it needs a metric at each step, and basicsr steps the schedulers once per iteration '
    'without one',
    'LambdaLR': 'it needs a Python function (lr_lambda), which an option file cannot hold',
    'MultiplicativeLR': 'it needs a Python function (lr_lambda), which an option file cannot hold',
    'SequentialLR': 'it needs scheduler objects, which an option file cannot hold',
    'ChainedScheduler': 'it needs scheduler objects, which an option file cannot hold',
}
_OPTIMIZER_SKIP = ('params',)  # filled by the model
_SCHEDULER_SKIP = ('optimizer', 'last_epoch')  # filled by the model; a resumed run's position is its state's


Positive = Annotated[Number, Field(gt=0, allow_inf_nan=False)]  # > 0: a negative gamma trains uphill
NonNegative = Annotated[Number, Field(ge=0, allow_inf_nan=False)]


def _multistep_restart(
    milestones: list[int],
    gamma: Positive = 0.1,
    restarts: list[int] = (0,),
    restart_weights: list[NonNegative] = (1,),
) -> None:
    """basicsr's ``MultiStepRestartLR`` options, annotated (basicsr's are not): the lr times ``gamma`` at each
    milestone, back to ``initial_lr × restart_weights[i]`` at ``restarts[i]``."""


def _cosine_restart(
    periods: list[Annotated[int, Field(gt=0)]], restart_weights: list[NonNegative] = (1,), eta_min: NonNegative = 0
) -> None:
    """basicsr's ``CosineAnnealingRestartLR`` options, annotated: a cosine from the lr to ``eta_min`` over each
    period, restarting at ``initial_lr × restart_weights[i]``."""


#: basicsr's names → (its class, the annotated signature its options are checked against)
BASICSR_SCHEDULERS = {
    'MultiStepLR': (MultiStepRestartLR, _multistep_restart),
    'MultiStepRestartLR': (MultiStepRestartLR, _multistep_restart),
    'CosineAnnealingRestartLR': (CosineAnnealingRestartLR, _cosine_restart),
}


@functools.cache
def optimizer_classes() -> dict[str, type[torch.optim.Optimizer]]:
    """Every optimiser ``torch.optim`` exports, by name (the refused ones included)."""
    return {
        name: value
        for name, value in sorted(vars(torch.optim).items())
        if isinstance(value, type)
        and issubclass(value, torch.optim.Optimizer)
        and value is not torch.optim.Optimizer
        and not name.startswith('_')
    }


@functools.cache
def scheduler_classes() -> dict[str, type]:
    """Every scheduler by name: ``torch.optim.lr_scheduler``'s (the refused ones included), then basicsr's names,
    which win (``MultiStepLR`` is basicsr's ``MultiStepRestartLR``, as in every basicsr option file)."""
    torch_ones = {
        name: value
        for name, value in sorted(vars(lr_scheduler).items())
        if isinstance(value, type)
        and issubclass(value, lr_scheduler.LRScheduler)
        and value not in (lr_scheduler.LRScheduler, lr_scheduler._LRScheduler)
        and not name.startswith('_')
    }
    return {**torch_ones, **{name: cls for name, (cls, _) in BASICSR_SCHEDULERS.items()}}


def _hint(name: object, names: list[str]) -> str:
    """``"did you mean 'AdamW'? "``: a name that differs only in case first, else the closest one."""
    same = [n for n in names if isinstance(name, str) and n.lower() == name.lower()]
    return f'did you mean {same[0]!r}? ' if same else did_you_mean(name, names)


def _refused(name: str, key: str, what: str, reason: str, usable: Iterable[str]) -> AesopError:
    return AesopError(f'option {key}.type: {what} {name} cannot be used: {reason}; use one of {", ".join(usable)}')


def _named_class(name: Any, classes: dict, refused: dict, *, key: str, what: str, source: str) -> type:
    """``classes[name]``, or one line: a refused class with its reason, an unknown name with a hint and the list."""
    usable = [n for n in classes if n not in refused]
    if name in refused:
        raise _refused(name, key, what, refused[name], usable)
    if name not in classes:
        raise AesopError(
            f'unknown {what} type {name!r} (option {key}.type): {_hint(name, usable)}{source} {", ".join(usable)}'
        )
    return classes[name]


def _optimizer_class(options: Mapping[str, Any], key: str) -> type[torch.optim.Optimizer]:
    name = options.get('type', 'Adam')
    return _named_class(
        name, optimizer_classes(), REFUSED_OPTIMIZERS, key=key, what='optimizer', source='torch.optim has'
    )


def _scheduler_class(options: Mapping[str, Any], key: str) -> tuple[type, Any]:
    """The scheduler class ``options['type']`` names and the signature its options are checked against."""
    name = options.get('type')
    source = 'basicsr and torch.optim.lr_scheduler have'
    cls = _named_class(name, scheduler_classes(), REFUSED_SCHEDULERS, key=key, what='scheduler', source=source)
    if name in BASICSR_SCHEDULERS:
        return BASICSR_SCHEDULERS[name]
    needs = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.name not in _SCHEDULER_SKIP and p.default is p.empty and p.kind is not p.VAR_KEYWORD
        if any(word in str(p.annotation) for word in ('Callable', 'Scheduler', 'Optimizer'))
    ]
    if needs:  # a class newer than REFUSED_SCHEDULERS
        usable = [n for n in scheduler_classes() if n not in REFUSED_SCHEDULERS]
        raise _refused(name, key, 'scheduler', f'it needs objects ({", ".join(needs)})', usable)
    return cls, cls


def _checked(component: Any, options: Mapping[str, Any], key: str, skip: tuple[str, ...]) -> dict[str, Any]:
    what = f'{options.get("type", "Adam")} (option {key})'
    return check_call(component, options, key=key, what=what, skip=skip)


def _construct(cls: type, first: Any, kwargs: dict[str, Any], options: Mapping[str, Any], key: str) -> Any:
    """``cls(first, **kwargs)``; what its constructor refuses (torch's ``Invalid beta parameter``, basicsr's
    asserts) as one line naming the option."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)  # torch: "lr_scheduler.step() before optimizer.step()"
            return cls(first, **kwargs)
    except (ValueError, TypeError, AssertionError, KeyError, RuntimeError) as error:
        raise OptionValueError(f'option {key}: {options.get("type", "Adam")} refuses these options: {error}') from None


def build_optimizer(options: Mapping[str, Any], params: Iterable[torch.Tensor], *, key: str) -> torch.optim.Optimizer:
    """The optimiser an entry names (``type``, default ``Adam``) over ``params``, with its other keys (``lr``, …)
    as validated against the class's signature."""
    cls = _optimizer_class(options, key)
    return _construct(cls, list(params), _checked(cls, options, key, _OPTIMIZER_SKIP), options, key)


def build_scheduler(options: Mapping[str, Any], optimizer: torch.optim.Optimizer, *, key: str) -> Any:
    """The scheduler an entry names over ``optimizer``, with its other keys as validated against its signature."""
    cls, signature = _scheduler_class(options, key)
    skip = () if signature is not cls else _SCHEDULER_SKIP
    return _construct(cls, optimizer, _checked(signature, options, key, skip), options, key)


def replay(scheduler: Any, steps: int) -> None:
    """Step ``scheduler`` ``steps`` times (torch's warning that no optimiser step came first silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        for _ in range(steps):
            scheduler.step()


def plain(value: Any) -> Any:
    """``value`` as plain data for a training state (``weights_only`` loads it) and for comparing: tuples as lists,
    a ``Counter`` (basicsr's milestones) as its sorted elements, anything else that is not data as its repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, collections.Counter):
        return sorted(value.elements())
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return repr(value)


def _record(component: Any, cls: type, options: Mapping[str, Any], key: str, skip: tuple[str, ...]) -> dict:
    given = _checked(component, options, key, skip)
    values = {
        name: given.get(name, parameter.default)
        for name, parameter in inspect.signature(component).parameters.items()
        if name not in skip and (name in given or parameter.default is not parameter.empty)
    }  # in the signature's order
    return plain({'type': cls.__name__, **values})


def optimizer_record(options: Mapping[str, Any], *, key: str) -> dict:
    """What an optimiser entry builds, as plain data: its class's name and every keyword argument (the signature's
    defaults, then the entry's values), so that an entry is compared by what it does, not by how it is written."""
    cls = _optimizer_class(options, key)
    return _record(cls, cls, options, key, _OPTIMIZER_SKIP)


def scheduler_record(options: Mapping[str, Any], *, key: str) -> dict:
    """What a scheduler entry builds, as :func:`optimizer_record` (``MultiStepLR``: ``MultiStepRestartLR``)."""
    cls, signature = _scheduler_class(options, key)
    return _record(signature, cls, options, key, () if signature is not cls else _SCHEDULER_SKIP)


def check_optim_options(opt: Mapping[str, Any]) -> None:
    """At start-up: ``train.optim_g``/``optim_d`` and ``train.scheduler`` name usable classes, take the options
    given (their signatures) and build on a one-element parameter (the constructors' own checks); a schedule that
    cannot last ``train.total_iter`` iterations (OneCycleLR's ``total_steps``, CosineAnnealingRestartLR's
    ``periods``) is refused too. One :class:`~aesop.errors.AesopError` line naming the option."""
    train = opt.get('train') or {}
    optimizers = [
        build_optimizer(train[name], [torch.zeros(1, requires_grad=True)], key=f'train.{name}')
        for name in ('optim_g', 'optim_d')
        if train.get(name)
    ] or [torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)]
    options = train.get('scheduler')
    if not options:
        return
    steps = int(train.get('total_iter') or 1) - 1  # basicsr steps the schedulers at iterations 2 … total_iter
    for optimizer in optimizers:
        scheduler = build_scheduler(options, optimizer, key='train.scheduler')
        total = getattr(scheduler, 'total_steps', None)  # OneCycleLR
        if total is not None and total < steps:
            raise AesopError(
                f'option train.scheduler: {options["type"]} lasts {total} steps but basicsr steps it {steps} times '
                f'(once per iteration after the first; train.total_iter is {steps + 1}): set total_steps to at '
                f'least {steps}'
            )
        periods = getattr(scheduler, 'cumulative_period', None)  # CosineAnnealingRestartLR
        if periods and periods[-1] < steps:
            raise AesopError(
                f'option train.scheduler: the periods of {options["type"]} add up to {periods[-1]} steps but basicsr '
                f'steps it {steps} times (train.total_iter is {steps + 1}), past its last period: make them add up to '
                f'at least {steps}'
            )
