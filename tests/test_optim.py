"""Optimisers and schedules by name (aesop.models.optim), basicsr's warm-up, and a resume whose option file changed
the optimiser or the schedule: each against torch built and stepped by hand, or the closed formula."""

from __future__ import annotations

import logging
import math
from copy import deepcopy

import pytest
import torch
from basicsr.models.base_model import BaseModel
from conftest import TINY_AE, TINY_RRDB, build_model, write_yaml
from test_models import DISC, GAN, base_opt
from test_robustness import ae_opt, train

from aesop.errors import AesopError
from aesop.models import AesopModel
from aesop.options import load_options
from aesop.weights import read_checkpoint

L1 = {'type': 'L1Loss'}
ITERS = 12


def sr_opt(tmp_path, optim_g=None, scheduler=None, **train) -> dict:
    """AesopSRModel (basicsr's step) on the tiny RRDBNet: the cheapest model that trains (ITERS iterations)."""
    opt = base_opt(tmp_path, pixel_opt=L1, **{'total_iter': ITERS, **train})
    opt['train']['optim_g'] = optim_g or {'type': 'Adam', 'lr': 1e-3}
    if scheduler is None:
        del opt['train']['scheduler']
    else:
        opt['train']['scheduler'] = scheduler
    del opt['train']['optim_d']
    return {**opt, 'model_type': 'AesopSRModel', 'network_g': TINY_RRDB}


def gan_opt(tmp_path, optim_g, optim_d) -> dict:
    opt = base_opt(tmp_path, pixel_opt=L1, gan_opt=GAN)
    opt['train'].update(optim_g=optim_g, optim_d=optim_d)
    return {**opt, 'model_type': 'AesopGANModel', 'network_g': TINY_RRDB, 'network_d': DISC}


def hyper_parameters(options: dict) -> dict:
    """An entry's keyword arguments as torch keeps them in ``param_groups`` (YAML lists as tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items() if k != 'type'}


def lr_per_iteration(model, iterations=ITERS, warmup_iter=-1) -> list[float]:
    """G's lr at each iteration as the training loop sets it (``update_learning_rate`` before the step)."""
    lrs = []
    for it in range(1, iterations + 1):
        model.update_learning_rate(it, warmup_iter=warmup_iter)
        lrs.append(model.get_current_learning_rate()[0])
    return lrs


def by_hand(cls, kwargs, lr=1e-3, iterations=ITERS, optimizer=torch.optim.Adam) -> list[float]:
    """The independent reference: torch's scheduler on an optimiser of its own, stepped once per iteration after
    the first (basicsr's rule), each after an optimiser step."""
    param = torch.zeros(1, requires_grad=True)
    opt = optimizer([param], lr=lr)
    scheduler = cls(opt, **kwargs)
    lrs = []
    for it in range(1, iterations + 1):
        if it > 1:
            param.grad = torch.ones(1)
            opt.step()
            scheduler.step()
        lrs.append(opt.param_groups[0]['lr'])
    return lrs


