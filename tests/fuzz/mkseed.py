#!/usr/bin/env python3
"""mkseed.py: writes the seed corpus of the pool fuzzer (corpus/seed/), one file per kind of damage.

Usage: tests/fuzz/mkseed.py [DIR]   (default: corpus/seed beside this script)

Each file is a patch list in the input format of fuzz_pool.c, over one of
its seed pools; the page numbers below are where those pools keep their
runs (`fuzz_replay --pool FILE OUT` writes a pool out, `btd info OUT` and
`fuzz_replay --show FILE` show it).  The seeds start the fuzzer from each
kind of damage the trust tests name, and from past the checks (sealed
patches) into what the code believes.  Rerun it after changing the seed
pools and check the files it changes."""
import os
import random
import struct
import sys

CLEAN, CRASHED, FORMAT_1_0 = 0, 1, 2
META = 4  # byte 0: record meta_sum over the patched metadata

HEADER0, HEADER1, ROOTS, DESC, BITMAP, DATA, ROOTTAB, FILE = range(8)
BYTES, POINTER, FILL, ADD = range(4)
SEAL = 0x40

# struct pool_header
MAGIC, MAJOR, MINOR, HEADER_SIZE = 0, 8, 10, 12
BASE, SIZE, DESC_OFF, BITMAP_OFF, DATA_OFF, NPAGES, HEAP_TOP = 32, 40, 48, 56, 64, 72, 80
EPOCH, CLEAN_FLAG, OWNER_PID, META_SUM, CLOSE_ROOTS, COLLECT_NEXT = 88, 96, 128, 136, 144, 152
CHECKSUM = 248

PAGE = 4096
# The newest header copy of each seed pool: clean and format 1.0 in copy
# 0, crashed in copy 1.
NEWEST = {CLEAN: HEADER0, CRASHED: HEADER1, FORMAT_1_0: HEADER0}
# Runs of the seed pools (page: what): 0 and 16 the list's slabs (64 B),
# 32 misc (256 B), 48 tiny blocks (16 B), 64 the large block "big" (10
# pages), 74 a release mark (5 pages), 79, 95, 111, 127, 143 slabs of
# 320, 48, 1024, 4096 and 16384 B, 160 an aligned large block (5 pages),
# 165 an empty slab of 512 B (crashed: 128 B), 181 the large block "c"
# (crashed only); heap_top 256 of 267 pages.
LIST_SLAB, MISC_SLAB, BIG, MARK, ALIGNED, LAST_SLAB, FREE_PAGE = 16, 32, 64, 74, 160, 165, 200


def patch(region, kind, off, payload=b"", seal=False):
    return bytes([region | kind << 4 | (SEAL if seal else 0)]) + struct.pack("<I", off) + payload


def raw(region, off, data, seal=False):
    return patch(region, BYTES, off, bytes([len(data)]) + data, seal)


