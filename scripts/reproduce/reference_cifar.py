"""Trains the reference implementation's own networks and quantizers (BGUCompSci/CNNQuantizationThroughPDEs,
a checkout given by path; nothing of it is shipped with pdeq) on the same CIFAR-10 images and protocol as a pdeq
run, and measures what `pdeq analyze stability` measures.

The training loop follows the reference's `train_single` (stable_exp.py): SGD 0.1 / momentum 0.9 / weight decay
1e-4 on every parameter, `CosineAnnealingLR(T_max=epochs)` stepped after each epoch, bits lowered after epochs
P, 2P, ... (`epoch > 0 and epoch % P == 0`) through its `set_quantize_weights` / `set_quantize_activations`,
its datasets.py transforms (crop with 4-pixel padding, flip, its CIFAR-10 statistics). The training images are
pdeq's: the first --limit-train of pdeq's seeded split permutation (data.split_seed, data.val_size 0), so both
programs see the same subset. The test set is the official one (the first --limit-test images).

Writes OUT_JSON: test accuracy (last epoch), per-epoch log, images/s and, for a quantized run, the per-block RMS
error between the trained network and the same weights with full-precision activations (the reference's
report_graph_act_diffs measure: sqrt(sum ||a - r||^2 / numel) per block output) and its mean.

usage: reference_cifar.py REF_DIR CIFAR10_BIN_DIR OUT_JSON --arch resnet20|stablenet20|resnet20_sym [--bits B]
       [--epochs E] [--limit-train N] [--limit-test N] [--start-bits 16 --bit-step S --period P] [--seed S]"""

import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image
from torch.nn import functional as F

MASK64 = (1 << 64) - 1


def splitmix64(state):
    """One SplitMix64 draw: (new state, output), as pdeq's data/random.h."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def derive_seed(parts):
    key = 0x6A09E667F3BCC909
    for part in parts:
        key = splitmix64(key ^ part)[1]
    return key


def pdeq_split_order(n, split_seed):
    """pdeq's split permutation of the n training files (Fisher-Yates over unbiased SplitMix64 draws)."""
    state = derive_seed([split_seed, 0x73706C6974])  # the split stream tag, "split"
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        bound = i + 1
        threshold = ((1 << 64) - bound) % bound
        while True:
            state, r = splitmix64(state)
            if r >= threshold:
                break
        j = r % bound
        order[i], order[j] = order[j], order[i]
    return order


def read_cifar10(root, names):
    images, labels = [], []
    for name in names:
        raw = np.fromfile(os.path.join(root, name), dtype=np.uint8).reshape(-1, 3073)
        labels.append(raw[:, 0].astype(np.int64))
        images.append(raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.concatenate(images), np.concatenate(labels)


class ArrayDataset(torch.utils.data.Dataset):
    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('ref')
    parser.add_argument('data')
    parser.add_argument('out')
    parser.add_argument('--arch', default='resnet20', choices=['resnet20', 'resnet20_sym', 'stablenet20',
                                                                'resnet56', 'stablenet56'])
    parser.add_argument('--bits', type=int, default=4, help='target bits of weights and activations; 32: float')
    parser.add_argument('--epochs', type=int, default=10)
    parser.add_argument('--limit-train', type=int, default=0)
    parser.add_argument('--limit-test', type=int, default=0)
    parser.add_argument('--start-bits', type=int, default=16)
    parser.add_argument('--bit-step', type=int, default=1)
    parser.add_argument('--period', type=int, default=10)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--split-seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--stability-coeff', type=float, default=0.1, help="the reference's h (config.py: 0.1)")
    args = parser.parse_args()

    sys.path[:0] = [args.ref, os.path.join(args.ref, 'nets')]
    from nets import make_net  # the reference's networks and quantizers

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)

    train_x, train_y = read_cifar10(args.data, [f'data_batch_{i}.bin' for i in range(1, 6)])
    test_x, test_y = read_cifar10(args.data, ['test_batch.bin'])
    subset = pdeq_split_order(len(train_y), args.split_seed)
    if args.limit_train:
        subset = subset[:args.limit_train]
    train_x, train_y = train_x[subset], train_y[subset]
    if args.limit_test:
        test_x, test_y = test_x[:args.limit_test], test_y[:args.limit_test]
    mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)  # the reference's datasets.py
    train_tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
    test_tf = T.Compose([T.ToTensor(), T.Normalize(mean, std)])
    train_loader = torch.utils.data.DataLoader(ArrayDataset(train_x, train_y, train_tf), batch_size=128,
                                               shuffle=True, num_workers=0)
    test_loader = torch.utils.data.DataLoader(ArrayDataset(test_x, test_y, test_tf), batch_size=100,
                                              shuffle=False, num_workers=0)

    quantized = args.bits < 32
    bits = args.start_bits if quantized else None
    arch = args.arch.replace('_sym', '')
    symmetric = args.arch.endswith('_sym') or arch.startswith('stablenet')
    net = make_net(arch=arch, classes=10, stable=symmetric, stability_coeff=args.stability_coeff,
                   quantize_weights=bits, quantize_activations=bits)
    optimizer = torch.optim.SGD(net.parameters(), 0.1, 0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)

    log, images, start = [], 0, time.time()
    for epoch in range(args.epochs):
        net.train()
        correct, loss_sum, epoch_start = 0, 0.0, time.time()
        for x, y in train_loader:
            out = net(x)
            loss = F.cross_entropy(out, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            correct += out.argmax(1).eq(y).sum().item()
            loss_sum += loss.item() * len(y)
            images += len(y)
        row = {'epoch': epoch + 1, 'bits': bits or 32, 'lr': optimizer.param_groups[0]['lr'],
               'train_loss': loss_sum / len(train_y), 'train_accuracy': correct / len(train_y),
               'seconds': time.time() - epoch_start}
        print(json.dumps(row), flush=True)
        log.append(row)
        scheduler.step()
        if quantized and epoch > 0 and epoch % args.period == 0:
            bits = max(bits - args.bit_step, args.bits)
            net.set_quantize_weights(bits)
            net.set_quantize_activations(bits)
    train_seconds = time.time() - start

    net.return_layer_activations = 'all'  # every block's output, as the reference's analyses use

    def test_accuracy(model):
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test_loader:
                logits, _ = model(x)
                correct += logits.argmax(1).eq(y).sum().item()
        return correct / len(test_y)

    result = {'program': 'reference', 'arch': args.arch, 'bits': args.bits, 'epochs': args.epochs,
              'seed': args.seed, 'train_images': len(train_y), 'test_images': len(test_y),
              'train_seconds': train_seconds, 'images_per_second': images / train_seconds,
              'test_accuracy': test_accuracy(net), 'epochs_log': log}
    if quantized:
        float_net = copy.deepcopy(net)
        float_net.set_quantize_activations(32)
        result['test_accuracy_float_activations'] = test_accuracy(float_net)
        squared, count = None, None
        with torch.no_grad():
            for x, _ in test_loader:
                _, quantized_acts = net(x)
                _, float_acts = float_net(x)
                if squared is None:
                    squared, count = [0.0] * len(quantized_acts), [0] * len(quantized_acts)
                for i, (q, r) in enumerate(zip(quantized_acts, float_acts)):
                    squared[i] += float(((q - r) ** 2).sum())
                    count[i] += q.numel()
        result['layer_errors'] = [(s / c) ** 0.5 for s, c in zip(squared, count)]
        result['mean_error'] = sum(result['layer_errors']) / len(squared)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != 'epochs_log'}))


if __name__ == '__main__':
    main()