@pytest.fixture
def logged():
    """The messages basicsr's logger emits during the test."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger('basicsr')
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


# ---------------------------------------------------------------- optimisers


@pytest.mark.parametrize(
    ('optim_g', 'optim_d'),
    [
        (
            {'type': 'AdamW', 'lr': 2e-4, 'betas': [0.8, 0.95], 'eps': 1e-6, 'weight_decay': 0.05},
            {'type': 'SGD', 'lr': 1e-2, 'momentum': 0.9, 'nesterov': True, 'weight_decay': 1e-4},
        ),
        (
            {'type': 'RAdam', 'lr': 3e-4, 'betas': [0.9, 0.99], 'weight_decay': 0.01, 'decoupled_weight_decay': True},
            {'type': 'AdamW', 'lr': 1e-4, 'amsgrad': True},
        ),
        (
            {'type': 'SGD', 'lr': 5e-3, 'momentum': 0.5, 'dampening': 0.1},
            {'type': 'RAdam', 'lr': 2e-4, 'betas': [0.5, 0.9]},
        ),
    ],
    ids=['AdamW-SGD', 'RAdam-AdamW', 'SGD-RAdam'],
)
def test_g_and_d_get_the_optimizer_and_the_options_the_file_names(tmp_path, optim_g, optim_d):
    model = build_model(gan_opt(tmp_path, deepcopy(optim_g), deepcopy(optim_d)))
    assert model.optimizers == [model.optimizer_g, model.optimizer_d]
    entries = ((model.optimizer_g, optim_g, model.net_g), (model.optimizer_d, optim_d, model.net_d))
    for optimizer, options, net in entries:
        assert type(optimizer) is getattr(torch.optim, options['type'])
        group = optimizer.param_groups[0]
        assert {k: group[k] for k in hyper_parameters(options)} == hyper_parameters(options)
        assert [id(p) for p in group['params']] == [id(p) for p in net.parameters()]
    assert model.opt['train']['optim_g'] == optim_g  # left as written (basicsr popped the type)
    g, d = deepcopy(model.net_g.state_dict()), deepcopy(model.net_d.state_dict())
    model.feed_data({'lq': torch.rand(2, 3, 32, 32), 'gt': torch.rand(2, 3, 128, 128)})
    model.optimize_parameters(1)
    assert any(not torch.equal(g[k], v) for k, v in model.net_g.state_dict().items())
    assert any(not torch.equal(d[k], v) for k, v in model.net_d.state_dict().items())


def test_the_ae_model_steps_its_optimizer_as_torch_does_by_hand(tmp_path):
    sgd = {'type': 'SGD', 'lr': 0.05, 'momentum': 0.9, 'nesterov': True, 'weight_decay': 1e-3}
    opt = base_opt(tmp_path, pixel_opt=L1)
    opt['train']['optim_g'] = dict(sgd)
    model = build_model({**opt, 'model_type': 'AesopAEModel', 'network_g': TINY_AE})
    assert type(model.optimizer_g) is torch.optim.SGD
    reference = deepcopy(model.net_g)
    by_hand_sgd = torch.optim.SGD(reference.parameters(), **hyper_parameters(sgd))
    for it in (1, 2):  # the second step uses the momentum buffers
        data = {'lq': torch.rand(1, 3, 8, 8), 'gt': torch.rand(1, 3, 32, 32)}
        model.update_learning_rate(it)
        model.feed_data(data)
        model.optimize_parameters(it)
        by_hand_sgd.zero_grad()
        (reference(data['gt']) - data['gt']).abs().mean().backward()
        by_hand_sgd.step()
    for (name, value), expected in zip(model.net_g.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.allclose(value, expected, rtol=1e-5, atol=1e-7), name


def test_the_default_optimizer_is_adam_and_the_release_files_build_it(tmp_path):
    opt = sr_opt(tmp_path, optim_g={'lr': 1e-3})  # no type: Adam, written back as the validated options say
    model = build_model(opt)
    assert type(model.optimizer_g) is torch.optim.Adam and model.opt['train']['optim_g']['type'] == 'Adam'


@pytest.mark.parametrize(
    ('train', 'expected'),
    [
        (
            {'optim_g': {'type': 'SGD', 'lr': 1e-3, 'betas': [0.9, 0.99]}},
            r"^unknown option 'betas' for SGD \(option train\.optim_g\): it takes lr, momentum, dampening, "
            r'weight_decay, nesterov, maximize, foreach, differentiable, fused$',
        ),
        (
            {'optim_d': {'type': 'AdamW', 'lr': 1e-3, 'amsgrad': 'yes'}},
            r"^option train\.optim_d\.amsgrad: input should be a valid boolean, got 'yes'$",
        ),
        (
            {'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9]}},
            r'^option train\.optim_g\.betas: too few items, got \[0\.9\]$',
        ),
        (
            {'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 1.5]}},
            r'^option train\.optim_g: Adam refuses these options: Invalid beta parameter at index 1: 1\.5$',
        ),
        (
            {'optim_g': {'type': 'SGD', 'lr': 1e-3, 'nesterov': True}},
            r'^option train\.optim_g: SGD refuses these options: Nesterov momentum requires a momentum',
        ),
        ({'optim_g': {'type': 'Adam', 'lr': -1e-3}}, r'^option train\.optim_g\.lr must be > 0, got -0\.001$'),
        ({'optim_g': {'type': 'Adam', 'lr': math.inf}}, r'^option train\.optim_g\.lr: input should be a finite number'),
        (
            {'optim_g': {'type': 'Adamw', 'lr': 1e-3}},
            r"^unknown optimizer type 'Adamw' \(option train\.optim_g\.type\): did you mean 'AdamW'\? torch\.optim has "
            r'.*\bRAdam\b',
        ),
        (
            {'optim_g': {'type': 'LBFGS', 'lr': 1}},
            r'^option train\.optim_g\.type: optimizer LBFGS cannot be used: it needs a closure',
        ),
        (
            {'optim_d': {'type': 'SparseAdam', 'lr': 1e-3}},
            r'^option train\.optim_d\.type: optimizer SparseAdam cannot be used: it takes sparse gradients only',
        ),
        (
            {'scheduler': {'type': 'ReduceLROnPlateau', 'patience': 3}},
            r'^option train\.scheduler\.type: scheduler ReduceLROnPlateau cannot be used: it needs a metric',
        ),
        (
            {'scheduler': {'type': 'LambdaLR'}},
            r'^option train\.scheduler\.type: scheduler LambdaLR cannot be used: it needs a Python function',
        ),
        (
            {'scheduler': {'type': 'SequentialLR', 'milestones': [5]}},
            r'^option train\.scheduler\.type: scheduler SequentialLR cannot be used: it needs scheduler objects',
        ),
        (
            {'scheduler': {'type': 'MultiStepLR', 'milestone': [1]}},
            r"^unknown option 'milestone' for MultiStepLR \(option train\.scheduler\): did you mean 'milestones'\? "
            r'it takes milestones, gamma, restarts, restart_weights$',
        ),
        (
            {'scheduler': {'type': 'MultiStepLR', 'milestones': [2e5, '3']}},
            r"^option train\.scheduler\.milestones\.1: input should be a valid integer, got '3'$",
        ),
        (
            {'scheduler': {'type': 'StepLR', 'step_size': 3, 'last_epoch': 5}},
            r"^unknown option 'last_epoch' for StepLR \(option train\.scheduler\): it takes step_size, gamma$",
        ),
        ({'scheduler': {'type': 'CosineAnnealingLR'}}, r'^CosineAnnealingLR \(option train\.scheduler\) needs T_max$'),
        (
            {'scheduler': {'type': 'OneCycleLR', 'max_lr': 1e-2, 'total_steps': 50}},
            r'^option train\.scheduler: OneCycleLR lasts 50 steps but basicsr steps it 99 times .*total_steps to at '
            r'least 99$',
        ),
        (
            {'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [50, 10], 'restart_weights': [1]}},
            r'^option train\.scheduler: CosineAnnealingRestartLR refuses these options: periods and restart_weights',
        ),
        (
            {'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [50]}},
            r'^option train\.scheduler: the periods of CosineAnnealingRestartLR add up to 50 steps but basicsr steps '
            r'it 99 times',
        ),
    ],
)
def test_a_wrong_optimizer_or_scheduler_is_one_line_at_start_up(tmp_path, train, expected):
    opt = gan_opt(tmp_path, {'type': 'Adam', 'lr': 1e-3}, {'type': 'Adam', 'lr': 1e-3})
    opt['train'].update(train)  # total_iter: 100
    with pytest.raises(AesopError, match=expected) as error:
        load_options(opt)  # the start-up checks: nothing built
    assert '\n' not in str(error.value)


def test_force_yml_adds_an_optimizer_option_the_file_leaves_out(tmp_path):
    opt = load_options(sr_opt(tmp_path, optim_g={'type': 'SGD', 'lr': 1e-3}), overrides=['train:optim_g:momentum=0.9'])
    assert opt['train']['optim_g'] == {'type': 'SGD', 'lr': 1e-3, 'momentum': 0.9}


# ---------------------------------------------------------------- schedules


@pytest.mark.parametrize(
    ('name', 'kwargs'),
    [
        ('CosineAnnealingLR', {'T_max': 7, 'eta_min': 1e-5}),
        ('OneCycleLR', {'max_lr': 1e-2, 'total_steps': ITERS}),
        ('LinearLR', {'start_factor': 0.1, 'total_iters': 4}),
        ('ExponentialLR', {'gamma': 0.8}),
        ('StepLR', {'step_size': 3, 'gamma': 0.5}),
        ('PolynomialLR', {'total_iters': 6, 'power': 2.0}),
        ('CosineAnnealingWarmRestarts', {'T_0': 3, 'T_mult': 2, 'eta_min': 1e-6}),
        ('CyclicLR', {'base_lr': 1e-4, 'max_lr': 1e-3, 'step_size_up': 3}),
        ('ConstantLR', {'factor': 0.5, 'total_iters': 3}),
    ],
)
def test_a_torch_scheduler_by_name_gives_the_lrs_of_torch_stepped_by_hand(tmp_path, name, kwargs):
    model = build_model(sr_opt(tmp_path, scheduler={'type': name, **kwargs}))
    assert type(model.schedulers[0]) is getattr(torch.optim.lr_scheduler, name)
    assert lr_per_iteration(model) == by_hand(getattr(torch.optim.lr_scheduler, name), kwargs)


def test_basicsr_schedules_keep_their_names_and_formulas(tmp_path):
    lr = 1e-3
    model = build_model(sr_opt(tmp_path, scheduler={'type': 'MultiStepLR', 'milestones': [3, 6], 'gamma': 0.5}))
    assert type(model.schedulers[0]).__name__ == 'MultiStepRestartLR'  # basicsr's MultiStepLR
    expected = [lr * 0.5 ** sum(m <= it - 1 for m in (3, 6)) for it in range(1, ITERS + 1)]
    assert lr_per_iteration(model) == pytest.approx(expected, rel=1e-12)
    cosine = {'type': 'CosineAnnealingRestartLR', 'periods': [6, 6], 'restart_weights': [1, 0.5], 'eta_min': 1e-5}
    model = build_model(sr_opt(tmp_path, scheduler=cosine))

    def formula(step: int) -> float:
        period, weight = (0, 1) if step <= 6 else (6, 0.5)
        return 1e-5 + weight * 0.5 * (lr - 1e-5) * (1 + math.cos(math.pi * (step - period) / 6))

    assert lr_per_iteration(model) == pytest.approx([formula(it - 1) for it in range(1, ITERS + 1)], rel=1e-12)


@pytest.mark.parametrize(
    ('scheduler', 'after'),
    [
        ({'type': 'MultiStepLR', 'milestones': [8], 'gamma': 0.5}, lambda lr, it: lr * (0.5 if it - 1 >= 8 else 1)),
        ({'type': 'ExponentialLR', 'gamma': 0.9}, lambda lr, it: lr * 0.9 ** (it - 1)),
        (
            {'type': 'CosineAnnealingLR', 'T_max': ITERS},
            lambda lr, it: lr * (1 + math.cos(math.pi * (it - 1) / ITERS)) / 2,
        ),  # noqa: E501
        (None, lambda lr, it: lr),
    ],
    ids=['MultiStepLR', 'ExponentialLR', 'CosineAnnealingLR', 'none'],
)
def test_warm_up_is_linear_then_the_schedule_goes_on_as_without_it(tmp_path, scheduler, after):
    """basicsr's warm-up: ``lr × iter / warmup_iter`` below ``warmup_iter``; from there the schedule's own lr (basicsr
    stepped a chained schedule from the last warm-up lr: MultiStepLR stayed at 4/5 of the lr here)."""
    lr, warmup = 1e-3, 5
    model = build_model(sr_opt(tmp_path, scheduler=scheduler, warmup_iter=warmup))
    expected = [lr * it / warmup if it < warmup else after(lr, it) for it in range(1, ITERS + 1)]
    assert lr_per_iteration(model, warmup_iter=warmup) == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- resume


def trained_state(tmp_path, opt, iterations=4) -> dict:
    """The training state a run of ``opt`` writes after ``iterations``, read back as a resumed run reads it."""
    model = build_model(opt)
    torch.manual_seed(1)
    for it in range(1, iterations + 1):
        model.update_learning_rate(it)
        model.feed_data({'lq': torch.rand(1, 3, 16, 16), 'gt': torch.rand(1, 3, 64, 64)})
        model.optimize_parameters(it)
    model.save_training_state(0, iterations)
    state = read_checkpoint(tmp_path / f'{iterations}.state')
    state['net_g'] = deepcopy(model.net_g.state_dict())  # what a resumed run loads from net_g_<iter>.pth
    return state


def resumed(opt, state, resume=AesopModel.resume_training):
    """A model built from ``opt`` with the state's G, resumed by ``resume`` (default: this package's)."""
    model = build_model(opt)
    model.net_g.load_state_dict(state['net_g'])
    resume(model, deepcopy(state))
    return model


def go_on(model, start, iterations=2, update=AesopModel.update_learning_rate) -> list[float]:
    """Train on from ``start`` (the lr set by ``update``); the lrs of those iterations."""
    torch.manual_seed(2)
    lrs = []
    for it in range(start + 1, start + iterations + 1):
        update(model, it)
        lrs.append(model.get_current_learning_rate()[0])
        model.feed_data({'lq': torch.rand(1, 3, 16, 16), 'gt': torch.rand(1, 3, 64, 64)})
        model.optimize_parameters(it)
    return lrs


def assert_same_state_dicts(a, b) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_state_dicts(a[key], b[key])
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b


def saved_state(tmp_path, milestones: list[int], older: bool) -> tuple[dict, dict]:
    """The options of a run with a halving MultiStepLR at ``milestones`` and its training state at iteration 4
    (``older``: as a version before the recorded options wrote it)."""
    opt = sr_opt(tmp_path, scheduler={'type': 'MultiStepLR', 'milestones': milestones, 'gamma': 0.5})
    state = trained_state(tmp_path, opt)
    if older:
        del state['schedule_options']  # written before this version
    return opt, state


@pytest.mark.parametrize('older', [False, True], ids=['state', 'older state'])
def test_an_unchanged_resume_is_basicsrs_bit_for_bit(tmp_path, logged, older):
    opt, state = saved_state(tmp_path, [3, 5], older)
    ours, theirs = resumed(opt, state), resumed(opt, state, BaseModel.resume_training)  # basicsr's own
    for a, b in zip([*ours.optimizers, *ours.schedulers], [*theirs.optimizers, *theirs.schedulers], strict=True):
        assert_same_state_dicts(a.state_dict(), b.state_dict())
    assert go_on(ours, 4) == go_on(theirs, 4, update=BaseModel.update_learning_rate) == [5e-4, 2.5e-4]
    for key, value in ours.net_g.state_dict().items():
        assert torch.equal(value, theirs.net_g.state_dict()[key]), key
    assert not [r for r in logged if 'resuming at iteration' in r.getMessage()]


@pytest.mark.parametrize('older', [False, True], ids=['state', 'older state'])
def test_a_resume_with_another_schedule_and_lr_follows_the_file(tmp_path, logged, older):
    opt, state = saved_state(tmp_path, [100], older)
    new = {'type': 'CosineAnnealingLR', 'T_max': 10, 'eta_min': 1e-5}
    opt['train'].update(optim_g={'type': 'Adam', 'lr': 2e-3}, scheduler=new)
    model = resumed(opt, state)
    expected = by_hand(torch.optim.lr_scheduler.CosineAnnealingLR, {'T_max': 10, 'eta_min': 1e-5}, lr=2e-3)
    assert model.get_current_learning_rate()[0] == expected[3]  # the new schedule's lr at iteration 4
    assert go_on(model, 4) == expected[4:6]
    moments = state['optimizers'][0]['state']
    again = resumed(opt, state)
    for index, param_state in moments.items():  # Adam's moments and step counts are the state's
        assert_same_state_dicts(again.optimizer_g.state_dict()['state'][index], param_state)
    lines = [r.getMessage() for r in logged if 'resuming at iteration' in r.getMessage()]
    assert len(lines) == 2 and lines[0] == lines[1]
    line = lines[0]
    assert line.startswith(
        "resuming at iteration 4 with the option file's optimizers and schedule, not the training state's: "
        'train.optim_g: lr 0.001 → 0.002; train.scheduler: '
    )
    assert 'train.scheduler: type MultiStepRestartLR → CosineAnnealingLR, T_max 10, eta_min 1e-05' in line
    older_note = '(the training state, of an older version, records no options: compared its optimizers'
    assert (older_note in line) is older
    assert line.endswith(f'; lr now {expected[3]:g}')


@pytest.mark.parametrize('older', [False, True], ids=['state', 'older state'])
def test_a_resume_with_another_optimizer_starts_its_moments_afresh(tmp_path, logged, older):
    opt, state = saved_state(tmp_path, [2], older)
    opt['train']['optim_g'] = {'type': 'SGD', 'lr': 1e-3, 'momentum': 0.9}
    model = resumed(opt, state)
    assert type(model.optimizer_g) is torch.optim.SGD and not model.optimizer_g.state
    assert model.optimizer_g.param_groups[0]['momentum'] == 0.9
    assert model.get_current_learning_rate() == [5e-4]  # the schedule at iteration 4 (halved at 3)
    line = next(r.getMessage() for r in logged if 'resuming at iteration' in r.getMessage())
    assert 'train.optim_g: type Adam → SGD (its moments start afresh), lr 0.001, momentum 0.9, dampening 0' in line
    assert 'train.scheduler' not in line


def test_a_resumed_run_with_another_schedule_logs_it_and_follows_it(tiny_data, tmp_path):
    """Through ``aesop/train.py``: 2 iterations of the release's constant MultiStepLR, then ``--auto_resume`` to 4
    with a cosine: one line, and the lrs logged at iterations 3 and 4 are the cosine's."""
    opt = ae_opt(tiny_data, 'reschedule', 2, 2)
    opt_file = write_yaml(opt, tmp_path / 'ae.yml')
    assert train(opt_file, tmp_path).returncode == 0
    opt = ae_opt(tiny_data, 'reschedule', 4, 2)
    opt['train']['scheduler'] = {'type': 'CosineAnnealingLR', 'T_max': 4}
    proc = train(write_yaml(opt, opt_file), tmp_path, '--auto_resume')
    out = proc.stdout
    assert proc.returncode == 0 and 'End of training' in out, out
    lines = [line for line in out.splitlines() if 'resuming at iteration' in line]
    assert len(lines) == 1 and lines[0].endswith(
        "resuming at iteration 2 with the option file's optimizers and schedule, not the training state's: "
        'train.scheduler: type MultiStepRestartLR → CosineAnnealingLR, T_max 4, eta_min 0; lr now 0.000853553'
    ), lines
    lr = opt['train']['optim_g']['lr']
    for it in (3, 4):
        assert f'iter:{it:8,d}, lr:({lr * (1 + math.cos(math.pi * (it - 1) / 4)) / 2:.3e},)' in out


def test_an_fp16_resume_keeps_the_gradient_scalers(tmp_path):
    """``train.amp: fp16``: each optimiser's GradScaler (its scale and growth tracker) is in the training state, and
    a resumed run scales its losses as the stopped one would have; a state without them (bf16, fp32, an older
    version) resumes with a fresh scaler, as before."""

    def ae_opt(amp):  # the AE model reads train.amp (basicsr's SR model does not)
        opt = sr_opt(tmp_path, pixel_at_LR_opt=L1, amp=amp)
        return {**opt, 'model_type': 'AesopAEModel', 'network_g': TINY_AE}

    opt = ae_opt('fp16')
    state = trained_state(tmp_path, opt)
    [saved] = state['grad_scalers']
    assert set(saved) >= {'scale', '_growth_tracker'} and saved['_growth_tracker'] > 0  # 4 steps moved it
    model = resumed(opt, state)
    assert model.train_step.scaler_states(model.optimizers) == [saved]
    del state['grad_scalers']
    fresh = resumed(opt, state)
    assert fresh.train_step.scaler_states(fresh.optimizers) == [None]
    assert trained_state(tmp_path, ae_opt('none'))['grad_scalers'] == [None]  # fp32: no scaler
