#!/usr/bin/env python3
"""Decodes a Ladon latent packet (e.g. written by the Swift `ladon encode`) with CompressAI in Python.

    python Scripts/clients/decode_packet.py PACKET.ldnp --checkpoint LADON.pt [--reference-latent FILE.npy]

Steps: parse and validate the packet (magic, version, lengths, CRC-32; docs/wire-format.md), build CompressAI's
EntropyBottleneck from the checkpoint's tensors (any per-task Ladon checkpoint; both CompressAI key styles),
`decompress([payload], size=(latentH, latentW))`, print the latent's shape, value range and symbol count, then
`compress` the decoded latent again: the bytes must equal the payload (PASS), else FAIL.

--reference-latent FILE.npy: a float latent of shape (C, H, W) or (1, C, H, W), either the encoder output y or
the dequantised y_hat; it is quantised the CompressAI way (round(y - median) + median) and compared with the
decoded latent. Differences pass only as .5 tie flips (one step, |frac(y - median) - 0.5| < --tie-eps), the
float noise two encoders may legitimately disagree on.

Exit status: 0 PASS, 1 FAIL (bytes or latent differ), 2 unreadable or invalid packet / checkpoint.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'parity'))

import ldnp  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     epilog='Exit status: 0 PASS, 1 FAIL, 2 invalid packet or checkpoint.')
    parser.add_argument('packet', help='packet file (.ldnp)')
    parser.add_argument('--checkpoint', required=True, help='any per-task Ladon checkpoint (.pt)')
    parser.add_argument('--reference-latent', help='.npy latent (C,H,W) or (1,C,H,W) to compare against')
    parser.add_argument('--tie-eps', type=float, default=1e-4, help='tie distance tolerated with --reference-latent')
    return parser.parse_args()


def fail(message, code=2):
    print(f'error: {message}', file=sys.stderr)
    sys.exit(code)


def read_packet(path):
    """Reads at most one byte more than the largest packet, so a huge file is refused without reading it all."""
    limit = ldnp.HEADER_SIZE + ldnp.MAX_PAYLOAD + ldnp.CRC_SIZE
    try:
        with open(path, 'rb') as f:
            data = f.read(limit + 1)
    except OSError as error:
        fail(f'cannot read {path}: {error.strerror}')
    if len(data) > limit:
        fail(f'{path} is larger than the largest packet ({limit} bytes)')
    try:
        return ldnp.Packet.parse(data), len(data)
    except ldnp.PacketError as error:
        fail(f'{path}: {error}')


def compare_reference(path, y_hat, medians, tie_eps):
    """Quantises the reference latent and compares it with the decoded one; returns (ok, message)."""
    import numpy as np
    ref = np.load(path).astype(np.float32)
    if ref.ndim == 4 and ref.shape[0] == 1:
        ref = ref[0]
    if ref.shape != y_hat.shape:
        return False, f'reference latent shape {ref.shape} != decoded {y_hat.shape}'
    m = medians.reshape(-1, 1, 1).astype(np.float32)
    offsets = ref - m                                    # float32, as CompressAI's quantize computes it
    ref_symbols = np.round(offsets)                      # round half to even, like torch.round
    symbols = np.round(y_hat - m)
    differing = np.argwhere(ref_symbols != symbols)
    if len(differing) == 0:
        return True, f'reference latent quantises to the decoded latent exactly (max |y - y_hat| ' \
                     f'{float(np.abs(ref - y_hat).max()):.4g})'
    idx = tuple(differing.T)
    frac = offsets[idx] - np.floor(offsets[idx])
    ties = (np.abs(frac.astype(np.float64) - 0.5) < tie_eps) & (np.abs(ref_symbols[idx] - symbols[idx]) == 1)
    detail = f'{len(differing)} of {symbols.size} symbols differ, {int(ties.sum())} at .5 ties'
    if ties.all():
        return True, detail + ' (legitimate tie flips)'
    first = differing[~ties][0]
    c, h, w = (int(v) for v in first)
    return False, detail + (f'; first non-tie at (c,h,w)=({c},{h},{w}): reference y-m {offsets[c, h, w]:.6f}, '
                            f'decoded symbol {int(symbols[c, h, w])}')


def main():
    args = parse_args()
    packet, size = read_packet(args.packet)
    c, h, w = packet.latent
    info = packet.describe()
    print(f'packet {args.packet}: {size} bytes, version {info["version"]}, model id {info["modelId"]}'
          f'{" (zeros: unknown model)" if not any(packet.model_id) else ""}, CRC-32 {info["crc32"]} ok')
    print(f'  image {packet.original[1]}x{packet.original[0]} -> resized {packet.resized[1]}x{packet.resized[0]}'
          f' -> padded {packet.padded[1]}x{packet.padded[0]}; latent {c}x{h}x{w}; payload {len(packet.payload)} bytes')
    if any(packet.reserved):
        print(f'  warning: reserved bytes are {packet.reserved.hex()}, expected zeros')
    # The server half's geometry rule (docs/wire-format.md): latent = padded / 4 - 1 per side.
    if (h, w) != (packet.padded[0] // 4 - 1, packet.padded[1] // 4 - 1):
        print(f'  warning: latent {h}x{w} is not padded/4 - 1 = {packet.padded[0] // 4 - 1}x'
              f'{packet.padded[1] // 4 - 1}; the Ladon server would refuse this packet')

    import numpy as np
    import parity_common as pc
    import torch
    try:
        ckpt = pc.load_checkpoint(args.checkpoint)
        state = ckpt['model'] if isinstance(ckpt, dict) and 'model' in ckpt else ckpt
        eb = pc.entropy_bottleneck_from_state(state)
    except (OSError, KeyError, RuntimeError) as error:
        fail(f'{args.checkpoint}: cannot build the entropy bottleneck: {error}')
    channels = int(eb.quantiles.shape[0])
    if c != channels:
        fail(f'packet latent has {c} channels, the checkpoint\'s entropy bottleneck {channels}')

    with torch.inference_mode():
        try:
            y_hat = eb.decompress([packet.payload], size=(h, w))
        except Exception as error:  # CompressAI's C++ decoder raises on some damaged streams
            print(f'FAIL: CompressAI could not decode the payload: {type(error).__name__}: {error}')
            sys.exit(1)
        medians = eb._get_medians().detach().reshape(-1)
        symbols = torch.round(y_hat[0] - medians.reshape(-1, 1, 1))
        recompressed = eb.compress(y_hat)[0]
    print(f'decoded latent: shape {tuple(y_hat.shape)}, min {float(y_hat.min()):.4f}, max {float(y_hat.max()):.4f}, '
          f'{symbols.numel()} symbols in [{int(symbols.min())}, {int(symbols.max())}], '
          f'{len(packet.payload) * 8 / symbols.numel():.3f} bits/symbol')

    ok = bytes(recompressed) == bytes(packet.payload)
    if ok:
        print(f'PASS: re-compressing the decoded latent reproduces the payload ({len(recompressed)} bytes)')
    else:
        first = next((i for i, (a, b) in enumerate(zip(recompressed, packet.payload)) if a != b),
                     min(len(recompressed), len(packet.payload)))
        print(f'FAIL: re-compressed {len(recompressed)} bytes vs payload {len(packet.payload)} bytes, '
              f'first difference at byte {first}')
    if args.reference_latent:
        ref_ok, message = compare_reference(args.reference_latent, y_hat[0].numpy(), medians.numpy(), args.tie_eps)
        print(f'{"PASS" if ref_ok else "FAIL"}: {message}')
        ok = ok and ref_ok
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
