"""The declared option schema (aesop.schema): typos and wrong types at start-up, known keys accepted."""

import copy
import math
import re
from pathlib import Path

import pytest

import aesop  # noqa: F401  (registers the project's components)
from aesop.data import REALESRGAN_OPTION_KEYS, RealESRGANDegradation
from aesop.errors import AesopError
from aesop.models.validation import Validator
from aesop.options import apply_force_yml, load_option_file, parse_yaml
from aesop.schema import admits, apply_schema, known_keys

REPO = Path(__file__).resolve().parents[1]
BASE = load_option_file(REPO / 'options' / 'train_aesop_rrdb.yml')


def checked(**changes) -> str | None:
    """The schema's message for the AESOP option file with ``changes`` (``section__key=value``), or None."""
    opt = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *sections, key = dotted.split('__')
        node = opt
        for section in sections:
            node = node[section]
        node[key] = value
    try:
        apply_schema(opt)
    except AesopError as err:
        return str(err)
    return None


@pytest.mark.parametrize(
    ('change', 'expected'),
    [
        ({'trian': {}}, "unknown option 'trian' at the top level: did you mean 'train'?"),
        ({'datasets__train__gt_sise': 64}, "unknown option 'gt_sise' in datasets.train: did you mean 'gt_size'?"),
        (
            {'datasets__val__io_backend__typ': 'disk'},
            "unknown option 'typ' in datasets.val.io_backend: did you mean 'type'?",
        ),
        ({'train__ema_decy': 0.9}, "unknown option 'ema_decy' in train: did you mean 'ema_decay'?"),
        ({'val__save_imgs': True}, "unknown option 'save_imgs' in val: did you mean 'save_img'?"),
        ({'logger__wandb': {'projekt': 'x'}}, "unknown option 'projekt' in logger.wandb: did you mean 'project'?"),
        ({'dist_params': {'bakend': 'gloo'}}, "unknown option 'bakend' in dist_params: did you mean 'backend'?"),
    ],
)
def test_a_typo_names_the_closest_key(change, expected):
    assert checked(**change).startswith(expected)


@pytest.mark.parametrize(
    ('change', 'expected'),
    [
        ({'train__total_iter': -5}, r'option train\.total_iter must be > 0, got -5$'),
        ({'train__ema_decay': 1.0}, r'option train\.ema_decay must be < 1, got 1\.0$'),
        ({'train__optim_g__lr': 'fast'}, r"option train\.optim_g\.lr: input should be a valid number.*got 'fast'$"),
        ({'train__optim_g__lr': float('inf')}, r'option train\.optim_g\.lr: input should be a finite number, got inf$'),
        ({'train__amp': 'fp8'}, r"option train\.amp: input should be 'none', 'bf16' or 'fp16'.*got 'fp8'$"),
        ({'train__pixel_opt': 1.0}, r'^train\.pixel_opt must be a mapping with a type, got 1\.0$'),
        ({'datasets__train__batch_size_per_gpu': 0}, r'datasets\.train\.batch_size_per_gpu must be > 0, got 0$'),
        ({'datasets__train__use_shuffle': False}, r'use_shuffle: False is not possible: basicsr always shuffles'),
        ({'path__strict_load_g': 'no'}, r"^path\.strict_load_g must be true or false, got 'no'$"),
        ({'val__val_freq': 'daily'}, r"option val\.val_freq: input should be a valid integer.*got 'daily'$"),
    ],
)
def test_a_wrong_type_names_the_key_and_the_value(change, expected):
    assert re.search(expected, checked(**change))


