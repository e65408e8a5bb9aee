#!/usr/bin/env python3
"""Builds full-size ResNet-50 or ResNeSt-269e Ladon per-task checkpoints (classification, detection, segmentation)
with random but non-degenerate weights, using the REAL sc2bench 0.1.1 model builders, and saves them in
torchdistill's checkpoint layout.

    /root/.cache/ladon-ref-venv/bin/python Scripts/parity/make_checkpoints.py [--output-dir /tmp/ladon-parity]
    /root/.cache/ladon-resnest-venv/bin/python Scripts/parity/make_checkpoints.py --backbone resnest269e \
        --output-dir /tmp/ladon-parity-resnest269e

ResNeSt-269e: the detection body uses FrozenBatchNorm2d (as sc2bench's faster_rcnn_model builds it), so its file has
no num_batches_tracked in the body and its BN tensors equal the classification file's.

Weights are calibrated on real photographs (Scripts/parity/images by default) so that activations stay O(1)
through the ResNet body, the latent codes to realistic kilobytes, the detection head yields several detections per
photo above 0.05 (a few above 0.5) and the segmentation head predicts several classes. The encoder, decoder, GDN,
entropy bottleneck and all conv weights are identical in the three files; the shared-body BatchNorm running
statistics differ slightly between them (ladon-reference §1.2-2), the segmentation file holding the calibrated ones.
"""
import argparse
import functools
import os
import sys
from collections import OrderedDict

import parity_common as pc  # noqa: F401  (also silences warnings before torch is imported)
import torch
import torch.nn.functional as F
from torch import nn

print = functools.partial(print, flush=True)  # noqa: A001  (progress through pipes)
SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
FILE_NAMES = {'classification': 'classification.pt', 'detection': 'detection.pt', 'segmentation': 'segmentation.pt'}
EXPECTED_KEYS = {'resnet50': {'classification': 304, 'detection': 332, 'segmentation': 354},
                 'resnest269e': {'classification': 2392, 'detection': 2073, 'segmentation': 2442}}
SHARED_BODY_KEYS = {'resnet50': {'classification': 302, 'detection': 302, 'segmentation': 302},
                    'resnest269e': {'classification': 2390, 'detection': 2043, 'segmentation': 2390}}
PREFIXES = {'classification': '', 'detection': 'backbone.body.', 'segmentation': 'backbone.'}
# COCO ids that get a strong classifier row, so a few classes win (person, car, dog, cat, bird, bus, ...).
ACTIVE_COCO_CLASSES = [1, 3, 6, 16, 17, 18, 19, 44, 47, 52, 58, 62, 64, 72]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--output-dir', default='/tmp/ladon-parity')
    parser.add_argument('--backbone', choices=pc.BACKBONES, default='resnet50')
    parser.add_argument('--images', nargs='+', default=[os.path.join(SCRIPT_DIR, 'images')],
                        help='calibration photographs (files or directories)')
    parser.add_argument('--seed', type=int, default=20250224)
    parser.add_argument('--eb-keys', choices=['legacy', 'modern'], default='legacy',
                        help='entropy-bottleneck key names: legacy = CompressAI 1.2.2 `_matrix0` (as the released '
                             'checkpoints), modern = `matrices.0`')
    parser.add_argument('--eb-steps', type=int, default=400, help='entropy-bottleneck density fitting steps')
    return parser.parse_args()


# ---------------------------------------------------------------------------------------------- building
def build_models():
    from sc2bench.models.detection.rcnn import faster_rcnn_model
    from sc2bench.models.registry import load_classification_model
    from sc2bench.models.segmentation.deeplabv3 import deeplabv3_model
    cls = load_classification_model(pc.classification_config(), torch.device('cpu'), False)
    det = faster_rcnn_model(pc.detection_backbone_config(), **pc.detection_model_kwargs())
    seg = deeplabv3_model(pc.segmentation_backbone_config(), **pc.segmentation_model_kwargs())
    return cls.eval(), det.eval(), seg.eval()


