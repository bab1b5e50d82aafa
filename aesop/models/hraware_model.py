"""HR-aware self-supervised real-world finetuning (Zhang & Yao, "High-Resolution Be Aware!", paper 003).

Two stages, two models:

- :class:`AesopHRAwareReconModel` pretrains the LR reconstruction network (Eq. 5):
  ``L_pt = L_rec(R(s·E_deg(X^s), E_img(Y)), X^s) + λ_pt·Φ_far(Y)`` on synthetic pairs (HR Y from
  ``AesopRealESRGANDataset``, LR X^s from the Real-ESRGAN degradation), ``s = n + (1 − HQI(X^s, Y))``.
- :class:`AesopHRAwareFinetuneModel` finetunes an SR model M on a target domain's LR images (Eq. 6):
  ``L_ft = L_rec(R(s·E_deg(X), E_img(M(X))), X) + λ_ft·Φ_far(M(X))``, ``s = n + HQI(X, M(X))``.
  Only M learns: the reconstruction network and CLIP are frozen, in eval mode, never in an
  optimiser, never saved with M, not wrapped in DDP.

Options (``train``): ``rec_opt`` (``AesopLRReconstructionLoss``), ``far_opt`` (``AesopFeatureAlignmentLoss``; none:
no FAR), ``controller`` (none: s = 1, LWay's baseline; ``form: inverse``: Tab. 4's inverted finetuning) and, in
finetuning, ``anchor_opt`` (this project's extension, off by default, see the class).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Literal

import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.utils import get_root_logger, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY
from pydantic import Field

from aesop.data.degradations import RealESRGANDegradation
from aesop.errors import AesopError
from aesop.losses.hraware_loss import controller, hqi
from aesop.metrics.metrics import lpips_net
from aesop.models.base import AesopModel
from aesop.schema import Number, Section, declare_options
from aesop.utils import random_backbones
from aesop.weights import file_digest, freeze, load_weights


class Controller(Section):
    """``train.controller`` of HR-aware finetuning (paper 003, Eq. 8); absent: s = 1."""

    form: Literal['finetune', 'pretrain', 'inverse'] | None = None
    """Default: the model's stage."""
    noise: Literal['vector', 'scalar'] = 'vector'
    """N per image: a C_d-vector, one value per channel of e_d (Sec. 4.3: "the vector n is a C_d-dimensional
    random vector and n ∼ N(0, I)"), or one number scaling all of e_d alike (scalar: this project's variant)."""
    noise_std: Number = Field(default=1.0, ge=0)
    """N's standard deviation (the paper's n ∼ N(0, I): 1)."""
    redraw: bool = True
    """N drawn every step for every image; false: one n for the whole run."""
    grad: bool = False
    """S carries HQI's gradient to M (finetuning)."""


declare_options(
    'train', 'AesopHRAwareModel', 'HR-aware finetuning (paper 003).', {'controller': (Controller, 'S of Eq. 8.')}
)
declare_options(
    'train',
    'AesopHRAwareReconModel',
    'Pretraining of the LR reconstruction network (paper 003, Eq. 5).',
    {
        'degrade': (
            bool,
            "`true`: each training pair's LR is made from its HR by Real-ESRGAN's degradation (the top-level "
            'options `resize_prob` …, needed then; paper 003 Sec. 5.1: "synthesize LR counterparts through the '
            'second-order degradation pipeline"); `false`: the training dataset\'s own LR images (the demo).',
            {'default': True},
        )
    },
)

__all__ = ['AesopHRAwareFinetuneModel', 'AesopHRAwareModel', 'AesopHRAwareReconModel', 'Controller']


