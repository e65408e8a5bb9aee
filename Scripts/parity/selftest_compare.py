#!/usr/bin/env python3
"""Self-test of compare.py on synthetic "Swift" outputs fabricated from the reference JSON: an exact copy must
pass, and each perturbation must pass or fail exactly as the thresholds say.

    /root/.cache/ladon-ref-venv/bin/python Scripts/parity/selftest_compare.py \\
        --reference-dir /tmp/ladon-parity/reference --checkpoint /tmp/ladon-parity/segmentation.pt
"""
import argparse
import contextlib
import copy
import io
import json
import os
import sys
import tempfile

import numpy as np
import parity_common as pc
import torch
from PIL import Image

import compare


def swift_view(ref):
    """What `ladon infer --json --logits --mask-size padded` prints, built from the reference."""
    seg = ref['segmentation']
    return {'file': ref['file'], 'image': {k: ref['image'][k] for k in ('width', 'height')},
            'input': dict(ref['input']),
            'latent': {k: ref['latent'][k] for k in ('channels', 'height', 'width')},
            'compressedBytes': ref['compressedBytes'], 'compressedSha256': ref['compressedSha256'],
            'classification': copy.deepcopy(ref['classification']),
            'detection': copy.deepcopy(ref['detection']),
            'segmentation': {'width': seg['width'], 'height': seg['height'], 'maskSize': 'padded',
                             'classPixels': dict(seg['classPixels'])},
            'timings': {'totalMs': 0.0}}


def reference_mask(ref):
    seg = ref['segmentation']
    return np.frombuffer(pc.unb64(seg['maskUint8B64']), dtype=np.uint8).reshape(seg['height'], seg['width']).copy()


def write_swift(directory, stem, swift, data, mask):
    with open(os.path.join(directory, stem + '.json'), 'w') as f:
        f.write(json.dumps(swift) + '\n')
    if data is not None:
        with open(os.path.join(directory, stem + '.bin'), 'wb') as f:
            f.write(data)
    if mask is not None:
        Image.fromarray(mask, mode='L').save(os.path.join(directory, stem + '.mask.png'))


def encode_symbols(eb, symbols):
    """CompressAI byte string for given integer symbols (compress(symbols + m) rounds back to exactly them)."""
    medians = eb._get_medians().detach().reshape(1, -1, 1, 1)
    values = torch.from_numpy(symbols.astype(np.float32))[None] + medians
    return eb.compress(values)[0]


