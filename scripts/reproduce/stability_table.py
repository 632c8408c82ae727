"""Writes the stability results table (README.md) from a scripts/reproduce/stability.sh run folder.
usage: stability_table.py RUN_ROOT RESULTS_DIR PROVENANCE COMMAND"""
import glob
import json
import os
import statistics
import sys

root, results, provenance, command = sys.argv[1:5]


def load(path):
    with open(path) as f:
        return json.load(f)


def mean_std(values):
    if not values:
        return '-'
    if len(values) == 1:
        return f'{100 * values[0]:.2f}'
    return f'{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}'


seeds = sorted(glob.glob(os.path.join(root, 'seed*')))
rows = {}  # (program, model, precision) -> list of accuracies
errors = {}  # (program, model) -> list of mean errors
images_per_second = {}
for seed_dir in seeds:
    for summary in glob.glob(os.path.join(seed_dir, '*', 'summary.json')):
        name = os.path.basename(os.path.dirname(summary))
        model, precision = name.rsplit('_', 1)
        s = load(summary)
        rows.setdefault(('pdeq', model, precision), []).append(s['test_accuracy'])
        images_per_second.setdefault(('pdeq', model, precision), []).append(s['train_images_per_second'])
    analysis = os.path.join(seed_dir, 'analysis', 'stability.json')
    if os.path.exists(analysis):
        for run in load(analysis)['runs']:
            model = os.path.basename(run['label']).rsplit('_', 1)[0]
            errors.setdefault(('pdeq', model), []).append(run['mean_error'])
    for path in glob.glob(os.path.join(seed_dir, 'reference_*.json')):
        r = load(path)
        precision = 'fp' if r['bits'] >= 32 else f'w{r["bits"]}a{r["bits"]}'
        rows.setdefault(('reference', r['arch'], precision), []).append(r['test_accuracy'])
        images_per_second.setdefault(('reference', r['arch'], precision), []).append(r['images_per_second'])
        if 'mean_error' in r:
            errors.setdefault(('reference', r['arch']), []).append(r['mean_error'])

models = sorted({m for (_, m, _) in rows}, key=lambda m: (m.startswith('stable'), m))
lines = ['# Stability: ordinary vs symmetric networks, quantization error through the layers', '',
         f'Written by `{command}`; {provenance}.', '',
         'Test accuracy (%) after the last epoch, mean ± std over seeds where there are several, and the mean over',
         'blocks of the per-block RMS error between the W4A4 network and the same weights with full-precision',
         'activations (`pdeq analyze stability`; the same measure for the reference). Ratio: ordinary / symmetric',
         'error of the same program (larger = the symmetric network keeps the error smaller).', '',
         '| program | model | W4A4 acc. | float acc. | mean error (W4A4) | error ratio vs the ordinary net | train img/s (W4A4) |',
         '|---|---|---|---|---|---|---|']
for program in ('pdeq', 'reference'):
    base = errors.get((program, models[0])) if models else None
    for model in models:
        w4 = rows.get((program, model, 'w4a4'), [])
        fp = rows.get((program, model, 'fp'), [])
        if not w4 and not fp:
            continue
        err = errors.get((program, model), [])
        ratio = '-'
        if base and err and model != models[0]:
            ratio = f'{statistics.mean(base) / statistics.mean(err):.2f}x'
        speed = images_per_second.get((program, model, 'w4a4'), [])
        lines.append(f'| {program} | {model} | {mean_std(w4)} | {mean_std(fp)} | '
                     f'{f"{statistics.mean(err):.4f}" if err else "-"} | {ratio} | '
                     f'{f"{statistics.mean(speed):.0f}" if speed else "-"} |')
lines += ['', f'Seeds: {len(seeds)}. Per-block errors of pdeq\'s seed 0: `stability_pdeq_seed0.csv`, figure',
          '`stability_pdeq_seed0.png`.', '']
os.makedirs(results, exist_ok=True)
with open(os.path.join(results, 'README.md'), 'w') as f:
    f.write('\n'.join(lines))
summary = {'rows': {'/'.join(k): v for k, v in rows.items()}, 'mean_errors': {'/'.join(k): v for k, v in errors.items()},
           'provenance': provenance, 'command': command}
with open(os.path.join(results, 'stability.json'), 'w') as f:
    json.dump(summary, f, indent=1)
