"""Real-world GAN SR (App. B): the GAN model of Eq. 3 / Eq. 9 on Real-ESRGAN's synthetic pairs."""

from __future__ import annotations

from basicsr.utils.registry import MODEL_REGISTRY

from aesop.data.degradations import PairQueue, RealESRGANDegradation
from aesop.models.gan_model import AesopGANModel
from aesop.schema import declare_options

#: Which GT each loss compares with: option key → (use, default; basicsr's ``train_realesrgan_x4plus.yml``'s). L_AESOP
#: has its own switch, false as in the AESOP release (``l1_gt_usm`` only sharpens L1's target).
USM_SWITCHES = {
    'l1_gt_usm': ('fidelity', True),
    'aesop_gt_usm': ('aesop', False),
    'percep_gt_usm': ('perceptual', True),
    'gan_gt_usm': ('gan', False),
}
_TARGETS = {
    'fidelity': 'Target of the pixel L1 and the other fidelity terms',
    'aesop': 'Target of L_AESOP',
    'perceptual': 'Target of the perceptual loss',
    'gan': "D's real input",
}
declare_options(
    '',
    'AesopRealGANModel',
    "Which GT a real-world model's losses compare with (basicsr's RealESRGANModel reads l1/percep/gan_gt_usm alike).",
    {
        key: (bool, f'{_TARGETS[use]}: the USM-sharpened GT (true) or the GT; unset: `{str(default).lower()}`.')
        for key, (use, default) in USM_SWITCHES.items()
    },
)


@MODEL_REGISTRY.register()
class AesopRealGANModel(AesopGANModel):
    """:class:`AesopGANModel` trained on Real-ESRGAN's second-order degradation (AESOP App. B).

    Training batches from basicsr's ``RealESRGANDataset`` (``gt`` and the blur kernels) become LR/GT pairs on the
    model's device (:class:`~aesop.data.RealESRGANDegradation`, with basicsr's ``RealESRGANModel``'s top-level
    options); validation and test data is used as is. As Real-ESRGAN / LDL's real-world recipe, the GAN is the
    standard one and the losses compare with the USM-sharpened GT as :data:`USM_SWITCHES` say (LDL's artifact map
    always uses the GT itself).
    """

    RELATIVISTIC = False

    @classmethod
    def check_options(cls, opt: dict) -> None:
        """Validate the degradation and pool options at start-up (one-line errors)."""
        if not opt.get('is_train', True):
            return
        degradation = RealESRGANDegradation.from_options(opt)
        batch = ((opt.get('datasets') or {}).get('train') or {}).get('batch_size_per_gpu')
        if degradation.queue_size and isinstance(batch, int):
            PairQueue.check_batch(degradation.queue_size, batch)

    def __init__(self, opt):
        super().__init__(opt)
        self.degradation = RealESRGANDegradation.from_options(opt).to(self.device) if self.is_train else None
        self.use_usm = {  # each a boolean or ~ (the schema)
            use: default if opt.get(key) is None else opt[key] for key, (use, default) in USM_SWITCHES.items()
        }

    def feed_data(self, data):
        if self.degradation is None or 'kernel1' not in data:  # validation / test: the data's own pairs
            return super().feed_data(data)
        kernels = (data[k].to(self.device) for k in ('kernel1', 'kernel2', 'sinc_kernel'))
        self.lq, self.gt, self.gt_usm = self.degradation(data['gt'].to(self.device), *kernels)
        self.inputs_to_memory_format()

    def target(self, use: str):
        return self.gt_usm if self.use_usm[use] else self.gt