def run_compare(ref_dir, swift_dir, checkpoint, stem, extra=()):
    argv = ['--reference-dir', ref_dir, '--swift-dir', swift_dir, '--checkpoint', checkpoint,
            '--images', stem, *extra]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        rc = compare.run(compare.parse_args(argv))
    statuses = {}
    for line in buffer.getvalue().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in compare.CHECKS and parts[1] in ('PASS', 'FAIL', 'SKIP'):
            statuses[parts[0]] = (parts[1], ' '.join(parts[2:]))
    return rc, statuses


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--reference-dir', required=True)
    parser.add_argument('--checkpoint', required=True)
    args = parser.parse_args()
    stems = sorted(os.path.splitext(f)[0] for f in os.listdir(args.reference_dir) if f.endswith('.json'))
    refs = {}
    for stem in stems:
        with open(os.path.join(args.reference_dir, stem + '.json')) as f:
            refs[stem] = json.load(f)
    eb = pc.entropy_bottleneck_from_state(pc.load_checkpoint(args.checkpoint)['model'])
    stem = max(stems, key=lambda s: len(refs[s]['detection']))  # the photo with the most detections
    ref = refs[stem]
    lat = ref['latent']
    shape = (lat['channels'], lat['height'], lat['width'])
    offsets = np.frombuffer(pc.unb64(lat['offsetsFloat32B64']), dtype='<f4').reshape(shape)
    symbols = np.round(offsets.astype(np.float64)).astype(np.int64)
    ref_bytes = pc.unb64(ref['compressedB64'])
    logits = np.asarray(ref['classification']['logits'])
    scale = np.abs(logits).max()
    rng = np.random.default_rng(0)
    failures = []

    def case(name, expected_rc, expected, swift=None, data=ref_bytes, mask=None, extra=(), which=stem):
        base = refs[which]
        swift = swift if swift is not None else swift_view(base)
        mask = mask if mask is not None else reference_mask(base)
        with tempfile.TemporaryDirectory() as swift_dir:
            write_swift(swift_dir, which, swift, data if which == stem else pc.unb64(base['compressedB64']), mask)
            rc, statuses = run_compare(args.reference_dir, swift_dir, args.checkpoint, which, extra)
        got = {k: v[0] for k, v in statuses.items()}
        wanted = {k: ('PASS' if k not in expected else expected[k]) for k in compare.CHECKS}
        ok = rc == expected_rc and got == wanted
        print(f"{'ok  ' if ok else 'FAIL'} {name:58s} rc={rc} " +
              ' '.join(f'{k}={v}' for k, v in got.items() if v != 'PASS') +
              ('' if ok else f'   expected rc={expected_rc} {expected}; details {statuses}'))
        if not ok:
            failures.append(name)
        return statuses

    print(f'compare.py self-test on {stem} ({len(ref["detection"])} detections, '
          f'{ref["compressedBytes"]} bytes, {len(ref["segmentation"]["classPixels"])} mask classes)')
    for s in stems:
        case(f'identical copy ({s})', 0, {}, which=s)

    swift = swift_view(ref)
    swift['classification']['logits'] = list(logits + rng.uniform(-0.5e-3, 0.5e-3, logits.shape) * scale)
    case('logits jittered by 5e-4·max|logit| (top-5 kept)', 0, {}, swift=swift)
    top = [c['index'] for c in ref['classification']['top5']]
    low = int(np.argsort(logits)[len(logits) // 2])
    swift = swift_view(ref)
    perturbed = logits.copy()
    perturbed[low] += 3e-3 * scale
    swift['classification']['logits'] = list(perturbed)
    case('one mid-ranked logit off by 3e-3·max|logit|', 1, {'logits': 'FAIL'}, swift=swift)
    swift = swift_view(ref)
    swapped = logits.copy()
    swapped[top[0]], swapped[top[4]] = logits[top[4]], logits[top[0]]
    swift['classification']['logits'] = list(swapped)
    swift['classification']['top5'][0], swift['classification']['top5'][4] = \
        swift['classification']['top5'][4], swift['classification']['top5'][0]
    case('top-1 and top-5 swapped', 1, {'top5': 'FAIL', 'logits': 'FAIL'}, swift=swift)
    swift = swift_view(ref)
    del swift['classification']['logits']
    case('no logits in the Swift JSON', 1, {'logits': 'FAIL'}, swift=swift)

    # Entropy-coded stream: symbol flips at a tie (allowed) and off a tie (not allowed).
    tie_distance = np.abs(offsets.astype(np.float64) - np.floor(offsets) - 0.5)
    at_tie = np.unravel_index(np.argmin(tie_distance), shape)
    flipped = symbols.copy()
    flipped[at_tie] = int(np.floor(offsets[at_tie])) if symbols[at_tie] == np.ceil(offsets[at_tie]) \
        else int(np.ceil(offsets[at_tie]))
    tie_bytes = encode_symbols(eb, flipped)
    d = tie_distance[at_tie]
    swift = swift_view(ref)
    swift['compressedSha256'] = pc.sha256(tie_bytes)
    swift['compressedBytes'] = len(tie_bytes)
    print(f'     (closest .5 tie in {stem}: y-m = {offsets[at_tie]:.7f}, distance {d:.2e})')
    case('symbol at the closest tie rounded the other way, eps above it', 0, {}, swift=swift, data=tie_bytes,
         extra=('--tie-eps', f'{max(2 * d, 1e-12):.3e}'))
    case('same flip, eps below its tie distance', 1, {'bytes': 'FAIL'}, swift=swift, data=tie_bytes,
         extra=('--tie-eps', f'{d / 2:.3e}'))
    off_tie = np.unravel_index(np.argmax(np.where(tie_distance > 0.4, 1.0, 0.0) * rng.random(shape)), shape)
    wrong = symbols.copy()
    wrong[off_tie] += 1
    wrong_bytes = encode_symbols(eb, wrong)
    swift = swift_view(ref)
    swift['compressedSha256'] = pc.sha256(wrong_bytes)
    swift['compressedBytes'] = len(wrong_bytes)
    case('one symbol off by 1 away from a tie', 1, {'bytes': 'FAIL'}, swift=swift, data=wrong_bytes)
    swift = swift_view(ref)
    swift['compressedSha256'] = '0' * 64
    case('JSON sha differs but --bin is identical', 0, {}, swift=swift)
    case('streams differ and no --bin file', 1, {'bytes': 'FAIL'}, swift=swift, data=None)

    # Segmentation mask.
    mask = reference_mask(ref)
    for fraction, expected_rc, expected in ((0.0005, 0, {}), (0.002, 1, {'segmentation': 'FAIL'})):
        changed = mask.copy().reshape(-1)
        idx = rng.choice(changed.size, int(changed.size * fraction), replace=False)
        changed[idx] = (changed[idx] + 1) % 21
        case(f'{fraction * 100:.2f}% of mask pixels changed', expected_rc, expected, mask=changed.reshape(mask.shape))
    case('mask at the wrong size', 1, {'segmentation': 'FAIL'}, mask=mask[:-32])

    # Detections.
    dets = ref['detection']
    swift = swift_view(ref)
    for det in swift['detection']:
        det['box'] = [v + rng.uniform(-0.05, 0.05) for v in det['box']]
        det['score'] += rng.uniform(-1e-3, 1e-3)
    case('boxes jittered 0.05 px, scores 1e-3', 0, {}, swift=swift)
    swift = swift_view(ref)
    for det in swift['detection']:
        det['score'] += 3e-3
    case('all scores +3e-3', 1 if dets else 0, {'detection': 'FAIL'} if dets else {}, swift=swift)
    swift = swift_view(ref)
    for det in swift['detection']:
        w = det['box'][2] - det['box'][0]
        det['box'][0] += 0.1 * w
        det['box'][2] += 0.1 * w
    case('all boxes shifted by 10% of their width', 1 if dets else 0, {'detection': 'FAIL'} if dets else {},
         swift=swift)
    if len(dets) >= 2:
        drop = max(1, int(len(dets) * 0.03))
        swift = swift_view(ref)
        swift['detection'] = swift['detection'][:-drop]
        covered = (len(dets) - drop) / len(dets) >= 0.95
        case(f'{drop} of {len(dets)} detections missing ({(len(dets) - drop) / len(dets) * 100:.1f}% covered)',
             0 if covered else 1, {} if covered else {'detection': 'FAIL'}, swift=swift)
        drop = max(1, -(-len(dets) * 6 // 100))
        swift = swift_view(ref)
        swift['detection'] = swift['detection'][drop:]
        case(f'{drop} of {len(dets)} detections missing ({(len(dets) - drop) / len(dets) * 100:.1f}% covered)',
             1, {'detection': 'FAIL'}, swift=swift)
        swift = swift_view(ref)
        for det in swift['detection']:
            det['label'] = det['label'] % 90 + 1
        case('all labels changed', 1, {'detection': 'FAIL'}, swift=swift)
    swift = swift_view(ref)
    swift['detection'] = []
    case('no Swift detections', 1 if dets else 0, {'detection': 'FAIL'} if dets else {}, swift=swift)

    swift = swift_view(ref)
    swift['input']['paddedWidth'] += 32
    case('padded width differs', 1, {'geometry': 'FAIL'}, swift=swift)
    case('--skip detection,segmentation', 0, {'detection': 'SKIP', 'segmentation': 'SKIP'},
         extra=('--skip', 'detection,segmentation'))

    with tempfile.TemporaryDirectory() as empty:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            rc = compare.run(compare.parse_args(['--reference-dir', args.reference_dir, '--swift-dir', empty,
                                                 '--checkpoint', args.checkpoint, '--images', stem]))
    print(f"{'ok  ' if rc == 2 else 'FAIL'} {'missing Swift output':58s} rc={rc}")
    if rc != 2:
        failures.append('missing Swift output')

    print(f'\n{len(failures)} self-test failures' + (f': {failures}' if failures else ''))
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
