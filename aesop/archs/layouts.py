"""Archs that read other key layouts of their checkpoints (the release's, older releases')."""

from __future__ import annotations

from collections.abc import Mapping

import torch


class ReadsOtherLayouts:
    """Mixin for an ``nn.Module`` with a ``canonical_state_dict(state_dict)`` (another layout → its own):
    ``load_state_dict`` converts first, so both layouts load strictly. ``aesop.weights.load_weights``
    converts too, before comparing shapes. The network always saves its own layout."""

    @staticmethod
    def canonical_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor], strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict`` of any layout :meth:`canonical_state_dict` reads."""
        return super().load_state_dict(self.canonical_state_dict(state_dict), strict=strict, assign=assign)
