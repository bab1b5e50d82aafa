"""Auto-encoder pretraining (Sec. 4.1): L_AE = L_LR (Eq. 4) + L_HR (Eq. 5)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from basicsr.losses import build_loss
from basicsr.utils import tensor2img
from basicsr.utils.registry import MODEL_REGISTRY

from aesop.models.base import AesopModel
from aesop.schema import declare_options
from aesop.weights import load_weights

declare_options(
    'train',
    'AesopAEModel',
    "The auto-encoder's pretraining (Eq. 4–5).",
    {'freeze_decoder': (int, 'D frozen for iterations ≤ N (0: never; > total_iter: always).', {'default': 0, 'ge': 0})},
)


@MODEL_REGISTRY.register()
class AesopAEModel(AesopModel):
    """Pretrains ψ = D∘E (``network_g``, e.g. ``AesopAutoEncoder``) on HR images.

    Data: ``gt`` is the HR input and the target of D∘E; ``lq`` (the bicubic LR) is the target
    of the bottleneck E(HR). Losses: ``train.pixel_opt`` is L_HR (Eq. 5), ``train.pixel_at_LR_opt``
    is L_LR (Eq. 4); leave the latter out (or weight 0) for ablation Tab. 3(b).

    ``path.pretrain_network_decoder`` (``param_key_decoder``, ``strict_load_decoder``): PSNR-oriented weights for
    D, unless ``pretrain_network_g`` loads the whole AE (e.g. on resume).

    Validation reports each ``val.metrics`` entry on the reconstruction ψ(HR) vs HR (its name)
    and on the LR estimate E(HR) vs LR (its name + ``_lr``, border ``crop_border // scale``).
    """

    LOSS_OPTIONS = ('pixel_opt', 'pixel_at_LR_opt')  # a perceptual_opt would be built and never used: refused

    def __init__(self, opt):
        self.freeze_decoder_iters = opt['train']['freeze_decoder'] if opt['is_train'] else 0
        if opt['is_train'] and opt['dist'] and self.freeze_decoder_iters > 0:
            opt['find_unused_parameters'] = True  # D gets no gradient while frozen
        super().__init__(opt)

    @property
    def decoder(self) -> torch.nn.Module:
        return self.get_bare_model(self.net_g).decoder

    def init_training_settings(self):
        path = self.opt['path']
        if path.get('pretrain_network_decoder') and not path.get('pretrain_network_g'):
            key, strict = path.get('param_key_decoder', 'params'), path.get('strict_load_decoder', True)
            file, option = path['pretrain_network_decoder'], 'path.pretrain_network_decoder'
            load_weights(self.decoder, file, param_key=key, strict=strict, fallback=True, option=option)
        super().init_training_settings()  # EMA copy, L_HR, optimiser over all of ψ, scheduler
        lr_opt = self.opt['train'].get('pixel_at_LR_opt')
        self.cri_pix_at_lr = build_loss(lr_opt).to(self.device) if lr_opt else None
        self.decoder_frozen = None
        self.set_decoder_frozen(self.freeze_decoder_iters > 0)
        self.setup_train_step()

    def set_decoder_frozen(self, frozen: bool) -> None:
        """Freeze (or unfreeze) D; the optimiser was built over all of ψ, so D resumes later."""
        if frozen != self.decoder_frozen:
            for param in self.decoder.parameters():
                param.requires_grad_(not frozen)
            self.decoder_frozen = frozen

    def feed_data(self, data):
        if 'gt' in data:
            self.gt = data['gt'].to(self.device)
            if 'lq' in data:
                self.lq = data['lq'].to(self.device)
        else:  # SingleImageDataset: the HR images come as 'lq'
            self.gt = data['lq'].to(self.device)
        self.inputs_to_memory_format()

    def optimize_parameters(self, current_iter):
        self.set_decoder_frozen(current_iter <= self.freeze_decoder_iters)  # also right after a resume
        self.end_step(*self.step_g(self.micro_step))

    def micro_step(self) -> tuple:
        with self.train_step.autocast():
            output, bottleneck = self.net_g(self.gt, return_bottleneck=True)
        self.output, self.bottleneck = output.float(), bottleneck.float()  # losses in fp32
        loss_dict = OrderedDict()
        if self.cri_pix:
            loss_dict['l_pix'] = self.cri_pix(self.output, self.gt)  # Eq. 5
        if self.cri_pix_at_lr:
            loss_dict['l_pix_at_LR'] = self.cri_pix_at_lr(self.bottleneck, self.lq)  # Eq. 4
        return sum(loss_dict.values()), loss_dict

    def probe_input(self):
        """ψ's input: one HR image of the last training batch (see :meth:`AesopModel.save`)."""
        gt = self.batch().get('gt')
        return None if gt is None else gt[:1]

    def test(self):
        net = self.eval_net()
        was_training = net.training
        net.eval()
        with torch.no_grad():
            self.output, self.bottleneck = net(self.gt, return_bottleneck=True)
        net.train(was_training)

    def validation_pairs(self):
        """ψ(HR) vs HR, and (tag ``_lr``) the LR estimate E(HR) vs the LR image when there is one."""
        lq = self.batch().get('lq')
        lq = None if lq is None else tensor2img(lq)
        yield '', tensor2img(self.output), tensor2img(self.gt), lq
        yield '_lr', tensor2img(self.bottleneck), lq, None

    def metric_options(self, metric_opt: dict, tag: str) -> dict:
        """At LR size the border shrinks by the scale."""
        if not tag:
            return metric_opt
        return {**metric_opt, 'crop_border': metric_opt.get('crop_border', 0) // self.get_bare_model(self.net_g).scale}
