#!/usr/bin/python3
"""Peer of bench/signal_bench.c: scipy.signal.sosfiltfilt on the same catalog, one process.

  /usr/bin/python3 bench/scipy_filtfilt.py CATALOG [BLOCK_TRACES]

Reads /waveforms with h5py in blocks (default 4096 traces), converts to float64 and filters all
components of the block in one call, sosfiltfilt(sos, x, axis=-1) with the order-4 1-45 Hz
band-pass of butter(..., output='sos'), which is SciPy's fastest path (one C loop over the rows).
Prints "BENCH scipy ranks=1 ..." in the format of signal_bench (compute_s: filter calls only)."""
import sys
import time

import h5py
import numpy as np
import scipy.signal as sig


def main():
    path = sys.argv[1]
    block = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
    t0 = time.perf_counter()
    tc, csum = 0.0, 0.0
    with h5py.File(path, "r") as f:
        w = f["waveforms"]
        n, c, t = w.shape
        fs = float(f.attrs["sampling_rate_hz"])
        sos = sig.butter(4, [1.0, 45.0], "bandpass", output="sos", fs=fs)
        for a in range(0, n, block):
            x = np.asarray(w[a:a + block], dtype=np.float64).reshape(-1, t)
            s = time.perf_counter()
            y = sig.sosfiltfilt(sos, x, axis=-1)
            tc += time.perf_counter() - s
            off = (-a * c * t) % 97  # global sample indices divisible by 97, as signal_bench
            csum += float(y.reshape(-1)[off::97].sum())
    total = time.perf_counter() - t0
    samples = float(n) * c * t
    print("BENCH scipy ranks=1 traces=%d samples=%.0f compute_s=%.3f total_s=%.3f msamples_per_s_per_core=%.2f "
          "checksum=%.6e" % (n, samples, tc, total, samples / tc / 1e6, csum))


if __name__ == "__main__":
    main()
