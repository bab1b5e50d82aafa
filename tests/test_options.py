"""Every option file is parsed, its networks and losses built (tiny overrides), its model created."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from basicsr.models import build_model
from conftest import REPO

from aesop.errors import AesopError
from aesop.options import check_components, load_option_file, load_options

OPTION_FILES = sorted((REPO / 'options').rglob('*.yml'))
TINY = {'num_feat': 16, 'num_block': 1, 'num_grow_ch': 8, 'embed_dim': 12, 'depths': [1], 'num_heads': [2], 'nf': 8}


def load(path: Path) -> dict:
    return load_option_file(path)


def shrink(arch: dict) -> dict:
    """Same arch, tiny sizes: every size key the arch has is overridden."""
    arch = {**arch, **{k: v for k, v in TINY.items() if k in arch}}
    if 'decoder' in arch:
        arch['decoder'] = shrink(arch['decoder'])
    return arch


PAPER_FILES = """train_ae train_aesop_rrdb train_aesop_rrdb256 train_aesop_swinir train_ldl_rrdb train_esrgan_rrdb
    train_ae_bicubic_encoder train_ae_no_lr_loss train_ae_srresnet train_lpf_rrdb train_lr_consistency_rrdb
    train_ae_realworld train_aesop_realworld train_aesop_realworld_paper train_ldl_realworld test_realworld
    test_esrgan test_spsr
    train_aesop_drct train_ldl_drct test_drct
    test_rrdb test_swinir test_ae demo/train_psnr demo/train_ae demo/train_aesop demo/test_aesop
    train_hraware_recon train_hraware_recon_s_only train_hraware_recon_far_only train_lway_recon
    finetune_hraware_realesrgan finetune_hraware_realesrgan_s_only finetune_hraware_realesrgan_far_only
    finetune_lway_realesrgan finetune_hraware_realesrgan_inverse finetune_hraware_swinir finetune_lway_swinir
    test_hraware test_hraware_swinir""".split()


def test_the_paper_option_files_exist():
    names = {p.relative_to(REPO / 'options').as_posix() for p in OPTION_FILES}
    assert {f'{n}.yml' for n in PAPER_FILES} <= names


@pytest.mark.parametrize('path', OPTION_FILES, ids=lambda p: p.relative_to(REPO / 'options').as_posix())
def test_option_file_builds(path, tmp_path):
    opt = load(path)
    assert opt['scale'] == 4 and opt['name']
    for key in ('network_g', 'network_d'):
        if key in opt:
            opt[key] = shrink(opt[key])
    is_train = 'train' in opt
    for loss in (opt.get('train') or {}).values():
        if isinstance(loss, dict) and loss.get('type') == 'AesopLoss':
            loss['autoencoder'] = shrink(loss['autoencoder'])
            torch.save({'params_ema': build_network(deepcopy(loss['autoencoder'])).state_dict()}, tmp_path / 'ae.pth')
            loss['pretrained'] = str(tmp_path / 'ae.pth')
    opt['path'] = {k: v for k, v in opt['path'].items() if not k.startswith(('pretrain_network', 'resume'))}
    hraware(opt, tmp_path)
    opt['path'].update(models=str(tmp_path), training_states=str(tmp_path), results_root=str(tmp_path))
    opt.update(is_train=is_train, dist=False, num_gpu=0, rank=0, world_size=1)
    load_options(opt)  # the release's names and keys, the schema's values and defaults, every type checked
    model = build_model(opt)

    lq = torch.rand(1, 3, 20, 12)  # not a multiple of SwinIR's window: the model pads
    if opt['model_type'] == 'AesopHRAwareReconModel':  # X̂ = R(s·E_deg(LR), E_img(HR)), at LR size
        model.feed_data({'gt': torch.rand(1, 3, 80, 48), 'lq': lq})
        model.test()
        assert model.output.shape == lq.shape
        return
    if opt['model_type'] == 'AesopAEModel':
        model.feed_data({'gt': torch.rand(1, 3, 80, 48), 'lq': lq})
        model.test()
        assert model.output.shape == (1, 3, 80, 48) and model.bottleneck.shape == lq.shape
        return
    model.feed_data({'lq': lq})
    model.test()
    assert model.output.shape == (1, 3, 80, 48)
    if is_train and 'network_d' in opt:
        size = opt['network_d'].get('input_size', 32)  # VGG-style: one score; U-Net: one per pixel
        expected = (2, 1) if 'input_size' in opt['network_d'] else (2, 1, size, size)
        assert model.net_d(torch.rand(2, 3, size, size)).shape == expected


def hraware(opt: dict, tmp_path: Path) -> None:
    """Paper 003's files: tiny reconstruction network (its weights saved for finetuning) and CLIP."""
    from test_hraware import TINY, TINY_CLIP

    for key in ('network_g', 'network_recon'):
        if opt.get(key, {}).get('type') == 'AesopHRAwareReconstructor':
            opt[key] = {**opt[key], **TINY, 'scale': 4}
    if 'network_clip' in opt:
        opt['network_clip'] = {**opt['network_clip'], **TINY_CLIP, 'pretrained': None}
    if 'network_recon' in opt:
        torch.save({'params_ema': build_network(deepcopy(opt['network_recon'])).state_dict()}, tmp_path / 'recon.pth')
        opt['path']['pretrain_network_recon'] = str(tmp_path / 'recon.pth')


