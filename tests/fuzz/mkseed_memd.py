#!/usr/bin/env python3
"""mkseed_memd.py: writes the seed corpus of the memory node's fuzzer (corpus/memd/seed/).

Usage: tests/fuzz/mkseed_memd.py [DIR]   (default: corpus/memd/seed beside this script)

Each file is a list of operations in the input format of fuzz_memd.c
(`fuzz_memd_replay --show FILE` prints it): the sessions a client runs --
handshake, lease, staged commits, bulk, list -- and the node's restarts,
with and without a crash after a commit's redo, so that the fuzzer starts
from past the handshake into leases and commits."""
import os
import struct
import sys

RAW, TYPED, AUTH, LEASE, STAGE, COMMIT, RESTART, BULK = range(8)
S1 = 8        # op bit 3: the second session
VARIANT = 16  # op bit 4
MAGIC, VERSION = 0x31647462, 1
MSG_LIST, MSG_COMMIT = 10, 6
KiB4 = 4096


def auth(s=0, wrong=False):
    return bytes([AUTH | s | (VARIANT if wrong else 0)])


def lease(uuid, size, s=0):
    return bytes([LEASE | s, uuid]) + struct.pack('<I', size // KiB4)


def stage(off, data, s=0):
    return bytes([STAGE | s]) + struct.pack('<IB', off, len(data)) + data


def ranges(*rs):
    return b''.join(struct.pack('<QQ', off, n) for off, n in rs)


def commit(nranges, data_len, depoch=0, s=0):
    return bytes([COMMIT | s]) + struct.pack('<HIb', nranges, data_len, depoch)


def bulk(what, epoch=0, size=0, s=0):
    return bytes([BULK | s]) + struct.pack('<BBI', what, epoch, size // KiB4)


def raw(msg, s=0):
    return bytes([RAW | s]) + struct.pack('<H', len(msg)) + msg


def header(mtype, length, seq=1):
    return struct.pack('<IHHII', MAGIC, VERSION, mtype, length, seq)


MiB = 1 << 20
CHUNK = 16 * MiB
batch = ranges((100, 8), (CHUNK - 4, 8)) + b'A' * 8 + b'B' * 8
SEEDS = {
    'handshake': auth(),
    'wrong-key': auth(wrong=True),
    'lease-new': auth() + lease(0, 20 * MiB),
    'lease-attach-none': auth() + lease(1, 0),
    'lease-grow': auth() + lease(0, MiB) + auth(S1) + lease(0, 30 * MiB, S1),
    'lease-full': auth() + lease(0, 2 * CHUNK) + auth(S1) + lease(1, MiB, S1),
    'commit': auth() + lease(0, 2 * CHUNK) + stage(0, batch) + commit(2, 16),
    'commit-twice': auth() + lease(0, 2 * CHUNK) + stage(0, batch) + commit(2, 16)
                    + stage(32, b'CCCCCCCC') + commit(2, 16),
    'commit-bad-epoch': auth() + lease(0, 2 * CHUNK) + stage(0, batch) + commit(2, 16, 1),
    'commit-outside': auth() + lease(0, MiB) + stage(0, ranges((MiB - 4, 8)) + b'x' * 8)
                      + commit(1, 8),
    'commit-raw': auth() + lease(0, MiB)
                  + raw(header(MSG_COMMIT, 48) + struct.pack('<QQQQ', 1, 1, 8, 0)),
    'crash-after-redo': auth() + lease(0, 2 * CHUNK) + bytes([RESTART | VARIANT]) + auth()
                        + lease(0, 0) + stage(0, batch) + commit(2, 16) + auth() + lease(0, 0),
    'restart': auth() + lease(2, 5 * MiB) + stage(0, ranges((0, 4)) + b'abcd') + commit(1, 4)
               + bytes([RESTART]) + auth() + lease(2, 0) + bulk(2),
    'bulk': auth() + lease(3, 8 * MiB) + bulk(0) + bulk(1, 9, 8 * MiB) + bulk(2),
    'bulk-end-alone': auth() + lease(3, 8 * MiB) + bulk(1, 9, 8 * MiB),
    'list-raw': auth() + raw(header(MSG_LIST, 16)),
    'before-auth': lease(0, MiB) + bytes([TYPED, MSG_LIST]),
    'takeover': auth() + lease(1, MiB) + auth(S1) + lease(1, 0, S1) + commit(0, 0)
                + commit(0, 0, 0, S1),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'corpus', 'memd', 'seed')
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
