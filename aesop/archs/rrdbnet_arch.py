"""basicsr's RRDBNet (the ESRGAN generator and ψ's decoder) with gradient checkpointing and ESRGAN's old keys.

:class:`AesopRRDBNet` is basicsr's network, same state-dict keys and same outputs, with two additions
the AESOP release relies on:

- ``use_checkpoint``: the trunk (``body``, the RRDB blocks) recomputes each block's activations in
  the backward pass instead of keeping them. Option files may write ``type: RRDBNet`` with
  ``use_checkpoint``: :mod:`aesop.official` builds this class then.
- it loads ESRGAN's two older key layouts, ``model.0 / model.1.sub.<i>.RDB<k>.conv<j>.0 /
  model.{3,6,8,10}`` (2018) and ``conv_first / RRDB_trunk / trunk_conv / upconv1 / upconv2 / HRconv
  / conv_last`` (2019), those of the published ``RRDB_ESRGAN_x4.pth`` (the release's
  ``RRDBNet_LEGACY``), and saves basicsr's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from basicsr.archs.rrdbnet_arch import RRDBNet
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.utils import checkpoint

from aesop.archs.layouts import ReadsOtherLayouts

_OLD_NAMES = {'RRDB_trunk.': 'body.', 'trunk_conv.': 'conv_body.', 'upconv1.': 'conv_up1.', 'upconv2.': 'conv_up2.'}
_OLD_NAMES |= {'HRconv.': 'conv_hr.'}
_SEQUENTIAL_TAIL = {'model.0.': 'conv_first.', 'model.3.': 'conv_up1.', 'model.6.': 'conv_up2.'}
_SEQUENTIAL_TAIL |= {'model.8.': 'conv_hr.', 'model.10.': 'conv_last.'}
_RDB = re.compile(r'(?P<block>\d+)\.RDB(?P<k>\d)\.conv(?P<j>\d)\.(?:0\.)?(?P<what>weight|bias)')


class CheckpointedSequential(nn.Sequential):
    """``nn.Sequential`` whose blocks are checkpointed while autograd records (same keys, same values).

    Under ``torch.no_grad`` (validation, ψ(HR), the EMA forward) it is a plain ``nn.Sequential``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self:
            x = checkpoint.checkpoint(block, x, use_reentrant=False) if torch.is_grad_enabled() else block(x)
        return x


@ARCH_REGISTRY.register()
class AesopRRDBNet(ReadsOtherLayouts, RRDBNet):
    """ESRGAN's RRDBNet (basicsr's ``RRDBNet``), optionally with checkpointed RRDB blocks, that also
    loads ESRGAN's 2018 and 2019 key layouts (×4; :meth:`canonical_state_dict`).

    Args:
        num_in_ch, num_out_ch, scale, num_feat, num_block, num_grow_ch: as basicsr's ``RRDBNet``.
        use_checkpoint: recompute each RRDB block in the backward pass: the same outputs and
            gradients for less activation memory (measured in docs/training.md, "What AESOP costs").
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

    @staticmethod
    def canonical_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state_dict`` in basicsr's layout, from any of the three."""
        out = {}
        for key, value in state_dict.items():
            if key.startswith('model.1.sub.'):  # 2018: the trunk is a Sequential of RRDBs + a conv
                rest = key.removeprefix('model.1.sub.')
                found = _RDB.fullmatch(rest)
                if found:
                    key = f'body.{found["block"]}.rdb{found["k"]}.conv{found["j"]}.{found["what"]}'
                else:
                    key = 'conv_body.' + rest.split('.', 1)[1]
            elif key.startswith(tuple(_SEQUENTIAL_TAIL)):
                prefix = next(p for p in _SEQUENTIAL_TAIL if key.startswith(p))
                key = _SEQUENTIAL_TAIL[prefix] + key.removeprefix(prefix)
            elif key.startswith(tuple(_OLD_NAMES)):  # 2019
                prefix = next(p for p in _OLD_NAMES if key.startswith(p))
                key = _OLD_NAMES[prefix] + key.removeprefix(prefix)
                if key.startswith('body.'):
                    key = re.sub(r'\.RDB(\d)\.', r'.rdb\1.', key)
            out[key] = value
        return out
