"""Training images/s of the reference implementation (BGUCompSci/CNNQuantizationThroughPDEs) on synthetic
CIFAR-shaped batches, measured like `pdeq bench train`: SGD steps (lr 0.1, momentum 0.9, weight decay 1e-4) of
its own ResNet-20 and quantizers, warm-up steps first, the median of --rounds rounds of --steps steps.

usage: reference_bench.py REFERENCE_DIR [--device cuda] [--bits 4] [--batch 128] [--steps 30] [--warmup 5]
                          [--rounds 3] [--threads 2] [--memory-format contiguous|channels_last]
                          [--precision fp32|bf16] [--all-modes]
--precision bf16 is plain PyTorch mixed precision: torch.autocast(device, torch.bfloat16) around the forward pass
and the loss; --memory-format channels_last converts the network and the batch (torch.channels_last). These are
the peers of pdeq's train.precision and train.memory_format; --all-modes measures the four pairs in turn.
Prints one JSON line per mode: {"images_per_second", "float_images_per_second", "memory_format", "precision",
"device", "batch", "bits", ...}."""
import argparse
import json
import os
import statistics
import sys
import time

import torch
from torch.nn import functional as F

p = argparse.ArgumentParser()
p.add_argument('reference')
p.add_argument('--device', default='cuda')
p.add_argument('--arch', default='resnet20')
p.add_argument('--bits', type=int, default=4)
p.add_argument('--batch', type=int, default=128)
p.add_argument('--steps', type=int, default=30)
p.add_argument('--warmup', type=int, default=5)
p.add_argument('--rounds', type=int, default=3)
p.add_argument('--threads', type=int, default=2)
p.add_argument('--memory-format', choices=['contiguous', 'channels_last'], default='contiguous')
p.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32')
p.add_argument('--all-modes', action='store_true')
a = p.parse_args()
sys.path[:0] = [a.reference, os.path.join(a.reference, 'nets')]
from nets import make_net  # noqa: E402  (the reference's networks and quantizers)

torch.manual_seed(0)
torch.set_num_threads(a.threads)
device = torch.device(a.device)


def images_per_second(bits, memory_format, precision):
    layout = torch.channels_last if memory_format == 'channels_last' else torch.contiguous_format
    net = make_net(arch=a.arch, classes=10, stable=False, stability_coeff=0.1, quantize_weights=bits,
                   quantize_activations=bits).to(device, memory_format=layout)
    net.train()
    opt = torch.optim.SGD(net.parameters(), 0.1, 0.9, weight_decay=1e-4)
    x = torch.randn(a.batch, 3, 32, 32, device=device).contiguous(memory_format=layout)
    y = torch.randint(0, 10, (a.batch,), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == 'bf16'):
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    for _ in range(a.warmup):
        step()
    rates = []
    for _ in range(a.rounds):
        sync()
        start = time.perf_counter()
        for _ in range(a.steps):
            step()
        sync()
        rates.append(a.steps * a.batch / (time.perf_counter() - start))
    return statistics.median(rates)


modes = ([(f, p) for p in ('fp32', 'bf16') for f in ('contiguous', 'channels_last')] if a.all_modes
         else [(a.memory_format, a.precision)])
for memory_format, precision in modes:
    quantized = images_per_second(a.bits if a.bits < 32 else None, memory_format, precision)
    full = images_per_second(None, memory_format, precision)
    print(json.dumps({'implementation': 'reference', 'arch': a.arch, 'bits': a.bits, 'batch': a.batch,
                      'device': str(device), 'torch': torch.__version__, 'memory_format': memory_format,
                      'precision': precision, 'threads': a.threads, 'images_per_second': quantized,
                      'float_images_per_second': full, 'ratio_to_float': quantized / full}), flush=True)