@pytest.mark.parametrize(
    ('change', 'expected'),
    [  # pydantic's lax mode took these, and the dict kept the string: bool('no') is True
        ({'train__channels_last': 'no'}, "option train.channels_last: input should be a valid boolean, got 'no'"),
        ({'datasets__train__use_hflip': 'false'}, 'option datasets.train.use_hflip: input should be a valid boolean'),
        ({'datasets__train__use_hflip': 1}, 'option datasets.train.use_hflip: input should be a valid boolean'),
        (
            {'datasets__train__batch_size_per_gpu': '4'},
            "batch_size_per_gpu: input should be a valid integer, got '4'",
        ),
        ({'train__total_iter': True}, 'option train.total_iter: input should be a valid integer, got True'),
        ({'train__total_iter': 'no'}, "option train.total_iter: input should be a valid integer, got 'no'"),
        (
            {'train__optim_g__lr': '0.001'},
            "option train.optim_g.lr: input should be a valid number, got '0.001'",
        ),
        ({'train__optim_g__lr': '1e-3'}, "option train.optim_g.lr: input should be a valid number, got '1e-3'"),
        ({'train__ema_decay': True}, 'option train.ema_decay: input should be a valid number, got True'),
        ({'train__total_iter': 2.5}, 'option train.total_iter: input should be a valid integer, got 2.5'),
        (
            {'datasets__train__num_worker_per_gpu': 2.5},
            'option datasets.train.num_worker_per_gpu: input should be a valid integer',
        ),
    ],
)
def test_types_are_strict(change, expected):
    """pydantic's strict mode: a value has the type YAML gave it (a quoted ``'1e-3'`` is a string)."""
    assert expected in checked(**change)


def test_the_validated_values_and_the_defaults_are_written_back():
    opt = copy.deepcopy(BASE)
    for key in ('print_freq', 'save_checkpoint_freq'):
        del opt['logger'][key]
    for key in ('use_rot', 'batch_size_per_gpu', 'num_worker_per_gpu'):
        del opt['datasets']['train'][key]
    del opt['num_gpu'], opt['val']['save_img']
    opt['train']['total_iter'] = 4e5  # !!float 4e5
    opt['train']['optim_g']['lr'] = parse_yaml('2e-4', source='lr')  # YAML 1.2's float, no !!float
    apply_schema(opt)
    assert opt['train']['total_iter'] == 400000 and type(opt['train']['total_iter']) is int
    assert opt['train']['optim_g']['lr'] == 2e-4
    docs = (REPO / 'docs' / 'options.md').read_text()
    for section, key, value in [
        ('logger', 'print_freq', 100),
        ('logger', 'save_checkpoint_freq', 5000),
        ('datasets.train', 'use_rot', False),
        ('datasets.train', 'batch_size_per_gpu', 1),
        ('datasets.train', 'num_worker_per_gpu', 0),
        ('', 'num_gpu', 1),
        ('val', 'save_img', False),
    ]:
        node = opt
        for part in section.split('.') if section else ():
            node = node[part]
        assert node[key] == value and type(node[key]) is type(value), (section, key)
        documented = re.findall(rf'^\| `{key}` \| [^|]*(?:\\\|[^|]*)* \| `([^`]*)` \|', docs, re.M)
        assert str(value).lower() in documented, (key, documented)  # what the reference says is what runs
    assert 'allow_random_init' not in opt['path']  # basicsr makes a folder of every unknown path key
    assert 'accumulate' not in opt['train']  # a ~ default is not written: the step options' unset


def test_the_models_declare_their_train_keys():
    """``train``'s keys of this project's models are declared next to them: the step options by TrainStep
    (amp's names: its AMP_DTYPES), the controller by the HR-aware models, freeze_decoder by the AE model."""
    from aesop.models.train_step import STEP_OPTIONS

    assert STEP_OPTIONS == ('amp', 'channels_last', 'grad_clip', 'accumulate', 'compile')
    assert checked(train__amp='bf-16') == (
        "option train.amp: input should be 'none', 'bf16' or 'fp16', got 'bf-16'; did you mean 'bf16'?"
    )
    assert checked(train__accumulate=0) == 'option train.accumulate must be ≥ 1, got 0'
    assert checked(train__freeze_decoder=-1) == 'option train.freeze_decoder must be ≥ 0, got -1'
    assert checked(train__controller={'noise': 'gaussian'}).startswith('option train.controller.noise: input should be')
    opt = copy.deepcopy(BASE)
    opt['train']['controller'] = {}
    apply_schema(opt)  # the defaults the HR-aware models read, written
    assert opt['train']['controller'] == {'noise': 'vector', 'noise_std': 1.0, 'redraw': True, 'grad': False}
    assert opt['train']['allow_psi_change'] is False and opt['train']['freeze_decoder'] == 0
    docs = (REPO / 'docs' / 'options.md').read_text()
    for reader in ('TrainStep', 'AesopGANModel', 'AesopModel', 'AesopAEModel', 'AesopHRAwareModel'):
        assert f'## `train`, read by `{reader}`' in docs


