"""Input sizes each arch declares (aesop.archs.sizes) and the one padding function."""

import pytest
import torch
from torch.nn import functional as F

import aesop  # noqa: F401
from aesop.archs.sizes import input_multiple, pad_to_multiple

RRDB = {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3}


@pytest.mark.parametrize(
    ('arch', 'multiple'),
    [
        ({**RRDB, 'scale': 4}, None),
        ({**RRDB, 'scale': 2}, 2),
        ({**RRDB, 'scale': 1}, 4),
        ({**RRDB, 'type': 'AesopRRDBNet', 'scale': 2}, 2),  # a subclass of basicsr's RRDBNet
        ({'type': 'SwinIR', 'window_size': 8}, 8),
        ({'type': 'AesopAutoEncoder', 'scale': 4}, 4),  # declared by the class
        ({'type': 'AesopDRCT', 'window_size': 16}, None),  # pads itself
        ({'type': 'NotRegistered'}, None),
    ],
)
def test_input_multiple(arch, multiple):
    assert input_multiple(arch) == multiple


def test_symmetric_padding_is_swinirs_flip_and_concatenate():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    h, w = x.shape[-2:]
    reference = torch.cat([x, torch.flip(x, [2])], 2)[..., : h + 3, :]  # SwinIR's test script
    reference = torch.cat([reference, torch.flip(reference, [3])], 3)[..., : w + 1]
    assert torch.equal(pad_to_multiple(x, 8), reference)


def test_reflect_padding_is_torch_reflect_and_takes_tiny_inputs():
    x = torch.rand(1, 3, 5, 7)
    torch.testing.assert_close(pad_to_multiple(x, 8, mode='reflect'), F.pad(x, (0, 1, 0, 3), mode='reflect'))
    for mode in ('symmetric', 'reflect'):
        tiny = pad_to_multiple(torch.rand(1, 3, 1, 3), 16, mode=mode)  # smaller than the padding
        assert tiny.shape == (1, 3, 16, 16)
    assert torch.equal(pad_to_multiple(x, 1), x)
