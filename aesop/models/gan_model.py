"""One GAN SR model for ESRGAN, LDL and AESOP (Eq. 3 and Eq. 9): they differ only in options."""

from __future__ import annotations

from collections import OrderedDict

import torch
from basicsr.losses import build_loss
from basicsr.losses.loss_util import get_refined_artifact_map
from basicsr.models.srgan_model import SRGANModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from torch import nn

from aesop.errors import AesopError
from aesop.models.base import AesopModel
from aesop.models.sync_bn import sync_batch_norms
from aesop.schema import declare_options

declare_options(
    'train',
    'AesopGANModel',
    'The GAN models (bicubic and real-world).',
    {
        'relativistic_gan': (
            bool,
            "ESRGAN's relativistic-average GAN (true) or the standard one (false, Real-ESRGAN's); unset: the model's "
            '(AesopGANModel: true, AesopRealGANModel: false).',
        ),
        'sync_bn_d': (
            bool,
            "Under DDP, D's batch norms normalise with the statistics of all processes' batches (torch's "
            "SyncBatchNorm; on the CPU this package's CPUSyncBatchNorm), as the release's VGGStyleDiscriminator256; "
            "false: per process (basicsr's). One process: nothing to synchronise.",
            {'default': False},
        ),
    },
)

# Fidelity terms: option key in ``train`` → loss-dict key. Any subset may be set.
FIDELITY_TERMS = {
    'pixel_opt': 'l_g_pix',  # L1 (ESRGAN; LDL with weight 0.01)
    'aesop_opt': 'l_g_aesop',  # L_AESOP, Eq. 8 (weight 1, Eq. 9)
    'lr_opt': 'l_g_lr',  # LR-consistency (Park 2021)
    'lowpass_opt': 'l_g_lowpass',  # low-pass L1 (Tab. 5(b))
}
# Which HR image a fidelity term compares with (:meth:`AesopGANModel.target`): L_AESOP has its own
# switch in the real-world model (the release compares ψ(SR) with ψ(GT), not ψ(USM(GT))).
FIDELITY_USE = {'l_g_aesop': 'aesop'}
ARTIFACT_WINDOW = 7  # LDL's local-variance window


@MODEL_REGISTRY.register()
class AesopSRModel(AesopModel):
    """BasicSR's SRModel plus window padding and the metric table: trains/tests any SR network with basicsr's
    step (which reads none of the step options)."""

    READS_STEP_OPTIONS = False


