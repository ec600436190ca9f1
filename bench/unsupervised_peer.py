#!/usr/bin/python3
"""scikit-learn side of bench/unsupervised.sh (Debian python3 + sklearn + h5py).
  gen DIR                          write DIR/kmeans.h5 (/x float32 1e6 x 32, uniform [0,1)) and
                                   DIR/pca.h5 (/x float32 200000 x 256: rank-16 signal + noise)
  kmeans FILE K ITERS THREADS      KMeans(lloyd) from the first K rows, tol 0: BENCH line
  pca FILE K SOLVER THREADS        PCA(svd_solver=full|randomized): BENCH line with the variances
Threads: threadpoolctl limits OpenMP and BLAS to THREADS (sklearn runs one process)."""
import sys
import time

import h5py
import numpy as np
from threadpoolctl import threadpool_limits


def gen(d):
    rng = np.random.default_rng(1)
    with h5py.File(d + "/kmeans.h5", "w") as f:
        f["x"] = rng.random((1_000_000, 32), dtype=np.float32)
    s = rng.standard_normal((200_000, 16)) * np.geomspace(10, 1, 16)
    x = (s @ rng.standard_normal((16, 256)) + 0.5 * rng.standard_normal((200_000, 256))).astype(np.float32)
    with h5py.File(d + "/pca.h5", "w") as f:
        f["x"] = x


def main():
    if sys.argv[1] == "gen":
        return gen(sys.argv[2])
    mode, path, k, arg, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    with h5py.File(path, "r") as f:
        x = f["x"][...]
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    with threadpool_limits(limits=threads):
        if mode == "kmeans":
            km = KMeans(n_clusters=k, init=x[:k].copy(), n_init=1, max_iter=int(arg), tol=0, algorithm="lloyd")
            t0, c0 = time.perf_counter(), time.process_time()
            km.fit(x)
            t, c = time.perf_counter() - t0, time.process_time() - c0
            print("BENCH kind=kmeans peer=sklearn threads=%d n=%d d=%d k=%d n_iter=%d fit_s=%.4f cpu_s=%.4f "
                  "per_iter_ms=%.3f inertia=%.10g" % (threads, x.shape[0], x.shape[1], k, km.n_iter_, t, c,
                                                      1e3 * t / km.n_iter_, km.inertia_))
        else:
            p = PCA(n_components=k, svd_solver=arg, random_state=0)
            t0, c0 = time.perf_counter(), time.process_time()
            p.fit(x)
            t, c = time.perf_counter() - t0, time.process_time() - c0
            print("BENCH kind=pca peer=sklearn method=%s threads=%d n=%d d=%d k=%d fit_s=%.4f cpu_s=%.4f ev=%s" % (
                arg, threads, x.shape[0], x.shape[1], k, t, c, ",".join("%.12g" % v for v in p.explained_variance_)))


if __name__ == "__main__":
    main()