@pytest.mark.parametrize('name', ['train_aesop_rrdb.yml', 'test_rrdb.yml', 'train_ae.yml'])
def test_placeholder_paths_say_which_option_to_edit(name, tmp_path):
    with pytest.raises(
        AesopError, match=r'dataset folder not found: .*(DF2K|DIV2K|Set14).* \(option datasets\.\w+\.dataroot_gt\)'
    ):
        load_options(REPO / 'options' / name, is_train=name.startswith('train'), root_path=tmp_path)


def test_a_loss_entry_the_model_does_not_read_is_an_error(tmp_path):
    opt = load(REPO / 'options' / 'train_aesop_rrdb.yml')
    opt['train']['artifact_opt'] = opt['train'].pop('artifacts_opt')
    with pytest.raises(
        AesopError, match=r"AesopGANModel does not read train\.artifact_opt: did you mean 'artifacts_opt'"
    ):
        load_options(opt, is_train=opt.get('is_train', True), root_path=tmp_path)


def test_official_option_names_are_translated(tmp_path):
    (tmp_path / 'hr').mkdir()
    cv2.imwrite(str(tmp_path / 'hr' / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    opt = {
        'name': 'run',
        'datasets': {'train': {'type': 'PairedImageDataset', 'dataroot_gt': 'hr', 'use_flip': True}},
        'path': {},
        'num_gpu': 1,
    }
    load_options(opt, is_train=opt.get('is_train', True), root_path=tmp_path)
    dataset = opt['datasets']['train']
    assert 'use_flip' not in dataset and dataset['use_hflip'] is True
    assert dataset['type'] == 'AesopPairedImageDataset'  # basicsr's, with one-line errors
    assert dataset['dataroot_gt'] == str(tmp_path / 'hr')
    assert opt['num_gpu'] == (1 if torch.cuda.is_available() else 0)


# The archs the docs and option files name whose constructor takes **kwargs: basicsr's SwinIR (which drops them)
# and the release's names (aesop.official's builders, checked as the entry they build, e.g. from --arch).
# name: (options it needs, a typo, the option meant, a value for it, the option file that uses it, if any)
KWARGS_ARCHS = {
    'SwinIR': ({'upscale': 4}, 'embed_dimm', 'embed_dim', 24, 'test_swinir.yml'),
    'DRCT': ({}, 'embed_dimm', 'embed_dim', 24, 'test_drct.yml'),
    'SPSRNet': ({}, 'nff', 'nf', 8, 'test_spsr.yml'),
    'RRDBNet_LEGACY': ({'in_nc': 3, 'out_nc': 3}, 'num_blocks', 'num_block', 1, 'test_esrgan.yml'),
    'VGGStyleDiscriminator128': ({'num_in_ch': 3}, 'num_fet', 'num_feat', 8, None),
    'VGGStyleDiscriminator256': ({'num_in_ch': 3}, 'num_fet', 'num_feat', 8, None),
    'AutoEncoder_RRDBNet': (
        {'dec_opt': {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3}},
        'num_blok',
        'num_block',
        1,
        None,
    ),
    'BicubicDown_RRDBNet': (
        {'dec_opt': {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3}},
        'num_blok',
        'num_block',
        1,
        None,
    ),
}


@pytest.mark.parametrize('name', list(KWARGS_ARCHS))
def test_a_typo_in_an_arch_that_takes_kwargs_is_one_line(name, tmp_path):
    from aesop.inference import load_generator

    needs, typo, meant, value, option_file = KWARGS_ARCHS[name]
    arch = {'type': name, **deepcopy(needs)}
    check_components({'network_g': {**deepcopy(arch), meant: value}, 'scale': 4})  # a real option is taken
    message = rf"^unknown option '{typo}' for \w+ \(option network_g\): did you mean '{meant}'\? it takes .*{meant}"
    with pytest.raises(AesopError, match=message):  # --arch: checked before the weights are read
        load_generator({**arch, typo: value}, tmp_path / 'none.pth', scale=None)
    if option_file:
        opt = load(REPO / 'options' / option_file)
        opt['network_g'][typo] = value
        with pytest.raises(AesopError, match=message):
            load_options(
                opt, is_train=opt.get('is_train', True), root_path=tmp_path
            )  # the start-up check of train.py / test.py


class _Parent(torch.nn.Module):
    def __init__(self, depth: int = 2) -> None:
        super().__init__()


class _Unused(torch.nn.Module):  # as basicsr's SwinIR: **kwargs taken and dropped
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__()


class _ToSuper(_Parent):
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)


class _ToNamedSuper(_Parent):
    def __init__(self, width: int = 1, **kwargs) -> None:
        super(_ToNamedSuper, self).__init__(**kwargs)  # noqa: UP008  (basicsr's style)


class _ToGrandparent(_ToSuper):  # forwarded twice: _ToSuper's width, then _Parent's depth
    def __init__(self, height: int = 1, **kwargs) -> None:
        _ToSuper.__init__(self, **kwargs)


class _ToOther(torch.nn.Module):  # forwarded to a class its module names
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__()
        self.body = _Parent(**kwargs)


class _Reads(torch.nn.Module):
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__()
        self.foo, self.bar = kwargs.get('foo'), kwargs['bar'] if 'qux' in kwargs else kwargs.pop('baz', 0)


class _Stores(torch.nn.Module):  # what it does with them can't be told: anything is taken, as before
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__()
        self.extra = kwargs


class _ToUnknown(torch.nn.Module):  # forwarded to a method: not followed
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__()
        self.body = self.make(**kwargs)

    def make(self, **kwargs) -> torch.nn.Module:
        return torch.nn.Identity()


class _Locals(torch.nn.Module):
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__()
        self.args = locals()


class _ShadowsGlobal(torch.nn.Module):  # the name it calls is its own, not the module's _Parent
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__()
        _Parent = _Unused  # noqa: N806
        self.body = _Parent(**kwargs)


class _ParameterShadows(torch.nn.Module):  # a parameter named as a module class
    def __init__(self, width: int = 1, _Parent: type = _Unused, **kwargs) -> None:  # noqa: N803
        super().__init__()
        self.body = _Parent(**kwargs)


class _Three(torch.nn.Module):
    def __init__(self, width: int = 1, depth: int = 2, height: int = 3) -> None:
        super().__init__()


class _PositionalToOther(torch.nn.Module):  # width filled by position, height by name: depth is left
    def __init__(self, size: int = 1, **kwargs) -> None:
        super().__init__()
        self.body = _Three(3, height=2, **kwargs)


class _PositionalToSuper(_Three):  # super() passes self: 3 fills width
    def __init__(self, size: int = 1, **kwargs) -> None:
        super().__init__(3, **kwargs)


_NoSource = type('_NoSource', (), {'__init__': eval('lambda self, width=1, **kwargs: None')})  # noqa: S307


@pytest.mark.parametrize(
    ('arch', 'taken', 'refused', 'meant'),
    [
        (_Unused, ['width'], 'widht', 'width'),
        (_ToSuper, ['width', 'depth'], 'detph', 'depth'),
        (_ToNamedSuper, ['width', 'depth'], 'detph', 'depth'),
        (_ToGrandparent, ['height', 'width', 'depth'], 'detph', 'depth'),
        (_ToOther, ['width', 'depth'], 'widht', 'width'),
        (_Reads, ['width', 'foo', 'bar', 'qux', 'baz'], 'fooo', 'foo'),
        (_Stores, ['width', 'anything'], None, None),
        (_ToUnknown, ['width', 'anything'], None, None),
        (_Locals, ['width', 'anything'], None, None),
        (_NoSource, ['width', 'anything'], None, None),
        (_ShadowsGlobal, ['width', 'anything'], None, None),
        (_ParameterShadows, ['width', '_Parent', 'anything'], None, None),
        (_PositionalToOther, ['size', 'depth'], 'width', 'depth'),
        (_PositionalToOther, ['size', 'depth'], 'height', None),
        (_PositionalToSuper, ['size', 'depth', 'height'], 'width', 'depth'),
    ],
    ids=lambda v: v.__name__.strip('_') if isinstance(v, type) else None,
)
def test_what_an_arch_does_with_its_kwargs_is_read_from_its_source(arch, taken, refused, meant, monkeypatch):
    """A typo is refused when the source shows every key ``**kwargs`` can carry; else anything is taken."""
    from basicsr.utils.registry import ARCH_REGISTRY

    monkeypatch.setitem(ARCH_REGISTRY._obj_map, 'KwargsArch', arch)
    for name in taken:
        check_components({'network_g': {'type': 'KwargsArch', name: 1}})
    if refused:
        accepted, hint = ', '.join(taken), rf"did you mean '{meant}'\? " if meant else ''
        message = rf"^unknown option '{refused}' for KwargsArch \(option network_g\): {hint}it takes {accepted}$"
        with pytest.raises(AesopError, match=message):
            check_components({'network_g': {'type': 'KwargsArch', refused: 1}})
