#!/usr/bin/env python3
"""PyTorch device half in front of the Swift edge server (`ladon serve`).

    python Scripts/clients/python_client.py IMAGE... --checkpoint LADON.pt [--server http://127.0.0.1:8080]
        [--model-id HEX32 | --fetch-model-id] [--token-file F] [--out-packet FILE]
        [--compare-local --classification C.pt --detection D.pt --segmentation S.pt]

For each image: the reference preprocessing (GeneralizedRCNNTransform(416, 416) with the torchvision-0.13
float32 resize rule, Scripts/parity/parity_common.py), the sc2bench encoder of the checkpoint's
FPBasedResNetBottleneck and CompressAI's EntropyBottleneck.compress; the string is wrapped in a Ladon latent
packet (docs/wire-format.md) and POSTed to `/v1/infer` as `application/vnd.ladon.packet`.

--checkpoint takes any per-task Ladon checkpoint in torchdistill layout (classification, detection or
segmentation): only its `bottleneck_layer` tensors are used. The packet's model id is fetched from
`GET /v1/model` (`modelId`) by default so the server accepts it; `--model-id` gives it explicitly
(32 zeros = unknown, accepted by every server).

One JSON line per image on stdout: file, status (HTTP status, null when no answer), packetBytes, encodeMs
(image decode + preprocess + encoder + entropy coding), roundTripMs, serverTiming ({stage: ms} from the
`Server-Timing` header), and result (the server's answer) or error ({"code", "message"}).
With --compare-local the full PyTorch reference runtime (Scripts/parity/reference.py) also runs on the image
and `compare` says whether the server's top-5 class indices and number of detections equal the local ones
(and whether the local runtime coded the same bytes).

Exit status: 0 all requests answered 200 (and all comparisons equal), 1 a request failed, 2 every request
succeeded but a --compare-local comparison differed.
"""
import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'parity'))

import ldnp  # noqa: E402
import parity_common as pc  # noqa: E402  (also silences torchdistill's logging and warnings)
import torch  # noqa: E402

PACKET_TYPE = 'application/vnd.ladon.packet'
EB_QUANTILES = 'entropy_bottleneck.quantiles'


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     epilog='See the module docstring for the output format and exit status.')
    parser.add_argument('images', nargs='+', help='JPEG/PNG files or directories of them')
    parser.add_argument('--checkpoint', help='any per-task Ladon checkpoint (.pt); its bottleneck_layer is the '
                                             'encoder (default: --classification when given)')
    parser.add_argument('--server', default='http://127.0.0.1:8080', help='edge server URL')
    ident = parser.add_mutually_exclusive_group()
    ident.add_argument('--model-id', help='32 hex characters to put in the packet instead of asking the server')
    ident.add_argument('--fetch-model-id', action='store_true',
                       help='take the id from GET /v1/model (the default when --model-id is absent)')
    parser.add_argument('--token-file', help='file holding the bearer token the server expects')
    parser.add_argument('--out-packet', help='also write the packet here (with several images: FILE gets the '
                                             'image stem inserted, e.g. out.astronaut.ldnp)')
    parser.add_argument('--timeout', type=float, default=120.0, help='seconds per HTTP request')
    parser.add_argument('--resize-rule', choices=pc.RESIZE_RULES, default='torchvision-0.13')
    parser.add_argument('--mask', action='store_true', help='ask for the segmentation mask (?mask=png)')
    local = parser.add_argument_group('--compare-local (PyTorch reference runtime, Scripts/parity/reference.py)')
    local.add_argument('--compare-local', action='store_true',
                       help='also run the full PyTorch runtime and compare top-5 indices and detection counts')
    local.add_argument('--classification', help='classification checkpoint (.pt)')
    local.add_argument('--detection', help='detection checkpoint (.pt)')
    local.add_argument('--segmentation', help='segmentation checkpoint (.pt)')
    local.add_argument('--roi-levels', choices=['p2-p4', 'p2-p5'], default='p2-p4',
                       help='RoIAlign levels of the local runtime (p2-p4 matches Configs/ladon-resnet50.json)')
    args = parser.parse_args()
    args.checkpoint = args.checkpoint or args.classification
    if not args.checkpoint:
        parser.error('--checkpoint is required (or --classification)')
    if args.compare_local and not (args.classification and args.detection and args.segmentation):
        parser.error('--compare-local needs --classification, --detection and --segmentation')
    if not args.server.startswith(('http://', 'https://')):
        parser.error(f'--server must be a URL like http://HOST:PORT, got {args.server}')
    if args.model_id:
        try:
            args.model_id = ldnp.parse_model_id(args.model_id)
        except ValueError as error:
            parser.error(f'--model-id: {error}')
    return args