class AesopHRAwareModel(AesopModel):
    """What both stages share: the frozen CLIP encoder, L_rec, FAR, the controller; basicsr's EMA and the
    train step (``train.amp`` …) are the base's."""

    LOSS_OPTIONS = ('rec_opt', 'far_opt')
    CONTROLLER_FORM = 'finetune'  # the stage's form of Eq. 8

    def __init__(self, opt):
        self.control: dict | None = None  # train.controller, with its form and channels (None: s = 1)
        self.lpips: torch.nn.Module | None = None  # HQI's LPIPS, with a controller
        super().__init__(opt)

    def init_training_settings(self):
        self.net_g.train()
        train_opt = self.opt['train']
        self.setup_ema()
        if not train_opt.get('rec_opt'):
            raise AesopError(f'{type(self).__name__} needs train.rec_opt (L_rec, an AesopLRReconstructionLoss)')
        self.cri_rec = build_loss(train_opt['rec_opt']).to(self.device)
        self.cri_far = build_loss(train_opt['far_opt']).to(self.device) if train_opt.get('far_opt') else None
        clip = build_network(copy.deepcopy(self.opt['network_clip'])) if self.cri_far else None
        self.clip = freeze(clip.to(self.device)) if clip is not None else None
        control = train_opt.get('controller')
        self.control = None if control is None else dict(control)  # validated, defaults written: the schema's
        if self.control is not None:
            self.control['form'] = self.control.get('form') or self.CONTROLLER_FORM
            self.control['channels'] = self.reconstructor().deg_dim if self.control['noise'] == 'vector' else 1
            if not self.control['redraw']:  # one n for the whole run, drawn from the seeded generator
                noise = torch.randn(1, self.control['channels']).to(self.device)
                self.fixed_noise = self.control['noise_std'] * noise
        self.lpips = lpips_net('alex', self.device, random_backbones()) if self.control else None
        self.setup_optimizers()
        self.setup_schedulers()
        self.setup_train_step()

    def optimize_parameters(self, current_iter):
        """One step of Eq. 5 (pretraining) or Eq. 6 (finetuning) over the micro-batches of ``train.accumulate``."""
        self.end_step(*self.step_g(self.micro_step))

    def reconstructor(self) -> torch.nn.Module:
        """The LR reconstruction network whose e_d the controller scales (here: the one being trained)."""
        return self.get_bare_model(self.net_g)

    def controller_value(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor | float:
        """s of Eq. 8 for a batch, (N, C_d) (``noise: vector``, the paper's) or (N, 1) (``noise: scalar``);
        1 without ``train.controller`` (:class:`Controller`)."""
        if self.control is None:
            return 1.0
        with torch.set_grad_enabled(bool(self.control['grad']) and torch.is_grad_enabled()):
            quality = hqi(lr, hr.clamp(0, 1), self.lpips)
        form, channels = self.control['form'], self.control['channels']
        if self.control['redraw']:
            return controller(quality, form=form, noise_std=self.control['noise_std'], channels=channels)
        return controller(quality, form=form, channels=channels) + self.fixed_noise

    def with_far(self, loss_dict: OrderedDict, e_im: torch.Tensor, hr: torch.Tensor) -> OrderedDict:
        """``loss_dict`` with ``l_far``, Φ_far(hr) (Eq. 9) from E_img's features ``e_im`` and the reconstruction
        network's T_a, T_m (without ``train.far_opt``, unchanged)."""
        if self.cri_far is not None:
            recon = self.reconstructor()
            loss_dict['l_far'] = self.cri_far(e_im, self.clip(hr.clamp(0, 1)), recon.t_avg, recon.t_max)
        return loss_dict


@MODEL_REGISTRY.register()
class AesopHRAwareReconModel(AesopHRAwareModel):
    """Pretraining of the LR reconstruction network (``network_g``: ``AesopHRAwareReconstructor``), Eq. 5.

    Training batches come from ``AesopRealESRGANDataset`` and are degraded on the model's device
    (:class:`~aesop.data.RealESRGANDegradation`, the top-level options of the real-world model); with
    ``train.degrade: false`` a paired dataset's LR images are the synthetic LR (e.g. the demo's).
    Validation on LR/HR pairs reports each ``val.metrics`` entry on X̂ vs the LR image (s from the
    controller without noise).
    """

    CONTROLLER_FORM = 'pretrain'

    @classmethod
    def check_options(cls, opt: dict) -> None:
        if opt.get('is_train', True) and opt['train']['degrade']:
            RealESRGANDegradation.from_options(opt)

    def __init__(self, opt):
        super().__init__(opt)
        make = self.is_train and opt['train']['degrade']
        self.degradation = RealESRGANDegradation.from_options(opt).to(self.device) if make else None

    def feed_data(self, data):
        if self.degradation is not None and 'kernel1' in data:
            kernels = (data[k].to(self.device) for k in ('kernel1', 'kernel2', 'sinc_kernel'))
            self.lq, self.gt = self.degradation.degrade(data['gt'].to(self.device), *kernels)  # no USM target
            if self.degradation.queue is not None:
                self.lq, self.gt = self.degradation.queue(self.lq, self.gt)
        else:
            super().feed_data(data)

    def micro_step(self) -> tuple:
        """Eq. 5 on one micro-batch."""
        s = self.controller_value(self.lq, self.gt)
        with self.train_step.autocast():
            output, e_im = self.net_g(self.lq, self.gt, s, return_features=True)
        self.output, e_im = output.float(), e_im.float()  # losses in fp32
        loss_dict = self.with_far(OrderedDict(l_rec=self.cri_rec(self.output, self.lq)), e_im, self.gt)
        return sum(loss_dict.values()), loss_dict

    def probe_input(self):
        return None  # G takes (LR, HR): the weights' check is enough

    def test(self):
        net = self.eval_net()
        net.eval()
        with torch.no_grad():  # s without noise (test.py: no training settings, s = 1)
            s = controller(hqi(self.lq, self.gt, self.lpips), form=self.control['form']) if self.control else 1.0
            self.output = net(self.lq, self.gt, s)
        self.net_g.train()

    def validation_pairs(self):
        yield '', tensor2img(self.output), tensor2img(self.lq), None  # X̂ vs X


@MODEL_REGISTRY.register()
class AesopHRAwareFinetuneModel(AesopHRAwareModel):
    """Finetuning of an SR model M (``network_g``, from ``path.pretrain_network_g``) on LR images, Eq. 6.

    The frozen LR reconstruction network is ``network_recon`` with ``path.pretrain_network_recon``
    (``param_key_recon``, default ``params_ema``); CLIP is ``network_clip``. Training batches are
    ``AesopLRPatchDataset`` patches (``lq``); validation is the usual SR validation on pairs.

    ``train.anchor_opt`` (this project's extension, not in the paper; off by default): an
    ``AesopLoss`` between ψ(M(X)) and ψ(M₀(X)), M₀ the frozen starting model, to keep the fidelity
    content of M fixed while FAR and the controller change the perceptual part.
    """

    LOSS_OPTIONS = ('rec_opt', 'far_opt', 'anchor_opt')

    def init_training_settings(self):
        path = self.opt['path']
        if not path.get('pretrain_network_recon'):
            raise AesopError(
                'AesopHRAwareFinetuneModel needs path.pretrain_network_recon (the pretrained R, E_deg, E_img)'
            )
        recon, file = build_network(copy.deepcopy(self.opt['network_recon'])), path['pretrain_network_recon']
        key = path.get('param_key_recon', 'params_ema')
        load_weights(recon, file, param_key=key, strict=True, option='path.pretrain_network_recon')
        self.recon = freeze(recon.to(self.device))
        self.recon_file = {'path': file, 'sha256': file_digest(file), 'what': 'the reconstruction network'}
        super().init_training_settings()
        anchor = self.opt['train'].get('anchor_opt')
        self.cri_anchor = build_loss(anchor).to(self.device) if anchor else None
        self.net_start = freeze(copy.deepcopy(self.get_bare_model(self.net_g))) if anchor else None
        get_root_logger().info('HR-aware finetuning: only network_g learns; R, E_deg, E_img and CLIP are frozen')

    def reconstructor(self) -> torch.nn.Module:
        """The frozen LR reconstruction network."""
        return self.recon

    def frozen_autoencoders(self) -> dict[str, dict[str, str]]:
        """The frozen files a resumed run must find unchanged: R, E_deg, E_img and the anchor's ψ."""
        frozen = {'network_recon': self.recon_file}
        if self.cri_anchor is not None:
            frozen['anchor_opt'] = {'path': self.cri_anchor.pretrained, 'sha256': self.cri_anchor.digest}
        return frozen

    def micro_step(self) -> tuple:
        """Eq. 6 on one micro-batch."""
        with self.train_step.autocast():
            output = self.net_g(self.lq)
        self.output = output.float()  # R, CLIP and the losses in fp32
        s = self.controller_value(self.lq, self.output)
        e_im = self.recon.image_features(self.output)  # frozen weights: the gradient reaches M only
        with torch.no_grad():
            e_d = self.recon.degradation(self.lq)
        reconstruction = self.recon.reconstruct(self.recon.style(s, e_d), e_im)
        loss_dict = self.with_far(OrderedDict(l_rec=self.cri_rec(reconstruction, self.lq)), e_im, self.output)
        if self.cri_anchor is not None:
            with torch.no_grad():
                start = self.net_start(self.lq)
            loss_dict['l_anchor'] = self.cri_anchor(self.output, start)
        return sum(loss_dict.values()), loss_dict