def uniform(shape, low, high, gen):
    return torch.rand(shape, generator=gen) * (high - low) + low


def randomize_gdn(gdn, gen):
    """Random GDN/IGDN with a dense, non-symmetric gamma; 2% of gamma entries stored negative so the lower bound
    clamps them. Encoder GDNs normalise strongly (small beta, large gamma: contrast-insensitive latents), decoder
    IGDNs stay close to linear (beta ~1, small gamma), so feature magnitudes vary little between photos."""
    channels = gdn.beta.shape[0]
    pedestal = gdn.beta_reparam.pedestal
    if gdn.inverse:
        beta_eff = uniform((channels,), 0.5, 1.5, gen)
        gamma_eff = uniform((channels, channels), 0.0, 0.2 / channels, gen)
        gamma_eff += torch.diag(uniform((channels,), 0.01, 0.05, gen))
    else:
        beta_eff = uniform((channels,), 0.02, 0.1, gen)
        gamma_eff = uniform((channels, channels), 0.0, 4.0 / channels, gen)
        gamma_eff += torch.diag(uniform((channels,), 0.1, 0.4, gen))
    with torch.no_grad():
        gdn.beta.copy_(torch.sqrt(beta_eff + pedestal))
        gamma = torch.sqrt(gamma_eff + pedestal)
        clamp = torch.rand((channels, channels), generator=gen) < 0.02
        gamma[clamp] = -gamma[clamp]
        gdn.gamma.copy_(gamma)


def randomize_bn_affine(module, gen, weight=(0.6, 1.4), bias=(-0.3, 0.3)):
    for name, bn in module.named_modules():
        if isinstance(bn, nn.BatchNorm2d):
            low, high = (0.2, 0.6) if name.endswith('bn3') else weight
            with torch.no_grad():
                bn.weight.copy_(uniform(bn.weight.shape, low, high, gen))
                bn.bias.copy_(uniform(bn.bias.shape, *bias, gen))


