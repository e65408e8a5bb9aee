#!/usr/bin/env python3
"""Reference Ladon *runtime* forward in PyTorch, assembled as ladon-reference §1.1/§1.2 describe, writing one JSON
per image for compare.py.

    /root/.cache/ladon-ref-venv/bin/python Scripts/parity/reference.py \\
        --classification /tmp/ladon-parity/classification.pt --detection /tmp/ladon-parity/detection.pt \\
        --segmentation /tmp/ladon-parity/segmentation.pt --output-dir /tmp/ladon-parity/reference \\
        [--resize-rule torchvision-0.13|torchvision-0.15] [--roi-levels p2-p4|p2-p5] [--timings] \
        [--backbone resnet50|resnest269e] IMAGE|DIR ...

Assembly (`ladon_splittable_resnet` of the Ladon repository): the classification model is loaded and `update()`d,
then a Faster R-CNN and a DeepLabv3 are built AROUND THE SAME backbone instance and loaded with strict=False, so
the shared body ends up with the segmentation checkpoint's tensors; `fc` comes from the classification file,
FPN/RPN/RoI heads from the detection file, the DeepLab head from the segmentation file. Preprocessing is
GeneralizedRCNNTransform(416, 416) with an explicit resize rule; the latent goes through CompressAI's real
compress/decompress; RoIAlign pools P2-P4 like the per-task detection model (default) or P2-P5 like the runtime.
"""
import argparse
import json
import os
import statistics
import sys
import time
from collections import OrderedDict

import parity_common as pc
import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.detection.image_list import ImageList  # noqa: F401

STAGES = ('preprocess', 'encoder', 'entropyEncode', 'entropyDecode', 'decoder', 'body', 'classification',
          'detection', 'segmentation')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('images', nargs='+', help='image files or directories')
    parser.add_argument('--classification', required=True)
    parser.add_argument('--detection', required=True)
    parser.add_argument('--segmentation', required=True)
    parser.add_argument('--output-dir', required=True)
    parser.add_argument('--backbone', choices=pc.BACKBONES, default='resnet50')
    parser.add_argument('--resize-rule', choices=pc.RESIZE_RULES, default='torchvision-0.13')
    parser.add_argument('--roi-levels', choices=['p2-p4', 'p2-p5'], default='p2-p4',
                        help='p2-p4: per-task detection model (trained mapping); p2-p5: the Ladon runtime module')
    parser.add_argument('--threads', type=int, default=0, help='torch threads for the JSON run (0: torch default)')
    parser.add_argument('--timings', action='store_true', help='also time every stage with 1 and 2 threads')
    parser.add_argument('--timing-threads', default='1,2')
    parser.add_argument('--timing-repeats', type=int, default=3)
    parser.add_argument('--timing-images', type=int, default=1, help='time only the first N images')
    return parser.parse_args()


