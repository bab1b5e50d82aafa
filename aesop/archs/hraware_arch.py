"""The networks of HR-aware self-supervised finetuning (Zhang & Yao, "High-Resolution Be Aware!", paper 003).

- :class:`AesopHRAwareReconstructor`: the LR reconstruction network (Sec. 4.1–4.2, Eq. 4). It
  holds the degradation encoder E_deg (LR → e_d ∈ R^deg_dim), the image encoder E_img (HR → e_im,
  C_i × H × W, no downsampling), the reconstructor R(s·e_d, e_im) → X̂ at LR size, and the linear
  maps T_a, T_m of FAR (Eq. 11). They are one network, so EMA, saving and DDP work as for ψ.
- :class:`AesopClipImageEncoder`: E_clip, an internal feature of CLIP's "RN50" image encoder
  (open_clip's ``ModifiedResNet``), frozen.

The paper gives the sizes of E_img (6 residual blocks, 64 channels) and E_deg (16 residual blocks,
a 512-d output); the rest is in its supplementary, which is not public. This project's choices
(options, defaults documented here): R is an SRResNet trunk whose convolutions are StyleGAN2
modulated convolutions (basicsr's ``ModulatedConv2d``) styled by s·e_d; R reaches LR size by
pixel-unshuffling e_im by the scale; E_deg ends with global average pooling and a linear layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import torch
from basicsr.archs.arch_util import ResidualBlockNoBN, make_layer
from basicsr.archs.stylegan2_arch import ModulatedConv2d
from basicsr.utils.registry import ARCH_REGISTRY
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from aesop.errors import AesopError, OptionValueError
from aesop.schema import checked
from aesop.utils import find_pretrained_file, project_root, random_backbones
from aesop.weights import freeze, read_checkpoint

__all__ = ['AesopClipImageEncoder', 'AesopHRAwareReconstructor']


class ModulatedResidualBlock(nn.Module):
    """A residual block whose two 3×3 convolutions are modulated by a style vector (StyleGAN2)."""

    def __init__(self, num_feat: int, style_dim: int) -> None:
        super().__init__()
        self.conv1 = ModulatedConv2d(num_feat, num_feat, 3, style_dim)
        self.conv2 = ModulatedConv2d(num_feat, num_feat, 3, style_dim)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x, style), 0.2), style)


def _trunk(num_in: int, num_feat: int, num_block: int) -> nn.Sequential:
    """A 3×3 conv, then ``num_block`` of SRResNet's residual blocks without batch norm (basicsr's)."""
    return nn.Sequential(
        nn.Conv2d(num_in, num_feat, 3, 1, 1), make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat)
    )


@ARCH_REGISTRY.register()
class AesopHRAwareReconstructor(nn.Module):
    """E_deg, E_img, R and FAR's T_a, T_m (paper 003, Eq. 4 and Eq. 11).

    Args:
        scale: SR scale: R maps e_im (HR size) to an LR-size image.
        num_feat: channels of E_img (C_i, the paper: 64) and of R's trunk.
        num_block_img: residual blocks of E_img (the paper: 6).
        num_feat_deg: channels of E_deg.
        num_block_deg: residual blocks of E_deg (the paper: 16).
        deg_dim: size of e_d (the paper: 512), R's style.
        num_block_rec: modulated residual blocks of R (this project's default: 8).
        clip_channels: channels of E_clip's feature (C_c; RN50's third stage: 1024).
    """

    @checked
    def __init__(
        self,
        *,
        scale: Annotated[int, Field(ge=1)] = 4,
        num_feat: int = 64,
        num_block_img: int = 6,
        num_feat_deg: int = 64,
        num_block_deg: int = 16,
        deg_dim: int = 512,
        num_block_rec: int = 8,
        clip_channels: int = 1024,
    ) -> None:
        super().__init__()
        self.scale, self.deg_dim = scale, deg_dim
        self.deg_encoder = nn.Sequential(
            _trunk(3, num_feat_deg, num_block_deg),
            nn.Conv2d(num_feat_deg, num_feat_deg, 3, 1, 1),
            nn.LeakyReLU(0.1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(num_feat_deg, deg_dim),
        )
        self.img_encoder = _trunk(3, num_feat, num_block_img)
        self.rec_first = nn.Conv2d(num_feat * scale**2, num_feat, 3, 1, 1)
        self.rec_body = nn.ModuleList(ModulatedResidualBlock(num_feat, deg_dim) for _ in range(num_block_rec))
        self.rec_last = nn.Conv2d(num_feat, 3, 3, 1, 1)
        self.t_avg = nn.Linear(num_feat, clip_channels)
        self.t_max = nn.Linear(num_feat, clip_channels)

    @classmethod
    def input_multiple(cls, options) -> int:
        """HR inputs must be multiples of ``scale`` (R pixel-unshuffles e_im)."""
        return int(options.get('scale', 4))

    def degradation(self, lr: torch.Tensor) -> torch.Tensor:
        """E_deg: (N, 3, h, w) LR → e_d, (N, deg_dim)."""
        return self.deg_encoder(lr)

    def image_features(self, hr: torch.Tensor) -> torch.Tensor:
        """E_img: (N, 3, H, W) HR → e_im, (N, C_i, H, W)."""
        return self.img_encoder(hr)

    def reconstruct(self, style: torch.Tensor, e_im: torch.Tensor) -> torch.Tensor:
        """R(s·e_d, e_im): (N, deg_dim) and (N, C_i, H, W) → X̂, (N, 3, H/scale, W/scale)."""
        if e_im.shape[-1] % self.scale or e_im.shape[-2] % self.scale:
            raise OptionValueError(
                f'AesopHRAwareReconstructor: HR size {tuple(e_im.shape[-2:])} is not a multiple of scale {self.scale}'
            )
        x = self.rec_first(F.pixel_unshuffle(e_im, self.scale))
        for block in self.rec_body:
            x = block(x, style)
        return self.rec_last(x)

    def style(self, s: torch.Tensor | float, e_d: torch.Tensor) -> torch.Tensor:
        """s·e_d, element-wise (Eq. 4): ``s`` a number, one value per image (N,) or (N, 1), or the
        paper's C_d-vector per image (N, deg_dim) (Sec. 4.3); ``e_d`` (N, deg_dim)."""
        s = torch.as_tensor(s, dtype=e_d.dtype, device=e_d.device)
        s = s.reshape(-1, 1) if s.dim() < 2 else s
        if s.dim() != 2 or s.shape[1] not in (1, self.deg_dim) or s.shape[0] not in (1, e_d.shape[0]):
            raise OptionValueError(
                f'AesopHRAwareReconstructor: the controller s has shape {tuple(s.shape)}; e_d has '
                f'{tuple(e_d.shape)} (s: a number, (N,), (N, 1) or (N, {self.deg_dim}))'
            )
        return s * e_d

    def forward(self, lr: torch.Tensor, hr: torch.Tensor, s: torch.Tensor | float = 1.0, return_features: bool = False):
        """X̂ = R(s·E_deg(lr), E_img(hr)) (Eq. 4); ``s``: see :meth:`style`. With ``return_features``,
        ``(X̂, e_im)`` (FAR's input; through ``forward`` so DDP sees the whole step)."""
        e_im = self.image_features(hr)
        out = self.reconstruct(self.style(s, self.degradation(lr)), e_im)
        return (out, e_im) if return_features else out