# ---------------------------------------------------------------------------------------------- device half
class DeviceEncoder:
    """The device half of a Ladon model: sc2bench's FPBasedResNetBottleneck encoder + CompressAI's entropy
    bottleneck, taken from a `splittable_resnet` built from the reference config (pretrained=False)."""

    def __init__(self, checkpoint, rule):
        from sc2bench.models.registry import load_classification_model
        model = load_classification_model(pc.classification_config(), torch.device('cpu'), False)
        ckpt = pc.load_checkpoint(checkpoint)
        state = ckpt['model'] if isinstance(ckpt, dict) and 'model' in ckpt else ckpt
        # bottleneck_layer.* (classification), backbone.body.bottleneck_layer.* (detection) or
        # backbone.bottleneck_layer.* (segmentation): locate it by the entropy bottleneck's quantiles.
        prefix = next((k[:-len(EB_QUANTILES)] for k in state if k.endswith(EB_QUANTILES)), None)
        if prefix is None:
            raise SystemExit(f'{checkpoint}: no {EB_QUANTILES} tensor; is this a Ladon checkpoint?')
        layer_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        # CompressionModel.load_state_dict sizes the CDF buffers and maps CompressAI 1.2.2 names (_matrix0, ...),
        # exactly what SplittableResNet.load_state_dict does for a classification checkpoint.
        model.bottleneck_layer.load_state_dict(layer_state)
        model.update()  # as reference.py: keeps the stored CDF tables (update() does not force)
        self.bottleneck = model.bottleneck_layer.eval()
        self.eb = self.bottleneck.entropy_bottleneck
        self.transform = pc.make_transform()
        self.rule = rule

    def encode(self, path, model_id):
        """Image file -> (packet bytes, encode milliseconds, CompressAI string)."""
        start = time.perf_counter()
        _, image = pc.load_image(path)
        with torch.inference_mode():
            images, (original,) = pc.preprocess([image], self.transform, self.rule)
            y = self.bottleneck.encoder(images.tensors)
            payload = self.eb.compress(y)[0]
        encode_ms = (time.perf_counter() - start) * 1000
        packet = ldnp.Packet(model_id=model_id, original=original, resized=images.image_sizes[0],
                             padded=tuple(int(v) for v in images.tensors.shape[-2:]),
                             latent=tuple(int(v) for v in y.shape[1:]), payload=payload)
        return packet.serialize(), encode_ms, payload