def test_a_missing_required_key():
    opt = copy.deepcopy(BASE)
    del opt['train']['total_iter']
    with pytest.raises(AesopError, match=r'^option train\.total_iter is missing$'):
        apply_schema(opt)


def test_families_of_keys_and_the_numbers_yaml_1_1_read_as_strings():
    assert checked(network_ema={'type': 'RRDBNet'}, path__pretrain_network_d='d.pth', path__strict_load_d=False) is None
    lr, total_iter = parse_yaml('[1e-4, 4e5]', source='numbers')  # the loader's floats
    assert checked(train__lowpass_opt={'type': 'L1Loss'}, train__optim_g__lr=lr, train__total_iter=total_iter) is None
    assert admits('path', 'param_key_decoder') and admits('train', 'lr_opt') and admits('datasets.train', 'gt_size')
    assert not admits('train', 'ema_decy') and not admits('nowhere', 'x')
    assert 'pretrain_network_g' in known_keys('path') and 'use_hflip' in known_keys('datasets.val')


def test_force_yml_takes_declared_keys_the_file_leaves_out():
    apply_force_yml(copy.deepcopy(BASE), ['train:amp=bf16', 'val:val_start_iter=10', 'datasets:train:use_rot=false'])
    with pytest.raises(AesopError, match="no option 'total_itr' in train; did you mean 'train:total_iter'"):
        apply_force_yml(copy.deepcopy(BASE), ['train:total_itr=3'])


def test_validation_waits_for_val_start_iter():
    calls = []

    class Counting(Validator):
        def score(self, dataloader, current_iter, tb_logger, save_img, shard=(0, 1)):
            calls.append(current_iter)

    opt = {'is_train': True, 'dist': False, 'val': {'val_start_iter': 3}}
    for current_iter in (1, 2, 3, 4):
        Counting(None, opt).validate(None, current_iter, None)
    opt['is_train'] = False  # test.py validates once, whatever the option says
    Counting(None, opt).validate(None, 0, None)
    assert calls == [3, 4, 0]


def test_the_loop_options():
    """``train.grad_clip`` / ``accumulate`` / ``compile`` and ``val.tile`` / ``tile_pad`` (tests/test_loop.py)."""
    assert checked(train__grad_clip={'g': 1.0}, train__accumulate=4, train__compile={'mode': 'max-autotune'}) is None
    assert checked(train__grad_clip=0.5, train__compile=True, val__tile=256, val__tile_pad=32) is None
    assert 'train.accumulate' in checked(train__accumulate=0)
    assert 'grad_clip' in checked(train__grad_clip={'x': 1.0})
    assert 'val.tile' in checked(val__tile=-1)


def test_top_level_keys_declared_by_the_components_that_read_them():
    """The degradation's keys are typed by its constructor's signature, the USM switches by the real-world model:
    both validated strictly at the top level, written back as read, listed in the reference, declared once."""
    from aesop.schema import declare_options, option_file

    assert checked(gaussian_noise_prob='high') == (  # the constructor's rule, its message: refused once
        "option gaussian_noise_prob must be a probability in [0, 1], got 'high'"
    )
    assert checked(queue_size=1.5) == 'option queue_size must be an integer >= 0, got 1.5'
    assert checked(resize_prob=[0.5, 0.5, 0.5]) == 'option resize_prob must sum to 1, got [0.5, 0.5, 0.5] (sum 1.5)'
    assert checked(l1_gt_usm='no') == "option l1_gt_usm: input should be a valid boolean, got 'no'"
    assert checked(resize_range=parse_yaml('[1e-1, 1.5]', source='resize_range')) is None  # 1e-1: a float
    assert checked(resize_range=['1e-1', 1.5]) == (
        "option resize_range must be a list of 2 finite numbers [lo, hi], got ['1e-1', 1.5]"
    )
    opt = copy.deepcopy(BASE) | {'noise_range': [1, 30], 'aesop_gt_usm': True}
    apply_schema(opt)
    assert opt['noise_range'] == [1.0, 30.0] and opt['aesop_gt_usm'] is True and 'jpeg_range' not in opt
    docs = (REPO / 'docs' / 'options.md').read_text()
    assert '## Top level, read by `RealESRGANDegradation`' in docs and '| `gan_gt_usm` | `bool \\| ~` |' in docs
    with pytest.raises(TypeError, match="option 'queue_size' of Again is declared twice"):
        declare_options('', 'Again', 'x', {'queue_size': (int, 'x')})
    assert 'Again' not in [cls.__name__ for cls in option_file().__mro__]