def fill(region, off, nbytes, value):
    out = b""
    while nbytes > 0:
        n = min(nbytes // 8 or 1, 255)
        out += patch(region, FILL, off, bytes([n, value]))
        off += 8 * n
        nbytes -= 8 * n
    return out


def pointer(region, off, data_byte, seal=False):
    return patch(region, POINTER, off, struct.pack("<I", data_byte), seal)


def add(region, off, delta, seal=False):
    return patch(region, ADD, off, struct.pack("<i", delta), seal)


def u64(region, off, value, seal=False):
    return raw(region, off, struct.pack("<Q", value), seal)


def seeds():
    rng = random.Random(8)
    s = {}
    s["clean"] = bytes([CLEAN])
    s["crashed"] = bytes([CRASHED])
    s["format-1.0"] = bytes([FORMAT_1_0])
    # Descriptors.
    s["zero-slab"] = bytes([CRASHED]) + fill(DESC, LIST_SLAB * 8, 8, 0)
    s["slab-class"] = bytes([CRASHED]) + raw(DESC, LIST_SLAB * 8 + 1, b"\x01")
    s["slab-class-sealed"] = bytes([CRASHED]) + raw(DESC, LIST_SLAB * 8 + 1, b"\x01", True)
    s["descs-random"] = bytes([CRASHED]) + b"".join(
        u64(DESC, rng.randrange(256) * 8, rng.getrandbits(64)) for _ in range(8))
    s["descs0"] = bytes([CLEAN]) + fill(DESC, 0, 256 * 8, 0)
    s["descs0-forged"] = bytes([CLEAN | META]) + fill(DESC, 0, 256 * 8, 0)
    s["large-longer"] = bytes([CRASHED]) + add(DESC, BIG * 8, 6 << 8, True)
    s["large-claims-slab"] = bytes([CLEAN]) + add(DESC, ALIGNED * 8, 10 << 8, True)
    s["large-past-top"] = bytes([CRASHED]) + add(DESC, ALIGNED * 8, 200 << 8, True)
    s["mark-over-runs"] = bytes([CLEAN]) + add(DESC, MARK * 8, 90 << 8, True)
    s["slab-at-free-page"] = bytes([CRASHED]) + u64(DESC, FREE_PAGE * 8, 2 | 3 << 8 | 16 << 16, True)
    # The bitmap.
    s["bitmap0"] = bytes([CLEAN]) + fill(BITMAP, 0, 256 * 32, 0)
    s["bitmap-random-forged"] = bytes([CLEAN | META]) + raw(
        BITMAP, MISC_SLAB * 32, bytes(rng.getrandbits(8) for _ in range(64)))
    s["bitmap-ones-crashed"] = bytes([CRASHED]) + fill(BITMAP, 0, 256 * 32, 0xff)
    # Roots.
    s["roots-random"] = bytes([CRASHED]) + raw(ROOTS, 0, bytes(rng.getrandbits(8) for _ in range(200)))
    s["roots0"] = bytes([CLEAN]) + fill(ROOTTAB, 0, 8 * 64, 0)
    s["root-to-free-page"] = bytes([CLEAN]) + raw(ROOTS, 6 * 64, b"wild\0") + pointer(
        ROOTS, 6 * 64 + 56, FREE_PAGE * PAGE + 64, True)
    s["root-interior-large"] = bytes([CRASHED]) + pointer(ROOTS, 2 * 64 + 56, BIG * PAGE + 9000, True)
    s["root-name-unterminated"] = bytes([CLEAN]) + fill(ROOTS, 0, 48, 0x41) + add(ROOTS, 48, 1)
    s["root-table-end"] = bytes([CLEAN]) + raw(ROOTTAB, 1023 * 64, b"last\0") + pointer(
        ROOTTAB, 1023 * 64 + 56, MISC_SLAB * PAGE, True)
    # Pointers in the data.
    s["pointer-to-free-page"] = bytes([CRASHED]) + pointer(DATA, MISC_SLAB * PAGE + 88, FREE_PAGE * PAGE)
    s["pointer-to-mark"] = bytes([CLEAN]) + pointer(DATA, MISC_SLAB * PAGE + 88, MARK * PAGE + 4 * PAGE + 8)
    s["pointer-past-top"] = bytes([CRASHED]) + pointer(DATA, MISC_SLAB * PAGE + 88, 260 * PAGE)
    s["pointers-slab-gap"] = bytes([CRASHED]) + b"".join(
        pointer(DATA, BIG * PAGE + 8 * (60 + i), (FREE_PAGE + 3) * PAGE + 64 * i) for i in range(12))
    s["list-cut"] = bytes([CRASHED]) + fill(DATA, LIST_SLAB * PAGE, 4 * PAGE, 0)
    # Header copies.
    s["header1-torn"] = bytes([CLEAN]) + add(HEADER1, EPOCH, 0x40)
    s["newest-torn"] = bytes([CRASHED]) + add(NEWEST[CRASHED], CHECKSUM, 1)
    s["both-torn"] = bytes([CLEAN]) + add(HEADER0, EPOCH, 1) + add(HEADER1, EPOCH, 1)
    s["no-magic"] = bytes([CLEAN]) + fill(HEADER0, 0, 8, 0) + fill(HEADER1, 0, 8, 0)
    s["heap-top-raised"] = bytes([CLEAN]) + add(HEADER0, HEAP_TOP, 11, True)
    s["heap-top-lowered"] = bytes([CRASHED]) + add(HEADER1, HEAP_TOP, -100, True)
    s["heap-top-lowered-torn"] = bytes([CRASHED]) + add(HEADER1, HEAP_TOP, -100)
    s["heap-top-past-npages"] = bytes([CLEAN]) + add(HEADER0, HEAP_TOP, 12, True)
    s["clean-flag-cleared"] = bytes([CLEAN]) + u64(HEADER0, CLEAN_FLAG, 0, True)
    s["crashed-marked-clean"] = bytes([CRASHED]) + u64(HEADER1, CLEAN_FLAG, 1, True)
    s["collect-next"] = bytes([CLEAN]) + u64(HEADER0, COLLECT_NEXT, 1, True)
    s["close-roots-more"] = bytes([CLEAN]) + add(HEADER0, CLOSE_ROOTS, 3, True) + fill(ROOTTAB, 0, 64, 0)
    s["minor0-header"] = bytes([CLEAN]) + raw(HEADER0, MINOR, b"\0\0", True)
    s["major2"] = bytes([CLEAN]) + raw(HEADER0, MAJOR, b"\x02\0", True) + raw(HEADER1, MAJOR, b"\x02\0", True)
    s["size-changed"] = bytes([CLEAN]) + add(HEADER0, SIZE, PAGE, True)
    s["npages-changed"] = bytes([CLEAN]) + add(HEADER0, NPAGES, -1, True)
    s["data-off-changed"] = bytes([CLEAN]) + add(HEADER0, DATA_OFF, 65536, True)
    s["header-size-changed"] = bytes([CLEAN]) + raw(HEADER0, HEADER_SIZE, struct.pack("<I", 264), True)
    s["base-moved"] = bytes([CRASHED]) + add(HEADER1, BASE, 1 << 30, True)
    s["base-low"] = bytes([CLEAN]) + u64(HEADER0, BASE, 0x10000, True)
    s["base-unaligned"] = bytes([CLEAN]) + add(HEADER0, BASE, 8, True)
    s["base-wraps"] = bytes([CLEAN]) + u64(HEADER0, BASE, (1 << 64) - 4 * PAGE, True)
    s["base-noncanonical"] = bytes([CLEAN]) + u64(HEADER0, BASE, 1 << 47, True)
    # Format 1.0.
    s["format-1.0-roots-checked"] = bytes([FORMAT_1_0]) + pointer(ROOTS, 56, LIST_SLAB * PAGE, True)
    s["format-1.0-mark"] = bytes([FORMAT_1_0]) + u64(DESC, FREE_PAGE * 8, 3 | 4 << 8, True)
    # Anywhere.
    s["file-random"] = bytes([CRASHED]) + b"".join(
        raw(FILE, rng.randrange(1 << 32), bytes(rng.getrandbits(8) for _ in range(16))) for _ in range(6))
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "seed")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
