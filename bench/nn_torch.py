#!/usr/bin/python3
"""PyTorch peer of bench/nn_bench.c: the same models, optimisers, batch sizes and sample counts,
random data made before the clock starts, torch.set_num_threads(THREADS).
Usage: /usr/bin/python3 bench/nn_torch.py mlp|cnn N BATCH [THREADS]"""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

kind, N, B = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
torch.manual_seed(1)
steps = N // B
if kind == "cnn":
    model = nn.Sequential(nn.Conv1d(3, 16, 7), nn.ReLU(), nn.MaxPool1d(4), nn.Conv1d(16, 32, 7), nn.ReLU(),
                          nn.MaxPool1d(4), nn.Conv1d(32, 64, 7), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                          nn.Linear(64, 2))
    x = torch.randn(steps, B, 3, 3000)
    y = torch.randint(0, 2, (steps, B))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = F.cross_entropy
else:
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
    x = torch.randn(steps, B, 16)
    y = (x[:, :, 0] * x[:, :, 1]).unsqueeze(-1)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    loss_fn = F.mse_loss
t0, c0 = time.perf_counter(), time.process_time()
for s in range(steps):
    opt.zero_grad()
    loss = loss_fn(model(x[s]), y[s])
    loss.backward()
    opt.step()
t, c = time.perf_counter() - t0, time.process_time() - c0
print("torch %s threads=%d steps=%d batch=%d time=%.3f s cpu=%.3f s samples/s=%.0f cpu_samples/s=%.0f loss=%.4f" %
      (kind, torch.get_num_threads(), steps, B, t, c, steps * B / t, steps * B / c, loss.item()))
