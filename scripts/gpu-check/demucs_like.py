#!/usr/bin/env python3
"""A separation model of Demucs-like size for the device check (scripts/gpu-check.sh), made on
the GPU machine with its own torch: a 1-D convolutional encoder/decoder (kernel 8, stride 4, six
levels up to 1536 channels, U-Net skips), about 50 M parameters like htdemucs' 42 M, with the
contract models/torch/torch_runner.cpp checks: forward(Tensor[B, C, T]) -> Tensor[B, S, C, T] and
the attributes sources, samplerate, audio_channels, segment_samples. Its weights are random: the
check measures throughput, not separation quality.

    python3 scripts/gpu-check/demucs_like.py OUT.pt
"""
import sys
from typing import List

import torch
from torch import nn


class DemucsLike(nn.Module):
    sources: List[str]
    samplerate: int
    audio_channels: int
    segment_samples: int
    unit: int

    def __init__(self, widths: List[int]):
        super().__init__()
        self.sources = ["drums", "bass", "other", "vocals"]
        self.samplerate = 44100
        self.audio_channels = 2
        self.segment_samples = 343980  # htdemucs' 7.8 s at 44.1 kHz
        self.unit = 4 ** len(widths)  # the input is padded to a multiple of every level's stride
        encoder = []
        decoder = []
        c_in = self.audio_channels
        for w in widths:
            encoder.append(nn.Sequential(nn.Conv1d(c_in, w, 8, 4, 2), nn.GELU(),
                                         nn.Conv1d(w, 2 * w, 1), nn.GLU(dim=1)))
            c_in = w
        outs = [len(self.sources) * self.audio_channels] + widths[:-1]
        for i in range(len(widths) - 1, -1, -1):
            decoder.append(nn.Sequential(nn.Conv1d(widths[i], 2 * widths[i], 3, 1, 1),
                                         nn.GLU(dim=1),
                                         nn.ConvTranspose1d(widths[i], outs[i], 8, 4, 2)))
        self.encoder = nn.ModuleList(encoder)
        self.decoder = nn.ModuleList(decoder)

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        batch, channels, length = mix.shape
        padded = (length + self.unit - 1) // self.unit * self.unit
        x = nn.functional.pad(mix, [0, padded - length])
        skips: List[torch.Tensor] = []
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        for i, layer in enumerate(self.decoder):
            x = x + skips[len(skips) - 1 - i]
            x = layer(x)
        x = x[:, :, :length]
        return x.reshape(batch, len(self.sources), channels, length)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    torch.manual_seed(0)
    model = DemucsLike([48, 96, 192, 384, 768, 1536]).eval()
    params = sum(p.numel() for p in model.parameters())
    scripted = torch.jit.script(model)
    with torch.no_grad():
        out = scripted(torch.zeros(1, 2, 44100))
    assert list(out.shape) == [1, 4, 2, 44100], out.shape
    scripted.save(sys.argv[1])
    print(f"demucs_like: {params / 1e6:.1f} M parameters -> {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
