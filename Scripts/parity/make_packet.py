#!/usr/bin/env python3
"""Writes the reference's compressed latent as a Ladon latent packet (docs/wire-format.md), so that the Swift
server half (`ladon decode`) can run on exactly the bytes PyTorch produced.

    python Scripts/parity/make_packet.py REFERENCE.json OUT.ldnp

Used by run_parity.sh when the two encoders round a value at a .5 tie differently: the downstream checks then
compare both server halves on the same latent (a tie flip legitimately changes everything after it).
"""
import json
import struct
import sys
import zlib

import parity_common as pc


def packet(ref):
    payload = pc.unb64(ref['compressedB64'])
    image, inp, lat = ref['image'], ref['input'], ref['latent']
    fields = [image['height'], image['width'], inp['height'], inp['width'], inp['paddedHeight'], inp['paddedWidth'],
              lat['channels'], lat['height'], lat['width'], len(payload)]
    body = b'LDNP' + bytes([1, 0, 0, 0]) + bytes(16) + struct.pack('<10I', *fields) + payload
    return body + struct.pack('<I', zlib.crc32(body) & 0xFFFFFFFF)


if __name__ == '__main__':
    with open(sys.argv[1]) as f:
        data = packet(json.load(f))
    with open(sys.argv[2], 'wb') as f:
        f.write(data)