def calibrate_bn(module, run):
    """Sets every BatchNorm2d's running stats to the batch statistics of `run()` (train-mode pass, momentum None)."""
    bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [(bn.momentum, bn.training) for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    with torch.no_grad():
        run()
    for bn, (momentum, training) in zip(bns, saved):
        bn.momentum = momentum
        bn.train(training)


def rescale_output(module, run, target_std, per_channel=False):
    """Scales a conv/linear layer's weight (and bias) so its outputs over every call in `run()` have the given
    std (per output channel if asked)."""
    outputs = []
    hook = module.register_forward_hook(
        lambda m, i, o: outputs.append(o.detach().transpose(0, 1).reshape(o.shape[1], -1)))
    with torch.no_grad():
        run()
    hook.remove()
    out = torch.cat(outputs, dim=1)
    if per_channel:
        factor = target_std / out.std(dim=1).clamp_min(1e-12)
    else:
        factor = torch.tensor(target_std / max(out.std().item(), 1e-12))
    with torch.no_grad():
        shape = (-1,) + (1,) * (module.weight.dim() - 1)
        module.weight.mul_(factor.reshape(shape) if factor.dim() else factor)
        if module.bias is not None:
            module.bias.mul_(factor)


# ---------------------------------------------------------------------------------------------- shared parts
def latent(bottleneck, x):
    return bottleneck.encoder(x)


def dequantized(bottleneck, y):
    medians = bottleneck.entropy_bottleneck._get_medians().detach().reshape(1, -1, 1, 1)
    return torch.round(y - medians) + medians


def body_features(cls, x):
    """Per-task feature dict {'1': decoder, '2': layer2, '3': layer3, '4': layer4} (eval-mode quantisation)."""
    z = cls.bottleneck_layer.decoder(dequantized(cls.bottleneck_layer, latent(cls.bottleneck_layer, x)))
    feats = OrderedDict([('1', z)])
    for key, layer in (('2', cls.layer2), ('3', cls.layer3), ('4', cls.layer4)):
        z = layer(z)
        feats[key] = z
    return feats


def fit_entropy_bottleneck(eb, y, steps, gen):
    """Fits the factorized density to the actual latents (likelihood of y + U(-.5,.5)), then the quantiles."""
    samples = y.detach().transpose(0, 1).reshape(y.shape[1], -1)
    eb.train()
    density_params = [p for n, p in eb.named_parameters() if n != 'quantiles']
    optimizer = torch.optim.Adam(density_params, lr=0.02)
    for step in range(steps):
        idx = torch.randint(0, samples.shape[1], (16384,), generator=gen)
        _, likelihoods = eb(samples[:, idx].reshape(1, samples.shape[0], 1, -1))
        loss = -torch.log2(likelihoods).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    aux_optimizer = torch.optim.Adam([eb.quantiles], lr=0.05)
    for step in range(3000):
        aux = eb.loss()
        aux_optimizer.zero_grad()
        aux.backward()
        aux_optimizer.step()
    eb.eval()
    return loss.item(), aux.item()


def split_attention_layers(body):
    """The timm SplitAttn modules of a ResNeSt body (none in ResNet-50)."""
    return [m for m in body.modules() if type(m).__name__ == 'SplitAttn']


def recalibrate_per_image(body, bottleneck, singles):
    """ResNeSt: each split attention averages over the image's own padded map, which a batch padded to the largest
    photo does not reproduce, and its bn1 sees one value per image. Refits the statistics on the photos one by one at
    their own padded sizes, as inference runs them: every attention bn1 from the per-image fc1 outputs (eval mode), the
    other BatchNorms from per-image batch statistics with those bn1s fixed, then the bn1s again."""
    attention = split_attention_layers(body)

    def run(x):
        z = bottleneck.decoder(dequantized(bottleneck, latent(bottleneck, x)))
        for layer in body:
            z = layer(z)

    def refit_attention_bn():
        outputs = [[] for _ in attention]
        hooks = [a.fc1.register_forward_hook(lambda m, i, o, k=k: outputs[k].append(o.detach().flatten(1)))
                 for k, a in enumerate(attention)]
        body.eval()
        with torch.no_grad():
            for x in singles:
                run(x)
        for h in hooks:
            h.remove()
        for a, out in zip(attention, outputs):
            values = torch.cat(out)
            var = values.var(0, unbiased=False)
            a.bn1.running_mean.copy_(values.mean(0))
            a.bn1.running_var.copy_(var.clamp_min(0.25 * var.mean().item() + 1e-3))

    refit_attention_bn()
    fixed = {id(a.bn1) for a in attention}
    bns = [m for m in body.modules() if isinstance(m, nn.BatchNorm2d) and id(m) not in fixed]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    with torch.no_grad():
        for x in singles:
            run(x)
    for bn in bns:
        bn.momentum = 0.1
    body.eval()
    refit_attention_bn()


def calibrate_shared(cls, batch, args, gen, singles=None):
    bottleneck = cls.bottleneck_layer
    for module in list(bottleneck.encoder) + list(bottleneck.decoder):
        if module.__class__.__name__ == 'GDN1':
            randomize_gdn(module, gen)
    # Latent channels get log-uniform spreads in [0.25, 3] (realistic kilobytes after coding).
    with torch.no_grad():
        y = latent(bottleneck, batch)
        std = y.transpose(0, 1).reshape(y.shape[1], -1).std(dim=1)
        target = torch.exp(uniform((y.shape[1],), torch.log(torch.tensor(0.25)), torch.log(torch.tensor(3.0)), gen))
        bottleneck.encoder[4].weight.mul_((target / std).reshape(-1, 1, 1, 1))
        y = latent(bottleneck, batch)
    nll, aux = fit_entropy_bottleneck(bottleneck.entropy_bottleneck, y, args.eb_steps, gen)
    eb = bottleneck.entropy_bottleneck
    with torch.no_grad():
        # Narrow two channels' quantile range so some symbols fall outside the CDF and take the bypass path.
        medians = eb.quantiles[:, 0, 1].clone()
        for c in (3, 17):
            spread = y[:, c].std().item()
            eb.quantiles[c, 0, 0] = medians[c] - 1.5 * spread
            eb.quantiles[c, 0, 2] = medians[c] + 1.5 * spread
    bottleneck.update(force=True)
    print(f'entropy bottleneck: density fit {nll:.3f} bits/symbol, aux loss {aux:.3g}, '
          f'_quantized_cdf {tuple(eb._quantized_cdf.shape)}, latent std per channel '
          f'{y.transpose(0, 1).reshape(y.shape[1], -1).std(dim=1).min().item():.2f}..'
          f'{y.transpose(0, 1).reshape(y.shape[1], -1).std(dim=1).max().item():.2f}')

    body = nn.ModuleList([cls.layer2, cls.layer3, cls.layer4])
    randomize_bn_affine(body, gen)

    def run_body():
        z = bottleneck.decoder(dequantized(bottleneck, latent(bottleneck, batch)))
        for layer in body:
            z = layer(z)
    calibrate_bn(body, run_body)
    if singles and split_attention_layers(body):
        recalibrate_per_image(body, bottleneck, singles)
    with torch.no_grad():
        feats = body_features(cls, batch)
    for key, name in (('1', 'decoder'), ('2', 'layer2'), ('3', 'layer3'), ('4', 'layer4')):
        f = feats[key]
        print(f'  {name:8s} {tuple(f.shape[1:])}: mean {f.mean().item():.3f} std {f.std().item():.3f} '
              f'max|.| {f.abs().max().item():.2f}')
    return feats


def calibrate_classifier(cls, feats, gen):
    pooled = torch.flatten(F.adaptive_avg_pool2d(feats['4'], 1), 1)
    mean = pooled.mean(dim=0)
    with torch.no_grad():
        weight = torch.randn(cls.fc.weight.shape, generator=gen)
        spread = (pooled - mean) @ weight.t()
        weight *= 2.5 / spread.std().item()
        cls.fc.weight.copy_(weight)
        cls.fc.bias.copy_(-(weight @ mean) + torch.randn(cls.fc.bias.shape, generator=gen))
        logits = cls.fc(pooled)
    print(f'classification logits: std {logits.std().item():.2f}, range per image '
          f'{(logits.max(1).values - logits.min(1).values).min().item():.1f}..'
          f'{(logits.max(1).values - logits.min(1).values).max().item():.1f}, top-1 {logits.argmax(1).tolist()}')


# ---------------------------------------------------------------------------------------------- detection
def fpn_input(feats):
    return OrderedDict((k, feats[k]) for k in ('1', '2', '3', '4'))


def calibrate_detection(det, per_image, gen):
    """per_image: list of (ImageList, original size, body features) for single images."""
    fpn, rpn, roi = det.backbone.fpn, det.rpn, det.roi_heads
    with torch.no_grad():
        for conv in list(fpn.inner_blocks) + list(fpn.layer_blocks):
            conv[0].bias.copy_(torch.randn(conv[0].bias.shape, generator=gen) * 0.1)
    run_fpn = lambda: [fpn(fpn_input(f)) for _, _, f in per_image]  # noqa: E731
    for i in reversed(range(4)):  # top-down order, so each scale sees its final inputs
        rescale_output(fpn.inner_blocks[i][0], run_fpn, 1.0)
        rescale_output(fpn.layer_blocks[i][0], run_fpn, 1.0)
    with torch.no_grad():
        fpn_feats = [fpn(fpn_input(f)) for _, _, f in per_image]
        head = rpn.head
        nn.init.kaiming_normal_(head.conv[0][0].weight, nonlinearity='relu')
        head.conv[0][0].bias.copy_(torch.randn(head.conv[0][0].bias.shape, generator=gen) * 0.1)
        head.cls_logits.weight.copy_(torch.randn(head.cls_logits.weight.shape, generator=gen))
        head.cls_logits.bias.copy_(torch.randn(head.cls_logits.bias.shape, generator=gen) * 0.5 - 1.0)
        head.bbox_pred.weight.copy_(torch.randn(head.bbox_pred.weight.shape, generator=gen))
        head.bbox_pred.bias.zero_()
    run_rpn_head = lambda: [head(list(f.values())) for f in fpn_feats]  # noqa: E731
    rescale_output(head.conv[0][0], run_rpn_head, 1.0)
    rescale_output(head.cls_logits, run_rpn_head, 2.0)
    rescale_output(head.bbox_pred, run_rpn_head, 0.15)

    with torch.no_grad():
        proposals = [rpn(images, f)[0] for (images, _, _), f in zip(per_image, fpn_feats)]
        pooled = [roi.box_roi_pool(f, p, images.image_sizes)
                  for (images, _, _), f, p in zip(per_image, fpn_feats, proposals)]
        for fc in (roi.box_head.fc6, roi.box_head.fc7):
            nn.init.kaiming_normal_(fc.weight, nonlinearity='relu')
            fc.bias.copy_(torch.randn(fc.bias.shape, generator=gen) * 0.1)
    rescale_output(roi.box_head.fc6, lambda: [roi.box_head(p) for p in pooled], 1.0)
    rescale_output(roi.box_head.fc7, lambda: [roi.box_head(p) for p in pooled], 1.0)
    predictor = roi.box_predictor
    with torch.no_grad():
        box_feats = [roi.box_head(p) for p in pooled]
        predictor.bbox_pred.weight.copy_(torch.randn(predictor.bbox_pred.weight.shape, generator=gen))
        predictor.bbox_pred.bias.zero_()
    rescale_output(predictor.bbox_pred, lambda: [predictor(b) for b in box_feats], 0.5)

    # cls_score: active classes get strong rows; search a global scale and background bias for
    # several detections > 0.05 per photo and a few > 0.5.
    activity = torch.full((91,), 0.25)
    activity[ACTIVE_COCO_CLASSES] = 1.0
    activity[0] = 0.5
    base = torch.randn(predictor.cls_score.weight.shape, generator=gen) * activity[:, None]
    feat_all = torch.cat(box_feats)
    feat_mean = feat_all.mean(0)
    # Rows orthogonal to the between-photo differences of the mean RoI feature: scores then follow the variation
    # between RoIs of one photo, so every photo gets some detections instead of one photo getting them all.
    shifts = torch.stack([b.mean(0) - feat_mean for b in box_feats], dim=1)
    basis, _ = torch.linalg.qr(shifts)
    base -= (base @ basis) @ basis.t()
    base /= ((feat_all - feat_mean) @ base.t()).std().item()
    base_bias = torch.randn((91,), generator=gen) * 0.3
    best = None
    with torch.no_grad():
        regressions = [predictor.bbox_pred(b) for b in box_feats]
        centred = [(b - feat_mean) @ base.t() for b in box_feats]
        for scale in (0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6):
            for background in range(0, 21):
                bias = base_bias.clone()
                bias[0] += background
                counts = []
                for (images, _, _), c, reg, props in zip(per_image, centred, regressions, proposals):
                    _, scores, _ = roi.postprocess_detections(c * scale + bias, reg, props, images.image_sizes)
                    counts.append(((scores[0] > 0.05).sum().item(), (scores[0] > 0.5).sum().item()))
                # per photo: 3..40 detections above 0.05 and 1..8 above 0.5
                cost = sum(max(0, 3 - n05) + max(0, n05 - 40) + 4 * (max(0, 1 - n50) + max(0, n50 - 8))
                           for n05, n50 in counts)
                if best is None or cost < best[0]:
                    best = (cost, scale, background, counts)
        _, scale, background, counts = best
        predictor.cls_score.weight.copy_(base * scale)
        bias = base_bias - scale * (base @ feat_mean)
        bias[0] += background
        predictor.cls_score.bias.copy_(bias)
    print(f'detection: cls_score scale {scale}, background bias +{background}; detections (>0.05, >0.5) per '
          f'calibration photo {counts}')


# ---------------------------------------------------------------------------------------------- segmentation
def calibrate_segmentation(seg, feats, gen):
    """DeepLab head: calibrated BN; final conv with a few strong classes and a background bias chosen so each
    photo gets a handful of classes (median ~5 at the 1/32 resolution)."""
    classifier, aux = seg.classifier, seg.aux_classifier
    randomize_bn_affine(classifier, gen, weight=(0.6, 1.4), bias=(-0.2, 0.2))
    randomize_bn_affine(aux, gen, weight=(0.6, 1.4), bias=(-0.2, 0.2))
    calibrate_bn(classifier, lambda: classifier(feats['4']))
    calibrate_bn(aux, lambda: aux(feats['3']))
    activity = torch.full((21,), 0.3)
    activity[0] = 1.0
    activity[torch.randperm(20, generator=gen)[:6] + 1] = 1.0
    for head, x in ((classifier, feats['4']), (aux, feats['3'])):
        last = head[4]
        with torch.no_grad():
            last.weight.copy_(torch.randn(last.weight.shape, generator=gen) * activity.reshape(-1, 1, 1, 1))
            last.bias.zero_()
        rescale_output(last, lambda h=head, x=x: h(x), 3.0)
    best = None
    with torch.no_grad():
        base_bias = torch.randn((21,), generator=gen) * 0.3
        logits = classifier(feats['4'])
        for background in [b * 0.5 for b in range(0, 17)]:
            bias = base_bias.clone()
            bias[0] += background
            classes = [len(set((logits[i] + bias.reshape(-1, 1, 1)).argmax(0).flatten().tolist()))
                       for i in range(logits.shape[0])]
            cost = abs(sorted(classes)[len(classes) // 2] - 5) + 10 * sum(1 for c in classes if c < 2)
            if best is None or cost < best[0]:
                best = (cost, background, bias)
        _, background, bias = best
        classifier[4].bias.copy_(bias)
        aux[4].bias.copy_(bias)
        logits = classifier(feats['4'])
    classes = [sorted(set(logits[i].argmax(0).flatten().tolist())) for i in range(logits.shape[0])]
    print(f'segmentation: logits std {logits.std().item():.2f}, max|.| {logits.abs().max().item():.1f}, background '
          f'bias +{background}; classes at 1/32 per photo {classes}')


# ---------------------------------------------------------------------------------------------- saving
def perturb_bn_stats(state_dict, prefix, gen, relative):
    """Small perturbation of the shared body's BN running stats (as separate training runs would leave)."""
    changed = 0
    for key in list(state_dict):
        if not key.startswith(prefix + 'layer'):
            continue
        if key.endswith('running_var'):
            var = state_dict[key]
            mean_key = key[:-len('running_var')] + 'running_mean'
            std = var.sqrt()
            state_dict[mean_key] = state_dict[mean_key] + relative * std * torch.randn(var.shape, generator=gen)
            state_dict[key] = var * (1 + relative * uniform(var.shape, -1.0, 1.0, gen))
            changed += 2
        elif key.endswith('num_batches_tracked'):
            state_dict[key] = state_dict[key] + int(torch.randint(1000, 50000, (1,), generator=gen))
    return changed


def legacy_state_dict(state_dict):
    """Renames entropy-bottleneck keys to CompressAI 1.2.2's and orders them as 1.2.2 modules register them."""
    metadata = getattr(state_dict, '_metadata', None)
    renamed = OrderedDict((pc.to_legacy_eb_key(k), v) for k, v in state_dict.items())
    eb_keys = [k for k in renamed if '.entropy_bottleneck.' in k]
    prefix = eb_keys[0].split('entropy_bottleneck.')[0] + 'entropy_bottleneck.'
    order = [f'{name}{i}' for i in range(5) for name in ('_matrix', '_bias', '_factor') if not
             (name == '_factor' and i == 4)]
    order += ['quantiles', '_offset', '_quantized_cdf', '_cdf_length', 'target', 'likelihood_lower_bound.bound']
    result = OrderedDict((prefix + name, renamed[prefix + name]) for name in order)
    result.update((k, v) for k, v in renamed.items() if k not in result)
    if metadata is not None:
        result._metadata = metadata
    return result


def checkpoint(state_dict, task, args):
    optimizer = {'state': {0: {'momentum_buffer': torch.zeros(4)}},
                 'param_groups': [{'lr': 0.001, 'momentum': 0.9, 'dampening': 0, 'weight_decay': 0.0001,
                                   'nesterov': False, 'maximize': False, 'foreach': None, 'params': [0, 1, 2]}]}
    namespace = argparse.Namespace(config=f'configs/parity/{task}.yaml', device='cuda', log=None, start_epoch=0,
                                   seed=args.seed, test_only=False, world_size=1, dist_url='env://',
                                   parity_note='random weights from Scripts/parity/make_checkpoints.py')
    return {'model': state_dict, 'optimizer': optimizer, 'best_value': 0.5, 'lr_scheduler': None,
            'config': {'models': {'model': {'key': task}}}, 'args': namespace}


def verify(paths, args):
    from sc2bench.models.registry import load_classification_model
    loaded = {task: pc.load_checkpoint(path) for task, path in paths.items()}
    ok = True
    for task, ckpt in loaded.items():
        keys = list(ckpt['model'].keys())
        prefix = PREFIXES[task]
        body = [k for k in keys if k.startswith(prefix + 'bottleneck_layer.') or
                any(k.startswith(prefix + f'layer{i}.') for i in (2, 3, 4))]
        print(f'{task:15s} {len(keys)} entries ({len(body)} shared-body), expected {EXPECTED_KEYS[pc.BACKBONE][task]}; '
              f'top-level keys {sorted(ckpt.keys())}')
        ok &= len(keys) == EXPECTED_KEYS[pc.BACKBONE][task] and len(body) == SHARED_BODY_KEYS[pc.BACKBONE][task]
    # Shared tensors identical except BN running stats / num_batches_tracked, which must differ.
    shared = [k for k in loaded['classification']['model'] if not k.startswith('fc.')]
    same, differ = 0, 0
    frozen_det = pc.BACKBONE == 'resnest269e'  # FrozenBatchNorm2d body: no counters, statistics equal cls's
    for key in shared:
        tasks = ('classification', 'segmentation') if frozen_det and key.endswith('num_batches_tracked') \
            else ('classification', 'detection', 'segmentation')
        tensors = [loaded[t]['model'][PREFIXES[t] + key] for t in tasks]
        identical = all(torch.equal(tensors[0], t) for t in tensors[1:])
        if frozen_det and len(tasks) == 3:
            ok &= torch.equal(tensors[0], tensors[1])
        is_stat = key.endswith(('running_mean', 'running_var', 'num_batches_tracked'))
        if is_stat:
            differ += 0 if identical else 1
            ok &= not identical
        else:
            same += 1 if identical else 0
            ok &= identical
    print(f'shared body: {same} tensors identical in all three, {differ} BN statistics differ between files')
    # The real loaders accept the files.
    model = load_classification_model(pc.classification_config(paths['classification']), torch.device('cpu'), False)
    print(f'sc2bench load_classification_model(strict=True) on the classification file: ok '
          f'({type(model).__name__}, _quantized_cdf {tuple(model.bottleneck_layer.entropy_bottleneck._quantized_cdf.shape)})')
    if not ok:
        sys.exit('checkpoint verification FAILED')
    print('verification passed')


def main():
    args = parse_args()
    pc.set_backbone(args.backbone)
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    os.makedirs(args.output_dir, exist_ok=True)
    paths = pc.list_images(args.images)
    if not paths:
        sys.exit('no calibration images found')
    print(f'building {args.backbone} models (sc2bench splittable_{"resnet" if args.backbone == "resnet50" else "resnest"}'
          f' / faster_rcnn_model / deeplabv3_model, pretrained=False)')
    cls, det, seg = build_models()

    transform = pc.make_transform()
    tensors = [pc.load_image(p)[1] for p in paths]
    batch, _ = pc.preprocess(tensors, transform, 'torchvision-0.13')
    print(f'calibrating on {len(paths)} photos, batch {tuple(batch.tensors.shape)}')
    singles = [pc.preprocess([t], transform, 'torchvision-0.13')[0].tensors for t in tensors]
    feats = calibrate_shared(cls, batch.tensors, args, gen, singles)
    calibrate_classifier(cls, feats, gen)

    shared = OrderedDict((k, v) for k, v in cls.state_dict().items() if not k.startswith('fc.'))
    for module in (det.backbone.body, seg.backbone):
        eb = module._modules['bottleneck_layer'].entropy_bottleneck
        for name in ('_quantized_cdf', '_offset', '_cdf_length'):
            getattr(eb, name).resize_(shared['bottleneck_layer.entropy_bottleneck.' + name].shape)
        module.load_state_dict(OrderedDict(shared), strict=True)  # a copy: sc2bench pops entropy-model keys

    per_image = []
    with torch.no_grad():
        for t in tensors:
            images, original = pc.preprocess([t], transform, 'torchvision-0.13')
            per_image.append((images, original, body_features(cls, images.tensors)))
    print('calibrating the detection head (FPN, RPN, box head, predictor)')
    calibrate_detection(det, per_image, gen)
    calibrate_segmentation(seg, feats, gen)

    # Compressed sizes per photo at its own padded size.
    eb = cls.bottleneck_layer.entropy_bottleneck
    with torch.no_grad():
        sizes = [len(eb.compress(latent(cls.bottleneck_layer, im.tensors))[0]) for im, _, _ in per_image]
    print('compressed latent per photo: ' + ', '.join(f'{os.path.basename(p)} {n / 1024:.1f} KiB'
                                                      for p, n in zip(paths, sizes)))

    state = {'classification': cls.state_dict(), 'detection': det.state_dict(), 'segmentation': seg.state_dict()}
    changed = perturb_bn_stats(state['classification'], '', gen, 0.03)
    if pc.BACKBONE == 'resnest269e':
        # Frozen BN in the detection body: its statistics are the classification file's.
        for key in state['detection']:
            if key.startswith('backbone.body.layer') and key.endswith(('running_mean', 'running_var')):
                state['detection'][key] = state['classification'][key[len('backbone.body.'):]].clone()
    else:
        perturb_bn_stats(state['detection'], 'backbone.body.', gen, 0.02)
    print(f'perturbed {changed} shared-body BN statistics in the classification and detection files'
          + (' (detection: frozen BN, set to the classification file\'s)' if pc.BACKBONE == 'resnest269e' else ''))
    written = {}
    for task, sd in state.items():
        if args.eb_keys == 'legacy':
            sd = legacy_state_dict(sd)
        path = os.path.join(args.output_dir, FILE_NAMES[task])
        torch.save(checkpoint(sd, task, args), path)
        written[task] = path
        print(f'wrote {path} ({os.path.getsize(path) / 2**20:.1f} MiB)')
    verify(written, args)


if __name__ == '__main__':
    main()