@MODEL_REGISTRY.register()
class AesopGANModel(AesopModel, SRGANModel):
    """GAN SR training: L = Σ fidelity + λ_percep L_percep + λ_adv L_adv + λ_art L_art.

    - fidelity terms (:data:`FIDELITY_TERMS`): ``pixel_opt`` for ESRGAN/LDL (Eq. 3),
      ``aesop_opt`` (``AesopLoss``) for AESOP (Eq. 9), or the baselines ``lr_opt``/``lowpass_opt``;
    - ``perceptual_opt``: basicsr's VGG19 ``PerceptualLoss``;
    - ``gan_opt``: basicsr's ``GANLoss`` in ESRGAN's relativistic-average form
      (``train.relativistic_gan: false`` for the standard form of Real-ESRGAN);
    - ``artifacts_opt``: LDL's artifact loss, ``L1(M ⊙ SR, M ⊙ HR)`` with ``M`` basicsr's
      ``get_refined_artifact_map`` from the residuals of G and its EMA copy (window 7); needs
      ``ema_decay > 0`` (0.999 in the paper);
    - ``net_d_iters`` / ``net_d_init_iters`` as in BasicSR; D loads with ``path.param_key_d``;
    - ``train.sync_bn_d``: under DDP, D's batch norms see all processes' batches (:meth:`model_to_device`).

    Work that needs no gradient runs without a graph (the EMA forward, D on the real image in the G step, D on the
    fake image in the D step's relativistic mean); losses in fp32. basicsr's ``SRGANModel`` builds, steps and saves D.
    """

    LOSS_OPTIONS = (*FIDELITY_TERMS, 'perceptual_opt', 'gan_opt', 'artifacts_opt')
    OPTIMIZERS = {'optim_g': 'net_g', 'optim_d': 'net_d'}  # SRGANModel's: G's, then D's
    RELATIVISTIC = True  # the GAN form when ``train.relativistic_gan`` is not set

    def init_training_settings(self):
        train_opt = self.opt['train']
        relativistic = train_opt.get('relativistic_gan')  # a boolean or ~ (the schema)
        self.relativistic = self.RELATIVISTIC if relativistic is None else relativistic
        if not train_opt.get('gan_opt'):
            raise AesopError(f'{type(self).__name__} needs train.gan_opt (the adversarial loss)')
        super().init_training_settings()
        self.cri_fidelity = {
            key: build_loss(train_opt[opt_key]).to(self.device)
            for opt_key, key in FIDELITY_TERMS.items()
            if train_opt.get(opt_key)
        }
        self.cri_pix = None  # built by SRGANModel; it is the 'pixel_opt' fidelity term above
        for key, cri in self.cri_fidelity.items():
            if getattr(cri, 'reduction', 'mean') == 'none':
                raise AesopError(f'{key}: reduction none gives a loss map; training needs mean or sum')
        artifacts_opt = train_opt.get('artifacts_opt')
        self.cri_artifacts = build_loss(artifacts_opt).to(self.device) if artifacts_opt else None
        if self.cri_artifacts is not None and self.ema_decay <= 0:
            raise AesopError('train.artifacts_opt (LDL) needs the EMA generator: set train.ema_decay, e.g. 0.999')
        if self.ema_decay > 0:
            for param in self.net_g_ema.parameters():
                param.requires_grad_(False)
        losses = [m for m in (self.cri_perceptual, self.cri_artifacts, *self.cri_fidelity.values()) if m is not None]
        self.setup_train_step(*losses)

    def networks(self):
        return {**super().networks(), 'net_d': self.net_d} if self.is_train else super().networks()

    def model_to_device(self, net: nn.Module) -> nn.Module:
        """AesopModel's; D (which basicsr's ``SRGANModel`` builds as ``self.net_d`` and passes here) has its batch
        norms synchronised first under DDP when ``train.sync_bn_d`` (:func:`~aesop.models.sync_bn.sync_batch_norms`).
        Without DDP it keeps them: one process has nothing to synchronise (DataParallel's replicas, basicsr's
        ``num_gpu > 1`` without a launcher, keep per-GPU statistics: a synchronised batch norm needs DDP)."""
        if self.is_train and net is getattr(self, 'net_d', None) and self.opt['train']['sync_bn_d']:
            if self.opt['dist']:
                net = sync_batch_norms(net, device=self.device)
                get_root_logger().info(
                    f"train.sync_bn_d: D's batch norms synchronise over the {self.opt['world_size']} processes"
                )
            else:
                get_root_logger().info("train.sync_bn_d: no DDP, D's batch norms stay per process (nothing to sync)")
        return super().model_to_device(net)

    def frozen_autoencoders(self):
        """ψ of each fidelity term with a frozen auto-encoder (L_AESOP)."""
        return {
            key: {'path': cri.pretrained, 'sha256': cri.digest}
            for key, cri in self.cri_fidelity.items()
            if hasattr(cri, 'digest')
        }

    def discriminate(self, img: torch.Tensor) -> torch.Tensor:
        """D's score, (N, 1) (VGG-style) or (N, 1, H, W) (U-Net), on an NCHW input (see ``channels_last``)."""
        return self.net_d(img.contiguous())

    def target(self, use: str) -> torch.Tensor:
        """The HR image ``use`` (``'fidelity'``, ``'aesop'``, ``'perceptual'``, ``'gan'``) compares with: the GT."""
        return self.gt

    def generator_losses(self) -> tuple[torch.Tensor, OrderedDict]:
        """All G losses for the current batch (``self.output`` has a graph)."""
        losses = OrderedDict()
        output = self.output.float()
        with self.train_step.autocast():
            for key, cri in self.cri_fidelity.items():
                use = FIDELITY_USE.get(key, 'fidelity')
                target = self.lq if getattr(cri, 'target', 'hr') == 'lq' else self.target(use)
                losses[key] = cri(output, target)
            if self.cri_artifacts is not None:
                with torch.no_grad():
                    output_ema = self.net_g_ema(self.lq).float()
            if self.cri_perceptual is not None:
                terms = zip(('l_g_percep', 'l_g_style'), self.cri_perceptual(output, self.target('perceptual')))
                losses.update((key, loss) for key, loss in terms if loss is not None)
            if self.relativistic:  # real before fake, as the release and basicsr: D's BatchNorm statistics
                with torch.no_grad():
                    real_d_pred = self.discriminate(self.target('gan')).float()
            fake_g_pred = self.discriminate(self.output).float()
        if self.cri_artifacts is not None:  # LDL's map compares with the GT itself, as basicsr
            weight = get_refined_artifact_map(self.gt, output, output_ema, ARTIFACT_WINDOW)
            losses['l_g_artifacts'] = self.cri_artifacts(weight * output, weight * self.gt)
        if self.relativistic:  # ESRGAN's relativistic average GAN
            l_g_real = self.cri_gan(real_d_pred - torch.mean(fake_g_pred), False, is_disc=False)
            l_g_fake = self.cri_gan(fake_g_pred - torch.mean(real_d_pred), True, is_disc=False)
            losses['l_g_gan'] = (l_g_real + l_g_fake) / 2
        else:  # the standard GAN of Real-ESRGAN
            losses['l_g_gan'] = self.cri_gan(fake_g_pred, True, is_disc=False)
        return sum(loss.float() for loss in losses.values()), losses

    def discriminator_losses(self, real: torch.Tensor, fake: torch.Tensor) -> OrderedDict:
        """D's losses on ``real`` and the detached ``fake``, each back-propagated: relativistic (ESRGAN), each score
        against the other's mean, halved; standard (Real-ESRGAN), real → 1, fake → 0."""
        with self.train_step.autocast():
            if self.relativistic:
                with torch.no_grad():
                    fake_d_mean = torch.mean(self.discriminate(fake).float())
            real_d_pred = self.discriminate(real).float()
        if self.relativistic:
            l_d_real = self.cri_gan(real_d_pred - fake_d_mean, True, is_disc=True) * 0.5
        else:
            l_d_real = self.cri_gan(real_d_pred, True, is_disc=True)
        self.train_step.backward(l_d_real, self.optimizer_d)
        with self.train_step.autocast():
            fake_d_pred = self.discriminate(fake).float()
        if self.relativistic:
            l_d_fake = self.cri_gan(fake_d_pred - torch.mean(real_d_pred.detach()), False, is_disc=True) * 0.5
        else:
            l_d_fake = self.cri_gan(fake_d_pred, False, is_disc=True)
        self.train_step.backward(l_d_fake, self.optimizer_d)
        return OrderedDict(
            l_d_real=l_d_real,
            l_d_fake=l_d_fake,
            out_d_real=torch.mean(real_d_pred.detach()),
            out_d_fake=torch.mean(fake_d_pred.detach()),
        )

    def optimize_parameters(self, current_iter):
        """G's step, then D's, each over the micro-batches of ``train.accumulate`` (one, by default)."""
        for p in self.net_d.parameters():
            p.requires_grad = False
        g_step = current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters
        logs, outputs = self.step_g(lambda: self.micro_step(g_step), step=g_step)
        for p in self.net_d.parameters():
            p.requires_grad = True
        self.optimizer_d.zero_grad()
        for i in self.micro_batches():
            logs[i].update(self.discriminator_losses(self.target('gan'), outputs[i]))
        self.train_step.step(self.optimizer_d, 'd')
        self.end_step(logs, outputs)

    def micro_step(self, g_step: bool) -> tuple:
        """G's forward on one micro-batch, and its losses when G steps (D-only iterations need no graph)."""
        with torch.set_grad_enabled(g_step), self.train_step.autocast():
            self.output = self.net_g(self.lq)
        if self.output.shape[-2:] != self.gt.shape[-2:]:
            raise AesopError(
                f'network_g ({self.opt["network_g"]["type"]}) maps {tuple(self.lq.shape[-2:])} to '
                f'{tuple(self.output.shape[-2:])} but the GT is {tuple(self.gt.shape[-2:])}: check its '
                f'scale/upscale/upsampler options (scale is {self.opt["scale"]})'
            )
        return self.generator_losses() if g_step else (None, OrderedDict())
