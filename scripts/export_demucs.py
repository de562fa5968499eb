#!/usr/bin/env python3
"""Export a pretrained Demucs model (htdemucs by default) to yesod-worker's separator contract.

The worker (design.md §3) loads a TorchScript file whose

    forward(mix: Tensor[B, C, T]) -> Tensor[B, S, C, T]      (float32, at the model's rate)

and whose module attributes are

    sources: List[str]      e.g. ["drums", "bass", "other", "vocals"]
    samplerate: int         44100 for Demucs
    audio_channels: int     2 for Demucs
    segment_samples: int    the one length the export accepts (0 would mean "any")

The worker does everything else the way demucs.apply.apply_model does (shifts, overlap and
segment as options): it resamples to `samplerate`, normalises the mix by its mean and standard
deviation, cuts segments of `segment_samples` (25 % overlap by default), batches segments (of
several songs) into one forward call, recombines with linear cross-fades and de-normalises. So
this script only has to make the network itself callable from C++. Since the file declares
`segment_samples`, the worker does not run it at load.

Why tracing, and what it implies (see shared/docs/build-and-separation.md §4):
  * HTDemucs cannot be scripted (Fraction, Python-side shape arithmetic); torch.jit.trace at a
    fixed input length works. A trace is valid only for that length, hence `segment_samples`.
    The transformer models take at most 7.8 s, i.e. 343980 samples at 44.1 kHz (the default).
  * torch.arange(..., device=x.device) bakes the device into the trace: export once per device
    (--device cpu and --device cuda) and point YW_MODEL at the matching file.
  * The batch size is baked in as well: the trace is taken at --trace-batch, and the exported
    forward splits or zero-pads any batch the worker sends into calls of exactly that size.
    Use the worker's YW_BATCH_MAX (e.g. 8 on a GPU) for the best throughput.
  * Bags of models (htdemucs_ft, htdemucs_6s is a single model) are exported as one module that
    runs every member and combines them with the bag's per-source weights, as apply_model does.
    (Members exported one by one can instead be listed in a .json bag manifest for the worker:
    {"models": [...], "weights": [[...], ...]}.)

Requirements: Python 3.9+, torch (the same major version as the worker's libtorch is safest)
and demucs (`pip install demucs`); the first run downloads the weights to torch's hub cache.
This script is not run in CI (no network, no Python torch there); the C++ tests build small
models of the same contract instead. Usage:

    python3 scripts/export_demucs.py --model htdemucs --device cuda --trace-batch 8 \
        --out models/htdemucs-cuda.pt
    YW_MODEL=models/htdemucs-cuda.pt yesod-worker separate song.flac --out stems/
"""

import argparse
import sys
from pathlib import Path
from typing import List

import torch


class _Bag(torch.nn.Module):
    """Runs each traced member and combines them with per-source weights (apply_model's rule)."""

    def __init__(self, members: List[torch.jit.ScriptModule], weights: torch.Tensor):
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.register_buffer("weights", weights)  # [members, sources]

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(0)
        i = 0
        for member in self.members:
            y = member(mix) * self.weights[i].view(1, -1, 1, 1)
            out = y if i == 0 else out + y
            i += 1
        return out / self.weights.sum(0).view(1, -1, 1, 1)


class Exported(torch.nn.Module):
    sources: List[str]
    samplerate: int
    audio_channels: int
    segment_samples: int
    trace_batch: int

    def __init__(self, inner: torch.nn.Module, sources: List[str], samplerate: int,
                 audio_channels: int, segment_samples: int, trace_batch: int):
        super().__init__()
        self.inner = inner
        self.sources = sources
        self.samplerate = samplerate
        self.audio_channels = audio_channels
        self.segment_samples = segment_samples
        self.trace_batch = trace_batch

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        if mix.size(2) != self.segment_samples:
            raise RuntimeError("this export only accepts segment_samples samples per segment")
        b = mix.size(0)
        outs: List[torch.Tensor] = []
        start = 0
        while start < b:
            chunk = mix[start:start + self.trace_batch]
            n = chunk.size(0)
            if n < self.trace_batch:
                pad = torch.zeros(self.trace_batch - n, mix.size(1), mix.size(2),
                                  dtype=mix.dtype, device=mix.device)
                chunk = torch.cat([chunk, pad], 0)
            outs.append(self.inner(chunk)[:n])
            start += self.trace_batch
        return torch.cat(outs, 0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="htdemucs", help="pretrained name (demucs.pretrained)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (the trace is device-bound)")
    p.add_argument("--segment-seconds", type=float, default=7.8,
                   help="segment length; HT models accept at most 7.8 s")
    p.add_argument("--trace-batch", type=int, default=1, help="batch size baked into the trace")
    p.add_argument("--out", required=True, help="output .pt file")
    p.add_argument("--repo", help="a local model repo (a folder of .th/.yaml files), as Demucs' "
                   "own --repo; default: the published models")
    args = p.parse_args()

    from demucs.apply import BagOfModels
    from demucs.pretrained import get_model

    model = get_model(args.model, Path(args.repo) if args.repo else None)
    model.eval().to(args.device)
    samplerate = int(model.samplerate)
    channels = int(model.audio_channels)
    sources = [str(s) for s in model.sources]
    segment = int(samplerate * args.segment_seconds)
    example = 0.1 * torch.randn(args.trace_batch, channels, segment, device=args.device)

    members = model.models if isinstance(model, BagOfModels) else [model]
    traced = []
    with torch.no_grad():
        for m in members:
            m.eval()
            # check_trace=False: the check re-runs with other inputs and trips over Demucs'
            # data-dependent Python branches, which the fixed length makes irrelevant.
            traced.append(torch.jit.trace(m, example, check_trace=False))
    if isinstance(model, BagOfModels):
        weights = torch.tensor(model.weights, dtype=torch.float32, device=args.device)
        inner = torch.jit.script(_Bag(traced, weights))
    else:
        inner = traced[0]

    exported = torch.jit.script(Exported(inner, sources, samplerate, channels, segment,
                                         args.trace_batch))
    exported.save(args.out)

    # Check the file against the Python model on the same (normalised) segment.
    loaded = torch.jit.load(args.out, map_location=args.device)
    with torch.no_grad():
        x = 0.1 * torch.randn(1, channels, segment, device=args.device)
        ref = torch.stack([m(x) for m in members]).mean(0) if len(members) == 1 else None
        got = loaded(x)
    if got.shape != (1, len(sources), channels, segment):
        print(f"export_demucs: unexpected output shape {tuple(got.shape)}", file=sys.stderr)
        return 1
    if ref is not None:
        err = (got - ref).abs().max().item()
        print(f"max |exported - python| on a random segment: {err:.3g}")
    print(f"wrote {args.out}: sources {sources}, {samplerate} Hz, {channels} channels, "
          f"segment {segment} samples, trace batch {args.trace_batch}, device {args.device}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