class LadonRuntime:
    """The three per-task models sharing one backbone instance, loaded cls -> det -> seg."""

    def __init__(self, cls_path, det_path, seg_path):
        from sc2bench.models.backbone import FeatureExtractionBackbone
        from sc2bench.models.detection.rcnn import BaseRCNN, create_faster_rcnn_fpn
        from sc2bench.models.registry import load_classification_model
        from sc2bench.models.segmentation.deeplabv3 import create_deeplabv3
        from torchdistill.common.main_util import load_ckpt

        cpu = torch.device('cpu')
        self.cls = load_classification_model(pc.classification_config(cls_path), cpu, False)
        self.cls.update()
        fpn_kwargs = pc.detection_fpn_kwargs()
        det_kwargs = pc.detection_model_kwargs()
        self.det = BaseRCNN(create_faster_rcnn_fpn(self.cls, num_classes=det_kwargs['num_classes'], **fpn_kwargs,
                                                   in_channels_stage2=det_kwargs['in_channels_stage2'],
                                                   min_size=det_kwargs['min_size'], max_size=det_kwargs['max_size']))
        self.load_report = {'detection': self._mismatch(self.det, det_path)}
        load_ckpt(det_path, model=self.det, strict=False)
        seg_kwargs = pc.segmentation_model_kwargs()
        backbone = FeatureExtractionBackbone(self.cls, seg_kwargs['return_layer_dict'], [], False,
                                             analyzable_layer_key=seg_kwargs['analyzable_layer_key'])
        self.seg = create_deeplabv3(backbone, num_input_channels=seg_kwargs['num_input_channels'],
                                    uses_aux=seg_kwargs['uses_aux'], num_aux_channels=seg_kwargs['num_aux_channels'],
                                    num_classes=seg_kwargs['num_classes'])
        self.load_report['segmentation'] = self._mismatch(self.seg, seg_path)
        load_ckpt(seg_path, model=self.seg, strict=False)
        for model in (self.cls, self.det, self.seg):
            model.eval()
        self.bottleneck = self.cls.bottleneck_layer
        self.eb = self.bottleneck.entropy_bottleneck
        self.transform = self.det.transform
        self.imagenet, self.coco, self.voc = pc.labels()

    @staticmethod
    def _mismatch(model, path):
        keys = set(pc.load_checkpoint(path)['model'].keys())
        own = set(model.state_dict().keys())
        return {'unexpected': sorted(keys - own), 'missing': sorted(own - keys)}

    def forward(self, image, rule, roi_levels, clock=None):
        """Runs one image (CHW float in [0,1]) through the runtime; returns a dict of raw results."""
        tick = clock or (lambda stage: None)
        tick(None)
        images, original_sizes = pc.preprocess([image], self.transform, rule)
        x = images.tensors
        tick('preprocess')
        y = self.bottleneck.encoder(x)
        tick('encoder')
        strings = self.eb.compress(y)
        tick('entropyEncode')
        y_hat = self.eb.decompress(strings, y.shape[-2:])
        tick('entropyDecode')
        z0 = self.bottleneck.decoder(y_hat)
        tick('decoder')
        z1 = self.cls.layer2(z0)
        z2 = self.cls.layer3(z1)
        z3 = self.cls.layer4(z2)
        tick('body')
        logits = self.cls.fc(torch.flatten(self.cls.avgpool(z3), 1))
        tick('classification')
        names = ('1', '2', '3', '4') if roi_levels == 'p2-p4' else ('0', '1', '2', '3')
        feats = self.det.backbone.fpn(OrderedDict(zip(names, (z0, z1, z2, z3))))
        proposals, _ = self.det.rpn(images, feats)
        detections, _ = self.det.roi_heads(feats, proposals, images.image_sizes)
        detections = self.transform.postprocess(detections, images.image_sizes, original_sizes)[0]
        tick('detection')
        seg_logits = F.interpolate(self.seg.classifier(z3), size=x.shape[-2:], mode='bilinear',
                                   align_corners=False)
        mask = seg_logits.argmax(1)[0]
        tick('segmentation')
        return {'images': images, 'original': original_sizes[0], 'y': y, 'y_hat': y_hat, 'strings': strings,
                'logits': logits[0], 'detections': detections, 'seg_logits': seg_logits, 'mask': mask}


class StageClock:
    def __init__(self):
        self.times, self.last = {}, None

    def __call__(self, stage):
        now = time.perf_counter()
        if stage is not None:
            self.times[stage] = self.times.get(stage, 0.0) + (now - self.last) * 1000
        self.last = now


def report(runtime, path, pixels, out, args):
    images = out['images']
    y = out['y']
    medians = runtime.eb._get_medians().detach().reshape(-1)
    offsets = (y - medians.reshape(1, -1, 1, 1))[0]  # y - m in float32, as CompressAI's quantize computes it
    symbols_hat = torch.round(out['y_hat'][0] - medians.reshape(-1, 1, 1))
    exact = torch.equal(out['y_hat'][0], torch.round(offsets) + medians.reshape(-1, 1, 1))
    frac = offsets - torch.floor(offsets)
    tie_distance = (frac - 0.5).abs()
    data = out['strings'][0]
    logits = out['logits']
    probabilities = torch.softmax(logits, 0)
    top = torch.topk(logits, 5)
    det = out['detections']
    mask = out['mask'].to(torch.uint8).numpy()
    counts = np.bincount(mask.reshape(-1), minlength=21)
    ph, pw = images.tensors.shape[-2:]
    (rh, rw), (oh, ow) = images.image_sizes[0], out['original']
    return {
        'file': os.path.basename(path),
        'reference': {'torch': torch.__version__, 'resizeRule': args.resize_rule, 'roiLevels': args.roi_levels,
                      'threads': torch.get_num_threads(),
                      'checkpoints': {'classification': args.classification, 'detection': args.detection,
                                      'segmentation': args.segmentation}},
        'image': {'width': ow, 'height': oh, 'pixelsSha256': pc.sha256(pixels.tobytes())},
        'input': {'width': rw, 'height': rh, 'paddedWidth': int(pw), 'paddedHeight': int(ph)},
        'latent': {'channels': int(y.shape[1]), 'height': int(y.shape[2]), 'width': int(y.shape[3]),
                   'medians': medians.tolist(),
                   'offsetsFloat32B64': pc.b64(offsets.contiguous().numpy().astype('<f4').tobytes()),
                   'symbolMin': int(symbols_hat.min()), 'symbolMax': int(symbols_hat.max()),
                   'decompressMatchesRoundFormula': bool(exact),
                   'nearTies1e-4': int((tie_distance < 1e-4).sum()),
                   'minTieDistance': float(tie_distance.min())},
        'compressedBytes': len(data),
        'compressedSha256': pc.sha256(data),
        'compressedB64': pc.b64(data),
        'classification': {
            'top5': [{'index': int(i), 'label': runtime.imagenet[int(i)], 'logit': float(v),
                      'probability': float(probabilities[int(i)])} for v, i in zip(top.values, top.indices)],
            'logits': [float(v) for v in logits]},
        'detection': [{'box': [float(v) for v in box], 'score': float(score), 'label': int(label),
                       'name': runtime.coco[int(label)]}
                      for box, score, label in zip(det['boxes'], det['scores'], det['labels'])],
        'segmentation': {'width': int(pw), 'height': int(ph), 'maskSize': 'padded',
                         'maskUint8B64': pc.b64(mask.tobytes()),
                         'classPixels': {str(i): int(n) for i, n in enumerate(counts) if n},
                         'logitsMaxAbs': float(out['seg_logits'].abs().max())},
    }