# ---------------------------------------------------------------------------------------------- HTTP
def http(method, url, body=None, headers=None, timeout=120.0):
    """(status or None, headers dict, body bytes); never raises for HTTP or transport errors."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:  # 4xx/5xx: the body holds {"error": {...}}
        return error.code, dict(error.headers), error.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, 'reason', error)
        return None, {}, json.dumps({'error': {'code': 'transport', 'message': str(reason)}}).encode()


def parse_server_timing(header):
    """`queue;dur=0.12, compute;dur=80.3` -> {"queue": 0.12, "compute": 80.3} (as EdgeClient does)."""
    timings = {}
    for metric in (header or '').split(','):
        parts = [p.strip() for p in metric.split(';')]
        if not parts[0]:
            continue
        for p in parts[1:]:
            if p.startswith('dur='):
                try:
                    timings[parts[0]] = float(p[4:])
                except ValueError:
                    pass
    return timings


def decode_json(body):
    try:
        return json.loads(body.decode('utf-8'))
    except (UnicodeDecodeError, ValueError):
        return {'error': {'code': 'not_json', 'message': body[:500].decode('utf-8', 'replace')}}


def header(headers, name):
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def fetch_model_id(server, auth, timeout):
    status, _, body = http('GET', server + '/v1/model', headers=auth, timeout=timeout)
    answer = decode_json(body)
    if status != 200:
        raise SystemExit(f'GET {server}/v1/model failed ({status}): {json.dumps(answer.get("error", answer))}')
    try:
        return ldnp.parse_model_id(answer['modelId'])
    except (KeyError, TypeError, ValueError) as error:
        raise SystemExit(f'GET {server}/v1/model: no usable modelId ({error})')


# ---------------------------------------------------------------------------------------------- compare
def compare_local(runtime, path, result, payload, args):
    """Server answer vs the full PyTorch reference runtime on the same image."""
    _, image = pc.load_image(path)
    with torch.inference_mode():
        out = runtime.forward(image, args.resize_rule, args.roi_levels)
    local_top5 = [int(i) for i in torch.topk(out['logits'], 5).indices]
    server_top5 = [c['index'] for c in (result.get('classification') or {}).get('top5', [])]
    local_dets, server_dets = int(out['detections']['boxes'].shape[0]), len(result.get('detection', []))
    return {'top5Equal': local_top5 == server_top5, 'top5Server': server_top5, 'top5Local': local_top5,
            'detectionsEqual': local_dets == server_dets, 'detectionsServer': server_dets,
            'detectionsLocal': local_dets,
            # the local runtime encodes with the classification checkpoint's bottleneck; equal bytes mean the
            # server decoded exactly the latent the local heads saw
            'payloadEqualsLocal': bytes(out['strings'][0]) == bytes(payload)}


# ---------------------------------------------------------------------------------------------- main
def out_packet_path(template, image, many):
    if not many:
        return template
    root, ext = os.path.splitext(template)
    return f'{root}.{os.path.splitext(os.path.basename(image))[0]}{ext or ".ldnp"}'


def main():
    args = parse_args()
    paths = pc.list_images(args.images)
    if not paths:
        raise SystemExit('no images')
    server = args.server.rstrip('/')
    auth = {}
    if args.token_file:
        with open(args.token_file) as f:
            auth['Authorization'] = 'Bearer ' + f.read().strip()
    model_id = args.model_id or fetch_model_id(server, auth, args.timeout)
    device = DeviceEncoder(args.checkpoint, args.resize_rule)
    runtime = None
    if args.compare_local:
        import reference  # Scripts/parity/reference.py
        runtime = reference.LadonRuntime(args.classification, args.detection, args.segmentation)

    failed = differed = 0
    url = server + '/v1/infer' + ('?mask=png' if args.mask else '')
    for path in paths:
        line = {'file': path}
        try:
            data, encode_ms, payload = device.encode(path, model_id)
        except Exception as error:  # unreadable image and the like: report it, go on with the next one
            line.update(status=None, error={'code': 'encode_failed', 'message': f'{type(error).__name__}: {error}'})
            print(json.dumps(line), flush=True)
            failed += 1
            continue
        if args.out_packet:
            with open(out_packet_path(args.out_packet, path, len(paths) > 1), 'wb') as f:
                f.write(data)
        start = time.perf_counter()
        status, headers, body = http('POST', url, data, {**auth, 'Content-Type': PACKET_TYPE}, args.timeout)
        round_trip = (time.perf_counter() - start) * 1000
        answer = decode_json(body)
        line.update(status=status, packetBytes=len(data), encodeMs=round(encode_ms, 2),
                    roundTripMs=round(round_trip, 2),
                    serverTiming=parse_server_timing(header(headers, 'Server-Timing')))
        if status == 200 and 'error' not in answer:
            line['result'] = answer
            if runtime is not None:
                line['compare'] = compare_local(runtime, path, answer, payload, args)
                differed += not (line['compare']['top5Equal'] and line['compare']['detectionsEqual'])
        else:
            line['error'] = answer.get('error', answer)
            failed += 1
        print(json.dumps(line), flush=True)
    sys.exit(1 if failed else 2 if differed else 0)


if __name__ == '__main__':
    main()
