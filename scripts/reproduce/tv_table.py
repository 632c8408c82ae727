"""Writes the TV results table (README.md) from a scripts/reproduce/tv.sh run folder.
usage: tv_table.py RUN_ROOT MODEL RESULTS_DIR PROVENANCE COMMAND"""
import glob
import json
import os
import statistics
import sys

root, model, results, provenance, command = sys.argv[1:6]


def load(path):
    with open(path) as f:
        return json.load(f)


table = {}  # variant -> {'acc': [...], 'mse': [...]}
figure = None
for seed_dir in sorted(glob.glob(os.path.join(root, 'seed*'))):
    for variant in ('w4a4', 'w4a4_tv3'):
        run = os.path.join(seed_dir, f'{model}_{variant}')
        analysis = os.path.join(run, 'tv_analysis', 'tv.json')
        if not (os.path.exists(analysis) and os.path.exists(os.path.join(run, 'summary.json'))):
            continue
        tv = load(analysis)
        entry = table.setdefault(variant, {'acc': [], 'mse': [], 'range': []})
        entry['acc'].append(load(os.path.join(run, 'summary.json'))['test_accuracy'])
        entry['mse'].append(statistics.mean(layer['quant_mse'] for layer in tv['layers']))
        entry['range'].append(statistics.mean(layer['max'] - layer['min'] for layer in tv['layers']))
        if variant == 'w4a4_tv3' and figure is None and 'tv' in tv:
            figure = tv['tv']


def fmt(values, scale=1.0, digits=2):
    if not values:
        return '-'
    mean = statistics.mean(values) * scale
    if len(values) == 1:
        return f'{mean:.{digits}f}'
    return f'{mean:.{digits}f} ± {statistics.stdev(values) * scale:.{digits}f}'


lines = ['# TV smoothing: quantization error with and without TV', '',
         f'Written by `{command}`; {provenance}.', '',
         f'{model} at W4A4, with TV at every site (3 iterations) and without. Quantization MSE: mean over the',
         "network's activation quantizers of E[(Q(x) - x)^2] over 1,000 test images (`pdeq analyze tv`); range: mean",
         'over the quantizers of max - min of their inputs.', '',
         '| variant | test acc. (%) | mean quantization MSE | mean input range |', '|---|---|---|---|']
for variant, label in (('w4a4', 'no TV'), ('w4a4_tv3', 'TV, 3 iterations')):
    if variant in table:
        e = table[variant]
        lines.append(f'| {label} | {fmt(e["acc"], 100)} | {fmt(e["mse"], 1, 5)} | {fmt(e["range"], 1, 3)} |')
if figure:
    b, a = figure['before'], figure['after']
    lines += ['', f'One feature map of the TV network (test image {figure["image"]}, quantizer `{figure["layer"]}`, '
              f'TV layer `{figure["tv_layer"]}`, mean step {figure["tau_mean"]:.4f}): values in '
              f'[{b["min"]:.2f}, {b["max"]:.2f}] (std {b["std"]:.3f}) before TV, [{a["min"]:.2f}, {a["max"]:.2f}] '
              f'(std {a["std"]:.3f}) after; quantization MSE {b["quant_mse"]:.5f} -> {a["quant_mse"]:.5f}. '
              'Figures: the PNG files beside this page.']
lines.append('')
os.makedirs(results, exist_ok=True)
with open(os.path.join(results, 'README.md'), 'w') as f:
    f.write('\n'.join(lines))
