"""The option files of options/: each one parsed, its networks and losses built (tiny overrides), its model created;
the paper's files exist, fit the schema, and the earlier stages and published files they name are accounted for."""

from __future__ import annotations

import re
from collections.abc import Iterator
from copy import deepcopy
from pathlib import Path

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models import build_model
from conftest import REPO, load_yaml
from test_options import load

from aesop.options import load_option_file, load_options
from aesop.schema import apply_schema

OPTION_FILES = sorted((REPO / 'options').rglob('*.yml'))


TINY = {'num_feat': 16, 'num_block': 1, 'num_grow_ch': 8, 'embed_dim': 12, 'depths': [1], 'num_heads': [2], 'nf': 8}


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
    finetune_hraware_realesrgan_ntire20 test_hraware test_hraware_swinir test_hraware_ntire20""".split()


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


def test_every_option_file_of_the_project_fits_the_schema():
    files = sorted((REPO / 'options').rglob('*.yml'))
    assert len(files) > 20
    for path in files:
        opt = load_option_file(path)
        apply_schema(opt)  # raises with the file's first problem


def test_every_256_px_discriminator_synchronises_its_batch_norms():
    """The release's ``VGGStyleDiscriminator256`` (its ``basicsr/archs/discriminator_arch.py``) uses
    ``nn.SyncBatchNorm``: every option file with a 256-px D sets ``train.sync_bn_d`` (the schema's default, false,
    is basicsr's per-process batch norm)."""
    files = [load_option_file(path) for path in OPTION_FILES]
    d256 = [
        opt
        for opt in files
        if (opt.get('network_d') or {}).get('input_size') == 256
        or (opt.get('network_d') or {}).get('type') == 'VGGStyleDiscriminator256'
    ]
    assert len(d256) >= 4
    assert [opt['name'] for opt in d256 if (opt.get('train') or {}).get('sync_bn_d') is not True] == []


def test_each_earlier_stage_named_by_an_option_file_is_written_by_one():
    """``experiments/<name>/models/…`` in an option file (the demo's too) names the run of one of them (what the
    error says); a demo's run is one of the demo's."""
    from aesop.options import option_file_named

    named: dict[str, str] = {}
    for path in [*(REPO / 'options').glob('*.yml'), *(REPO / 'options' / 'demo').glob('*.yml')]:
        for name in set(re.findall(r'experiments/(\w+)/models/', path.read_text())) - {'pretrained_models'}:
            named[name] = path.parent.name
    assert {'demo', 'options'} == set(named.values())
    made_by = {name: option_file_named(name) for name in named}
    assert {name for name, file in made_by.items() if file is None} == set()
    assert all(file.startswith('options/demo/') == (named[name] == 'demo') for name, file in made_by.items())


def test_each_published_file_an_option_file_names_says_where_to_get_it():
    """``experiments/pretrained_models/<file>`` in an option file (the demo's too) is a published file whose address
    the missing-file error gives (:data:`aesop.weights.PUBLISHED_WEIGHTS`, CLIP's), not "edit the option file"."""
    from aesop.options import where_weights_come_from

    def strings(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            for value in node:
                yield from strings(value)
        elif isinstance(node, str):
            yield node

    named = {
        Path(value).name
        for path in (REPO / 'options').rglob('*.yml')
        for value in strings(load_yaml(path))
        if 'experiments/pretrained_models/' in value
    }
    assert {'MSRResNet_x4.pth', 'open_clip_model.safetensors'} <= named
    unexplained = {name for name in named if not where_weights_come_from(Path(name)).startswith('download it from ')}
    assert unexplained == set()


def header(path: Path) -> str:
    """The option file's leading comment block, its lines joined (``#`` and indentation dropped)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith('#'):
            break
        lines.append(line.lstrip('#').strip())
    return ' '.join(lines)


RUN_LINE = re.compile(r'-opt (\S+\.yml)')
LOSS_SUM = re.compile(r'L_(LR|HR) \(Eq\. \d[^)]*\)(?: \+ L_(LR|HR) \(Eq\. \d[^)]*\))*')


@pytest.mark.parametrize('path', OPTION_FILES, ids=lambda p: p.relative_to(REPO / 'options').as_posix())
def test_the_header_runs_that_file_and_its_claims_match_its_keys(path):
    """A header's run line (``-opt options/….yml``) names that file, so a user copying it runs what they read;
    every file of options/ (the demo's are run by ``make demo``) has one. Where a test can tell, an AE file's
    header matches its keys: ``D = <arch>`` is ``network_g.decoder.type``, the losses it gives (``L_AE = …``, else
    its first ``L_LR (Eq. 4) + L_HR (Eq. 5)``-style sum or single term) have L_LR exactly when
    ``train.pixel_at_LR_opt`` weighs > 0, and it says ``encoder: bicubic`` exactly when ``network_g.encoder`` is."""
    text, name = header(path), path.relative_to(REPO).as_posix()
    runs = RUN_LINE.findall(text)
    assert runs or path.parent != REPO / 'options', f'{name}: no run line (-opt {name}) in its header'
    assert set(runs) <= {name}, f'{name}: its header runs {runs}'
    opt = load_yaml(path)
    net = opt.get('network_g') or {}
    if net.get('type') != 'AesopAutoEncoder' or 'train' not in opt:
        return
    decoders = re.findall(r'\bD = (\w+)', text)
    assert set(decoders) <= {net['decoder']['type']}, f'{name}: header says D = {decoders}'
    bicubic = net.get('encoder', 'learned') == 'bicubic'
    assert ('encoder: bicubic' in text) == bicubic, f'{name}: network_g.encoder is {net.get("encoder", "learned")}'
    claim = re.search(r'L_AE = ' + LOSS_SUM.pattern, text) or LOSS_SUM.search(text)
    assert claim, f'{name}: its header gives no loss sum'
    lr_opt = opt['train'].get('pixel_at_LR_opt') or {}
    lr_on = lr_opt.get('loss_weight', 0) > 0
    assert ('L_LR' in claim.group(0)) == lr_on, f'{name}: header says {claim.group(0)!r}, pixel_at_LR_opt {lr_opt}'