CLIP_RN50 = {
    'file': 'open_clip_model.safetensors',
    'url': 'https://huggingface.co/timm/resnet50_clip.openai/resolve/main/open_clip_model.safetensors',
}


@ARCH_REGISTRY.register()
class AesopClipImageEncoder(nn.Module):
    """E_clip: the feature after stage ``layer`` of CLIP's ResNet image encoder (open_clip), frozen.

    The input (RGB in [0, 1]) is resized to ``input_size`` (bicubic) and normalised with CLIP's
    mean and std. ``pretrained``: the RN50 weights (open_clip's ``open_clip_model.safetensors``,
    or a state dict with ``visual.*`` keys); without it the weights are looked up in the pretrained
    folders and, with ``AESOP_RANDOM_BACKBONES=1``, left random (tests, the demo).

    Args:
        layers: residual blocks per stage (RN50: 3, 4, 6, 3).
        width: stem width (RN50: 64; stage k has width·2^(k+1)·... channels, stage 3: 16·width).
        layer: the stage whose output is E_clip's feature (1–4; this project's default: 3).
        input_size: side of the resized input (CLIP: 224).
        pretrained: the weights file, or ``None`` to look it up.
    """

    requires = ('open_clip', 'hraware')  # checked at start-up: aesop.options.check_optional_packages

    def __init__(
        self,
        *,
        layers: Sequence[int] = (3, 4, 6, 3),
        width: int = 64,
        layer: int = 3,
        input_size: int = 224,
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        try:
            from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
            from open_clip.modified_resnet import ModifiedResNet
        except ImportError as err:
            raise AesopError(f"AesopClipImageEncoder needs open_clip ({err}): pip install -e '.[hraware]'") from None

        if not 1 <= layer <= 4:
            raise OptionValueError(f'AesopClipImageEncoder: layer must be 1–4, got {layer}')
        self.layer, self.input_size = layer, input_size
        heads = max(1, width * 32 // 64)
        self.visual = ModifiedResNet(
            list(layers), output_dim=max(1, width * 16), heads=heads, image_size=input_size, width=width
        )
        self.register_buffer('mean', torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1), persistent=False)
        if pretrained is not None or not random_backbones():
            self._load(pretrained)
        freeze(self)

    @property
    def channels(self) -> int:
        """C_c: the channels of the feature (RN50, stage 3: 1024)."""
        return getattr(self.visual, f'layer{self.layer}')[-1].conv3.out_channels

    def _load(self, pretrained: str | None) -> None:
        if pretrained:  # relative: to the project root, as the option pipeline resolves every path
            path = Path(pretrained).expanduser()
            path = path if path.is_absolute() else project_root() / path
        else:
            path = find_pretrained_file(CLIP_RN50['file'], url=CLIP_RN50['url'], what='CLIP RN50 (E_clip of FAR)')
        if not path.is_file():
            raise AesopError(
                f'CLIP weights not found: {path} (AesopClipImageEncoder pretrained); download {CLIP_RN50["url"]}'
            )
        state = read_checkpoint(path, option='AesopClipImageEncoder pretrained')
        visual = {k.removeprefix('visual.'): v for k, v in state.items() if k.startswith('visual.')}
        missing, _ = self.visual.load_state_dict(visual or state, strict=False)
        needed = [k for k in missing if not k.startswith('attnpool.')]  # the attention pool is not used
        if needed:
            raise AesopError(f'{path} is not a CLIP ResNet checkpoint: it has no {needed[0]}')

    def train(self, mode: bool = True) -> AesopClipImageEncoder:
        return super().train(False)  # always in eval mode (BatchNorm statistics frozen)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1] → the stage-``layer`` feature, (N, C_c, h, w)."""
        x = F.interpolate(img, size=(self.input_size, self.input_size), mode='bicubic', align_corners=False)
        x = (x - self.mean) / self.std
        x = self.visual.stem(x.to(self.visual.conv1.weight.dtype))
        for k in range(1, self.layer + 1):
            x = getattr(self.visual, f'layer{k}')(x)
        return x
