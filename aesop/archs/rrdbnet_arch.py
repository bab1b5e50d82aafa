"""basicsr's RRDBNet with gradient checkpointing of its RRDB blocks (the ESRGAN generator and ψ's decoder).

The AESOP release's RRDBNet takes ``use_checkpoint``; basicsr's does not. :class:`AesopRRDBNet` is
basicsr's network, same state-dict keys and same outputs, whose trunk (``body``, the RRDB blocks)
recomputes each block's activations in the backward pass instead of keeping them. Option files
may write ``type: RRDBNet`` with ``use_checkpoint``: :mod:`aesop.official` builds this class then.
"""

from __future__ import annotations

import torch
from basicsr.archs.rrdbnet_arch import RRDBNet
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.utils import checkpoint


class CheckpointedSequential(nn.Sequential):
    """``nn.Sequential`` whose blocks are checkpointed while autograd records (same keys, same values).

    Under ``torch.no_grad`` (validation, ψ(HR), the EMA forward) it is a plain ``nn.Sequential``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self:
            x = checkpoint.checkpoint(block, x, use_reentrant=False) if torch.is_grad_enabled() else block(x)
        return x


@ARCH_REGISTRY.register()
class AesopRRDBNet(RRDBNet):
    """ESRGAN's RRDBNet (basicsr's ``RRDBNet``), optionally with checkpointed RRDB blocks.

    Args:
        num_in_ch, num_out_ch, scale, num_feat, num_block, num_grow_ch: as basicsr's ``RRDBNet``.
        use_checkpoint: recompute each RRDB block in the backward pass: the same outputs and
            gradients for less activation memory (``scripts/benchmark.py --checkpoint-memory``).
    """

    def __init__(
        self,
        *,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
        use_checkpoint: bool = False,
    ) -> None:
        super().__init__(
            num_in_ch, num_out_ch, scale=scale, num_feat=num_feat, num_block=num_block, num_grow_ch=num_grow_ch
        )
        self.use_checkpoint = use_checkpoint
        if use_checkpoint:
            self.body = CheckpointedSequential(*self.body)
