"""PReNet (Ren et al., CVPR 2019), the peer we benchmark against, written from its paper.

Progressive recurrent network: T stages share weights; each stage takes cat(rainy input, previous
estimate) -> conv -> ConvLSTM (input/forget/cell/output gates, 3x3 convs) -> 5 residual blocks ->
conv -> residual estimate added to the input. 6 stages, 32 channels. Used only for comparison:
its public weights are read from `../shared/peers/PReNet` and never shipped.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin, cout, act=None):
    layers = [nn.Conv2d(cin, cout, 3, 1, 1)]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class PReNet(nn.Module):
    def __init__(self, stages: int = 6, ch: int = 32):
        super().__init__()
        self.stages, self.ch = stages, ch
        self.conv0 = _conv(6, ch, nn.ReLU())
        for i in range(1, 6):
            setattr(self, f"res_conv{i}", nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), nn.ReLU(),
                                                        nn.Conv2d(ch, ch, 3, 1, 1), nn.ReLU()))
        self.conv_i = _conv(2 * ch, ch, nn.Sigmoid())
        self.conv_f = _conv(2 * ch, ch, nn.Sigmoid())
        self.conv_g = _conv(2 * ch, ch, nn.Tanh())
        self.conv_o = _conv(2 * ch, ch, nn.Sigmoid())
        self.conv = _conv(ch, 3)

    def forward(self, inp):
        b, _, h, w = inp.shape
        x = inp
        hid = inp.new_zeros(b, self.ch, h, w)
        cell = inp.new_zeros(b, self.ch, h, w)
        for _ in range(self.stages):
            x = self.conv0(torch.cat([inp, x], 1))
            x = torch.cat([x, hid], 1)
            cell = self.conv_f(x) * cell + self.conv_i(x) * self.conv_g(x)
            hid = self.conv_o(x) * torch.tanh(cell)
            x = hid
            for i in range(1, 6):
                x = F.relu(getattr(self, f"res_conv{i}")(x) + x)
            x = self.conv(x) + inp
        return x.clamp(0, 1) if not self.training else x


def load_prenet(path) -> PReNet:
    from .clip_resnet import load_exact
    m = PReNet()
    load_exact(m, torch.load(path, map_location="cpu", weights_only=True))
    return m.eval()
