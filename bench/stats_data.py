#!/usr/bin/python3
"""Benchmark tables for bench/stats.sh: FILE.h5 with two 2-D float64 datasets [1e6][16]
(column names in the "columns" attribute, as sisma tables read them):
  /ols    y, x1..x15: y = 1 + sum_j b_j x_j + N(0, 1), correlated regressors
  /logit  label, x1..x15: label ~ Bernoulli(logistic(0.3 + sum_j c_j x_j))
Usage: stats_data.py FILE.h5 [ROWS]"""
import sys

import h5py
import numpy as np

path = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
p = 15
rng = np.random.default_rng(20261124)
z = rng.standard_normal((n, p))
x = z + 0.3 * z[:, [0]]  # correlated with x1
b = np.linspace(-1.0, 1.0, p)
y = 1.0 + x @ b + rng.standard_normal(n)
c = np.linspace(0.4, -0.4, p)
prob = 1.0 / (1.0 + np.exp(-(0.3 + x @ (c / 2))))
label = (rng.random(n) < prob).astype(np.float64)
names = ",".join(["x%d" % (j + 1) for j in range(p)])
with h5py.File(path, "w") as f:
    d = f.create_dataset("ols", data=np.column_stack([y, x]))
    d.attrs["columns"] = "y," + names
    d = f.create_dataset("logit", data=np.column_stack([label, x]))
    d.attrs["columns"] = "label," + names
