#!/usr/bin/python3
"""Peers of bench/stats.sh on the same tables: statsmodels OLS fit + summary, numpy.linalg.lstsq,
scikit-learn LogisticRegression(lbfgs). The data are loaded first (not timed, like sisma's
table read is reported apart); each timing is the median of REPS runs.
Usage: stats_peers.py FILE.h5 REPS"""
import json
import statistics
import sys
import time

import h5py
import numpy as np

path, reps = sys.argv[1], int(sys.argv[2])
with h5py.File(path, "r") as f:
    ols = f["ols"][...]
    logit = f["logit"][...]
y, X = ols[:, 0], np.column_stack([np.ones(len(ols)), ols[:, 1:]])
lab, Xl = logit[:, 0], logit[:, 1:]


def timed(fn):
    ts, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


import statsmodels.api as sm  # noqa: E402


def sm_ols():
    r = sm.OLS(y, X).fit()
    return str(r.summary()), r.params


t_sm, (text, params_sm) = timed(sm_ols)
t_np, sol = timed(lambda: np.linalg.lstsq(X, y, rcond=None))

from sklearn.linear_model import LogisticRegression  # noqa: E402

tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-8


def sk():
    return LogisticRegression(penalty=None, solver="lbfgs", tol=tol, max_iter=10000).fit(Xl, lab)


t_sk, m = timed(sk)
print(json.dumps({"statsmodels_ols_fit_summary_s": t_sm, "numpy_lstsq_s": t_np, "sklearn_lbfgs_s": t_sk,
                  "sklearn_iterations": int(m.n_iter_[0]),
                  "ols_coef": list(params_sm), "lstsq_coef": list(sol[0]),
                  "logit_coef": [float(m.intercept_[0])] + list(m.coef_[0])}))