def time_stages(runtime, image, args, threads):
    torch.set_num_threads(threads)
    runtime.forward(image, args.resize_rule, args.roi_levels)  # warm-up
    runs = []
    for _ in range(args.timing_repeats):
        clock = StageClock()
        start = time.perf_counter()
        runtime.forward(image, args.resize_rule, args.roi_levels, clock)
        clock.times['total'] = (time.perf_counter() - start) * 1000
        runs.append(clock.times)
    return {stage: statistics.median(r[stage] for r in runs) for stage in STAGES + ('total',)}


def main():
    args = parse_args()
    pc.set_backbone(args.backbone)
    paths = pc.list_images(args.images)
    if not paths:
        sys.exit('no images')
    os.makedirs(args.output_dir, exist_ok=True)
    default_threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    runtime = LadonRuntime(args.classification, args.detection, args.segmentation)
    for task, mismatch in runtime.load_report.items():
        legacy = all('entropy_bottleneck.' in k for k in mismatch['unexpected'] + mismatch['missing'])
        print(f'{task} checkpoint loaded with strict=False: {len(mismatch["unexpected"])} unexpected, '
              f'{len(mismatch["missing"])} missing keys' +
              (' (CompressAI 1.2.2 entropy-bottleneck names, skipped as in the Ladon runtime; the identical '
               'bottleneck comes from the classification load)' if mismatch['unexpected'] and legacy else ''))
    timing_table = []
    for index, path in enumerate(paths):
        pixels, image = pc.load_image(path)
        with torch.inference_mode():
            out = runtime.forward(image, args.resize_rule, args.roi_levels)
            result = report(runtime, path, pixels, out, args)
            if args.timings and index < args.timing_images:
                result['timingsMs'] = {}
                for threads in (int(t) for t in args.timing_threads.split(',')):
                    result['timingsMs'][f'threads{threads}'] = time_stages(runtime, image, args, threads)
                torch.set_num_threads(args.threads or default_threads)
                timing_table.append((result['file'], result['timingsMs']))
        stem = os.path.splitext(os.path.basename(path))[0]
        target = os.path.join(args.output_dir, stem + '.json')
        with open(target, 'w') as f:
            json.dump(result, f)
        det = result['detection']
        lat = result['latent']
        print(f"{result['file']}: {result['image']['width']}x{result['image']['height']} -> "
              f"{result['input']['width']}x{result['input']['height']} (padded {result['input']['paddedWidth']}x"
              f"{result['input']['paddedHeight']}), latent {lat['channels']}x{lat['height']}x{lat['width']}, "
              f"{result['compressedBytes']} bytes ({result['compressedBytes'] / 1024:.1f} KiB), symbols "
              f"[{lat['symbolMin']}, {lat['symbolMax']}], near .5 ties {lat['nearTies1e-4']}; top-1 "
              f"{result['classification']['top5'][0]['label']} ({result['classification']['top5'][0]['logit']:.2f}); "
              f"{len(det)} detections ({sum(d['score'] > 0.5 for d in det)} > 0.5); "
              f"{len(result['segmentation']['classPixels'])} segmentation classes -> {target}")
        if not lat['decompressMatchesRoundFormula']:
            print('  WARNING: CompressAI decompress differs from round(y - m) + m')
    if timing_table:
        print('\nPyTorch reference timings (median ms per stage, batch of 1, CPU):')
        for name, timings in timing_table:
            columns = list(timings)
            print(f'  {name}: ' + ' | '.join(columns))
            for stage in STAGES + ('total',):
                print(f'    {stage:15s}' + ''.join(f'{timings[c][stage]:10.1f}' for c in columns))


if __name__ == '__main__':
    main()
