"""Ladon latent packets (`LDNP`, version 1; docs/wire-format.md) in plain Python: build, parse, validate.

Standard library only (no torch), shared by python_client.py and decode_packet.py:

    from ldnp import Packet, PacketError
    data = Packet(model_id=bytes(16), original=(h, w), resized=(h, w), padded=(h, w),
                  latent=(c, h, w), payload=compressai_string).serialize()
    packet = Packet.parse(data)          # raises PacketError with a clear message on damage

The checks mirror `LatentPacket(bytes:)` in Sources/EdgeSplit: length, magic, version, payload length, exact
total length, CRC-32, sizes <= 65536, channels > 0.
"""
import struct
import zlib
from dataclasses import dataclass

MAGIC = b'LDNP'
VERSION = 1
FIELDS = 10                              # six image sizes, three latent sizes, payload length
HEADER_SIZE = 4 + 1 + 3 + 16 + 4 * FIELDS  # 64 bytes before the payload
CRC_SIZE = 4
MAX_PAYLOAD = 16 << 20                   # LatentPacket.maxPayload (docs/wire-format.md)
MAX_DIMENSION = 1 << 16


class PacketError(ValueError):
    """A packet that is truncated, damaged or not a packet at all."""


@dataclass
class Packet:
    model_id: bytes        # 16 bytes: first half of the weights' fingerprint, or zeros
    original: tuple        # (height, width) of the decoded image
    resized: tuple         # (height, width) after the 416 resize
    padded: tuple          # (height, width) after padding to a multiple of 32
    latent: tuple          # (channels, height, width)
    payload: bytes         # CompressAI's EntropyBottleneck.compress string, verbatim
    reserved: bytes = bytes(3)
    crc: int = 0           # filled by parse()

    def serialize(self):
        """Header + payload + CRC-32 (zlib) of everything before it."""
        if len(self.model_id) != 16:
            raise ValueError(f'model id must be 16 bytes, got {len(self.model_id)}')
        sizes = list(self.original) + list(self.resized) + list(self.padded) + list(self.latent)
        body = (MAGIC + bytes([VERSION]) + bytes(3) + bytes(self.model_id)
                + struct.pack('<10I', *sizes, len(self.payload)) + bytes(self.payload))
        return body + struct.pack('<I', zlib.crc32(body) & 0xFFFFFFFF)

    @classmethod
    def parse(cls, data):
        """Validates and parses one packet; every field is checked before use."""
        data = bytes(data)
        if len(data) < HEADER_SIZE + CRC_SIZE:
            raise PacketError(f'packet truncated: {len(data)} bytes, a header alone needs {HEADER_SIZE + CRC_SIZE}')
        if data[:4] != MAGIC:
            raise PacketError(f'not a Ladon latent packet: magic {data[:4]!r}, expected {MAGIC!r}')
        if data[4] != VERSION:
            raise PacketError(f'packet version {data[4]} is not supported (this reader knows version {VERSION})')
        fields = struct.unpack_from('<10I', data, 24)
        length = fields[9]
        if length > MAX_PAYLOAD:
            raise PacketError(f'payload length {length} exceeds the {MAX_PAYLOAD}-byte limit')
        total = HEADER_SIZE + length + CRC_SIZE
        if len(data) < total:
            raise PacketError(f'packet truncated: {len(data)} bytes, the header announces {total} '
                              f'({length} payload bytes)')
        if len(data) > total:
            raise PacketError(f'{len(data) - total} trailing bytes after the packet ({total} bytes expected)')
        stored = struct.unpack_from('<I', data, total - CRC_SIZE)[0]
        computed = zlib.crc32(data[:total - CRC_SIZE]) & 0xFFFFFFFF
        if stored != computed:
            raise PacketError(f'CRC-32 mismatch: stored {stored:08x}, computed {computed:08x}; the packet is damaged')
        sizes = fields[:9]
        if any(v > MAX_DIMENSION for v in sizes):
            raise PacketError(f'image or latent size out of range (> {MAX_DIMENSION}): {list(sizes)}')
        if sizes[6] == 0:
            raise PacketError('latent has no channels')
        return cls(model_id=data[8:24], original=sizes[0:2], resized=sizes[2:4], padded=sizes[4:6],
                   latent=sizes[6:9], payload=data[HEADER_SIZE:total - CRC_SIZE], reserved=data[5:8], crc=stored)

    def describe(self):
        """A JSON-ready summary of the header."""
        return {'version': VERSION, 'modelId': self.model_id.hex(),
                'original': list(self.original), 'resized': list(self.resized), 'padded': list(self.padded),
                'latent': list(self.latent), 'payloadBytes': len(self.payload), 'crc32': f'{self.crc:08x}'}


def parse_model_id(text):
    """32 hex characters -> 16 bytes (what `GET /v1/model` answers as `modelId`)."""
    text = text.strip().lower()
    if len(text) != 32:
        raise ValueError(f'model id must be 32 hex characters, got {len(text)}: {text!r}')
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f'model id is not hexadecimal: {text!r}') from None