def test_a_training_crop_is_a_multiple_of_the_scale():
    assert checked(datasets__train__gt_size=126) == 'datasets.train.gt_size (126) must be a multiple of scale (4)'
    assert checked(datasets__train__gt_size=128) is None


def test_the_schema_declares_every_degradation_key_with_its_type():
    """The degradation's keys are its signature's; the schema types them at the top level of an option file:
    each is declared, and the signature's defaults, written as YAML would, validate."""
    import inspect

    from aesop.schema import apply_schema, option_file

    assert set(REALESRGAN_OPTION_KEYS) <= set(option_file().model_fields)
    defaults = {k: p.default for k, p in inspect.signature(RealESRGANDegradation).parameters.items()}
    opt = {'name': 'x', 'datasets': {}, **{k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()}}
    apply_schema(opt)
    assert RealESRGANDegradation.from_options(opt).extra_repr() == RealESRGANDegradation().extra_repr()


def _loss_weights(opt: dict) -> list[tuple[str, ...]]:
    """The keys of every loss weight of ``opt``: ``(entry, key)`` and ``(entry, 'layer_weights', layer)``."""
    found = []
    for entry, options in (opt.get('train') or {}).items():
        if entry.endswith('_opt') and isinstance(options, dict):
            found += [(entry, key) for key in options if key.endswith('_weight')]
            found += [(entry, key, layer) for key, v in options.items() if key.endswith('_weights') for layer in v]
    return found


WEIGHTED_FILES = sorted({p.name for p in REPO.glob('options/*.yml') if _loss_weights(load_option_file(p))})


@pytest.mark.parametrize('name', WEIGHTED_FILES)
def test_every_loss_weight_of_every_option_file_is_a_finite_number_at_least_0(name):
    """Every ``*_weight`` of every ``train.*_opt`` entry (basicsr's L1Loss, PerceptualLoss, GANLoss, this project's
    fidelity, HR-aware and AE losses) and each of PerceptualLoss's ``layer_weights``: refused at start-up naming the
    option, whatever the loss (a negative weight trained the other way without a word, a NaN showed as "loss l_pix is
    nan" at iteration 1); 0 switches a term off."""
    base = load_option_file(REPO / 'options' / name)
    for keys in _loss_weights(base):
        for value in (-1, -0.5, math.nan, math.inf, -math.inf, '0.5', True, None, 0):
            opt = copy.deepcopy(base)
            node = opt['train']
            for key in keys[:-1]:
                node = node[key]
            node[keys[-1]] = value
            if value == 0:
                assert apply_schema(opt)  # a switched-off term
                continue
            with pytest.raises(AesopError) as error:
                apply_schema(opt)
            assert str(error.value) == f'option train.{".".join(keys)} must be a finite number ≥ 0, got {value!r}'


def test_the_loss_weight_rule_covers_every_file_kind_and_the_constructors():
    """The option files cover basicsr's losses and this project's (the rule's reach), and a project loss built
    from Python refuses a bad weight with the same line (its annotation, :data:`aesop.schema.LossWeight`)."""
    from basicsr.utils.registry import LOSS_REGISTRY

    types = {
        load_option_file(REPO / 'options' / name)['train'][keys[0]]['type']
        for name in WEIGHTED_FILES
        for keys in _loss_weights(load_option_file(REPO / 'options' / name))
    }
    assert {'L1Loss', 'PerceptualLoss', 'GANLoss', 'AesopLoss', 'AesopLRReconstructionLoss'} <= types, types
    assert {'AesopFeatureAlignmentLoss', 'MSELoss'} & types, types
    with pytest.raises(AesopError, match=r'^option AesopLRReconstructionLoss\.hf_weight must be a finite number ≥ 0'):
        LOSS_REGISTRY.get('AesopLRReconstructionLoss')(hf_weight=math.nan)
    with pytest.raises(AesopError, match=r'^option AesopLowPassLoss\.loss_weight must be a finite number ≥ 0, got -1'):
        LOSS_REGISTRY.get('AesopLowPassLoss')(loss_weight=-1)


