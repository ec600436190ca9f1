#!/usr/bin/python3
"""Reference reader: h5py (serial HDF5 driver, one process) reads /waveforms of FILE in
chunk-aligned slabs of at most BLOCK_MIB (default 256) into one reused buffer.
Prints one parseable line: BENCH mode=h5py ranks=1 bytes=... seconds=... gbps=..."""
import sys
import time

import h5py
import numpy as np


def main():
    path = sys.argv[1]
    block_mib = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    with h5py.File(path, "r") as f:
        d = f["/waveforms"]
        n = d.shape[0]
        chunk = d.chunks[0] if d.chunks else 1
        row = int(np.prod(d.shape[1:])) * d.dtype.itemsize
        per = max(1, (block_mib << 20) // (chunk * row)) * chunk
        buf = np.empty((min(per, n),) + d.shape[1:], dtype=d.dtype)
        s = 0.0
        t0 = time.perf_counter()
        for lo in range(0, n, per):
            hi = min(n, lo + per)
            d.read_direct(buf, np.s_[lo:hi], np.s_[0:hi - lo])
            s += float(buf[:hi - lo, -1, -1].astype(np.float64).sum())
        t = time.perf_counter() - t0
    b = n * row
    print(f"BENCH mode=h5py ranks=1 bytes={b} seconds={t:.4f} gbps={b / t / 1e9:.4f} "
          f"block_mib={block_mib} checksum={s:.6g}")


if __name__ == "__main__":
    main()