CROP = 'option val.metrics.psnr.crop_border must be an integer ≥ 0, got'


@pytest.mark.parametrize(
    ('change', 'expected'),
    [
        ({'val__metrics__psnr__crop_border': -4}, f'{CROP} -4'),
        ({'val__metrics__psnr__crop_border': 2.5}, f'{CROP} 2.5'),
        ({'val__metrics__psnr__crop_border': '4'}, f"{CROP} '4'"),
        ({'datasets__train__gt_size': 0}, 'option datasets.train.gt_size must be > 0, got 0'),
        ({'datasets__train__gt_size': -128}, 'option datasets.train.gt_size must be > 0, got -128'),
        ({'scale': 0}, 'option scale must be > 0, got 0'),
        ({'path__allow_partial_g': 'yes'}, "option path.allow_partial_g: input should be a valid boolean, got 'yes'"),
        ({'train__optim_g__lr': math.inf}, 'option train.optim_g.lr: input should be a finite number, got inf'),
        ({'train__optim_d__lr': math.nan}, 'option train.optim_d.lr must be > 0, got nan'),
    ],
)
def test_numbers_that_make_no_sense_are_refused_at_start_up(change, expected):
    """basicsr's calculate_psnr took ``crop_border: -4`` and scored an empty crop (``psnr: nan``, exit 0)."""
    assert checked(**change) == expected


@pytest.mark.parametrize(
    ('optim', 'scheduler', 'expected'),
    [
        ({'betas': [1.5, 0.999]}, {}, 'option train.optim_g: Adam refuses these options: Invalid beta parameter at'),
        ({'eps': -1.0}, {}, 'option train.optim_g: Adam refuses these options: Invalid epsilon value: -1.0'),
        ({}, {'gamma': -0.5}, 'option train.scheduler.gamma must be > 0, got -0.5'),
        (
            {},
            {'type': 'CosineAnnealingRestartLR', 'periods': [0]},
            'option train.scheduler.periods.0 must be > 0, got 0',
        ),
        (
            {},
            {'type': 'CosineAnnealingRestartLR', 'periods': [10], 'eta_min': -1e-7},
            'option train.scheduler.eta_min must be ≥ 0, got -1e-07',
        ),
    ],
)
def test_optimiser_and_schedule_numbers_that_make_no_sense_are_refused_at_start_up(optim, scheduler, expected):
    """torch's Adam refused ``betas: [1.5, …]`` / ``eps: -1`` with a traceback while the model was built;
    CosineAnnealingRestartLR divided by a period of 0; a negative ``gamma`` trained uphill from its first milestone
    without a word. The start-up check builds both on a one-element parameter (aesop.models.optim)."""
    from aesop.models.optim import check_optim_options

    train = {
        'total_iter': 10,
        'optim_g': {'type': 'Adam', 'lr': 1e-4, **optim},
        'scheduler': {'type': 'MultiStepLR', 'milestones': [5], 'gamma': 0.5, **scheduler},
    }
    if 'periods' in scheduler:
        del train['scheduler']['milestones'], train['scheduler']['gamma']
    with pytest.raises(AesopError, match='^' + re.escape(expected)):
        check_optim_options({'train': train})


def test_allow_partial_g_is_a_setting_not_a_folder():
    from aesop.schema import Paths

    assert checked(path__allow_partial_g=True) is None and 'allow_partial_g' in Paths.SETTINGS
    opt = copy.deepcopy(BASE)
    apply_schema(opt)
    assert 'allow_partial_g' not in opt['path']
