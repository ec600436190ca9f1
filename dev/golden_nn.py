#!/usr/bin/python3
"""Golden values for the neural-network tests (tests/nn/test_nn_golden.c), from PyTorch.

Run with the Debian python3 (python3-torch): /usr/bin/python3 dev/golden_nn.py
Writes tests/nn/golden/nn.txt, plain text, float32 values printed with the fewest digits that round-trip:
  model CASE C T N DESC          a case: sisma model description, input shape, batch size
  vec CASE/NAME COUNT            then COUNT numbers
Layer cases (forward in training mode, objective sum(y * r)):
  x (input), params (sisma slab order = torch parameters in module order), r, y (output),
  dx (d objective / d x), grad (d objective / d params), buffers (batch-norm running mean/var after
  the forward), y_eval (output in eval mode, after the training forward updated the running stats).
Loss cases: loss/<kind>/{pred,target,value,grad} with scale 1/n (torch reduction='mean').
Training cases (train/<name>): x, y (labels), params0, then per step the loss (losses) and the
final params after 20 steps with the same batches in the same order; see TRAIN below.
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(2016)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "nn", "golden", "nn.txt")
lines = []


def vec(name, t):
    v = t.detach().reshape(-1).tolist()
    lines.append("vec %s %d" % (name, len(v)))
    for i in range(0, len(v), 8):
        lines.append(" ".join(np.format_float_positional(np.float32(a), unique=True, trim="-") if abs(a) >= 1e-4 or a == 0
                              else np.format_float_scientific(np.float32(a), unique=True, trim="-") for a in v[i:i + 8]))


class Concat(nn.Module):
    """concat from=NAME: the sequential input, then the output of an earlier module."""

    def __init__(self, src):
        super().__init__()
        self.src = src


def run(mods, x):
    outs = []
    for m in mods:
        x = torch.cat([x, outs[m.src]], dim=1) if isinstance(m, Concat) else m(x)
        outs.append(x)
    return x


class Seq(nn.Module):
    """gru/lstm H [last=1] on [N][C][T]: torch's batch_first recurrent layer over the time axis."""

    def __init__(self, rnn, last=False):
        super().__init__()
        self.rnn, self.last = rnn, last

    def forward(self, x):
        out = self.rnn(x.permute(0, 2, 1))[0]  # [N][T][H]
        return out[:, -1:, :].permute(0, 2, 1) if self.last else out.permute(0, 2, 1)


class Embed(nn.Module):
    """embed D: sinusoidal embedding of the scalar input [N][1][1] -> [N][D][1] (cos half, sin half)."""

    def __init__(self, d):
        super().__init__()
        self.h = d // 2

    def forward(self, x):
        f = torch.exp(-math.log(10000.0) * torch.arange(self.h, dtype=torch.float64) / self.h)
        a = x.reshape(-1, 1).double() * f
        return torch.cat([torch.cos(a), torch.sin(a)], dim=1).float().unsqueeze(-1)


class Flat(nn.Module):
    def __init__(self, lin):
        super().__init__()
        self.lin = lin

    def forward(self, x):
        return self.lin(x.reshape(x.shape[0], -1)).unsqueeze(-1)


LAYER_CASES = [
    # name, C, T, N, sisma description, torch modules
    ("convnet", 3, 40, 4,
     "conv 4 k=5 stride=2 pad=2, batchnorm, relu, maxpool 2, conv 6 k=3 pad=2 dil=2, gelu, avgpool 2 stride=1, "
     "leaky alpha=0.1, gap, dense 3",
     lambda: [nn.Conv1d(3, 4, 5, stride=2, padding=2), nn.BatchNorm1d(4), nn.ReLU(), nn.MaxPool1d(2),
              nn.Conv1d(4, 6, 3, padding=2, dilation=2), nn.GELU(), nn.AvgPool1d(2, stride=1),
              nn.LeakyReLU(0.1), nn.AdaptiveAvgPool1d(1), Flat(nn.Linear(6, 3))]),
    ("decoder", 4, 5, 3,
     "convt 3 k=4 stride=2 pad=1 name=up, silu, groupnorm 3, conv 3 k=3 pad=1, concat from=up, upsample 2, "
     "layernorm, tanh, conv 2 k=1, sigmoid",
     lambda: [nn.ConvTranspose1d(4, 3, 4, stride=2, padding=1), nn.SiLU(), nn.GroupNorm(3, 3),
              nn.Conv1d(3, 3, 3, padding=1), Concat(0), nn.Upsample(scale_factor=2, mode="nearest"),
              nn.LayerNorm([6, 20]), nn.Tanh(), nn.Conv1d(6, 2, 1), nn.Sigmoid()]),
    ("mlp", 6, 1, 5, "dense 8, relu, dense 8, tanh, dense 2",
     lambda: [Flat(nn.Linear(6, 8)), nn.ReLU(), Flat(nn.Linear(8, 8)), nn.Tanh(), Flat(nn.Linear(8, 2))]),
    ("rnn", 3, 7, 3, "gru 5, lstm 4 last=1, dense 2",
     lambda: [Seq(nn.GRU(3, 5, batch_first=True)), Seq(nn.LSTM(5, 4, batch_first=True), last=True),
              Flat(nn.Linear(4, 2))]),
    ("embed", 1, 1, 4, "embed 16, dense 8, silu, dense 3",
     lambda: [Embed(16), Flat(nn.Linear(16, 8)), nn.SiLU(), Flat(nn.Linear(8, 3))]),
]


def params_of(mods):
    return [p for m in mods for p in m.parameters()]


def layer_cases():
    for name, c, t, n, desc, make in LAYER_CASES:
        mods = make()
        for m in mods:  # non-trivial affine parameters for the norms
            for p in m.parameters():
                if (p.dim() == 1 or isinstance(m, nn.LayerNorm)) and not isinstance(m, (nn.GRU, nn.LSTM)):
                    with torch.no_grad():
                        p.normal_(0.5 if p is getattr(m, "weight", None) else 0.0, 0.3)
        lines.append("model %s %d %d %d %s" % (name, c, t, n, desc))
        x = torch.round(torch.randn(n, c, t) * (30 if name == "embed" else 1), decimals=3).requires_grad_(True)
        ps = params_of(mods)
        vec(name + "/x", x)
        vec(name + "/params", torch.cat([p.reshape(-1) for p in ps]))
        y = run(mods, x)
        r = torch.randn_like(y)
        (y * r).sum().backward()
        vec(name + "/r", r)
        vec(name + "/y", y)
        vec(name + "/dx", x.grad)
        vec(name + "/grad", torch.cat([p.grad.reshape(-1) for p in ps]))
        bufs = [b for m in mods if isinstance(m, nn.BatchNorm1d) for b in (m.running_mean, m.running_var)]
        vec(name + "/buffers", torch.cat(bufs) if bufs else torch.zeros(0))
        for m in mods:
            m.eval()
        vec(name + "/y_eval", run(mods, x))


def loss_cases():
    n, k = 6, 3
    pred = torch.randn(n, k)
    target = torch.rand(n, k)
    labels = torch.tensor([0, 2, 1, 2, 0, 1])
    w = torch.tensor([0.5, 2.0, 1.0])
    cases = [
        ("mse", lambda p: F.mse_loss(p, target), target),
        ("l1", lambda p: F.l1_loss(p, target), target),
        ("huber", lambda p: F.huber_loss(p, target, delta=0.7), target),
        ("bce", lambda p: F.binary_cross_entropy_with_logits(p, (target > 0.5).float()), (target > 0.5).float()),
        ("ce", lambda p: F.cross_entropy(p, labels, weight=w), labels.float()),
    ]
    vec("loss/ce_weight", w)
    for kind, f, tgt in cases:
        p = pred.clone().requires_grad_(True)
        v = f(p)
        v.backward()
        vec("loss/%s/pred" % kind, pred)
        vec("loss/%s/target" % kind, tgt)
        vec("loss/%s/value" % kind, v.reshape(1))
        vec("loss/%s/grad" % kind, p.grad)


def lr_at(sched, base, step, total):
    if sched == "cosine":
        lr = 0.5 * base * (1 + math.cos(math.pi * step / total))
    elif sched == "step":
        lr = base * 0.5 ** (step // 5)
    else:
        lr = base
    return lr * min(1.0, (step + 1) / 4) if sched == "cosine" else lr


NS, B = 48, 12
TRAIN = [
    # name, C, T, model, optimiser, lr, schedule, clip; batches of B from NS samples, 20 steps
    ("cnn_adam", 3, 24, "conv 8 k=5 pad=2, batchnorm, relu, maxpool 2, conv 8 k=3, relu, gap, dense 2",
     "adam", 1e-2, "constant", 0.0),
    ("mlp_nesterov", 8, 1, "dense 16, tanh, dense 16, relu, dense 2", "nesterov", 5e-2, "step", 0.0),
    ("cnn_adamw", 3, 24, "conv 6 k=5, gelu, avgpool 2, conv 6 k=3, silu, gap, dense 2",
     "adamw", 1e-2, "cosine", 0.5),
]


def make_train(c, t):
    if c == 8:
        return [Flat(nn.Linear(8, 16)), nn.Tanh(), Flat(nn.Linear(16, 16)), nn.ReLU(), Flat(nn.Linear(16, 2))]
    if "batchnorm" in cur_desc:
        return [nn.Conv1d(3, 8, 5, padding=2), nn.BatchNorm1d(8), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(8, 8, 3),
                nn.ReLU(), nn.AdaptiveAvgPool1d(1), Flat(nn.Linear(8, 2))]
    return [nn.Conv1d(3, 6, 5), nn.GELU(), nn.AvgPool1d(2), nn.Conv1d(6, 6, 3), nn.SiLU(), nn.AdaptiveAvgPool1d(1),
            Flat(nn.Linear(6, 2))]


def train_cases():
    global cur_desc
    for name, c, t, desc, opt, lr, sched, clip in TRAIN:
        cur_desc = desc
        mods = make_train(c, t)
        ps = params_of(mods)
        x = torch.round(torch.randn(NS, c, t), decimals=2)
        y = (x[:, 0].mean(dim=-1) + 0.3 * torch.randn(NS) > 0).long()  # a learnable label
        lines.append("model train/%s %d %d %d %s" % (name, c, t, B, desc))
        lines.append("train train/%s %s %g %s %g" % (name, opt, lr, sched, clip))
        vec("train/%s/x" % name, x)
        vec("train/%s/y" % name, y.float())
        vec("train/%s/params0" % name, torch.cat([p.reshape(-1) for p in ps]))
        if opt == "adam":
            o = torch.optim.Adam(ps, lr=lr)
        elif opt == "adamw":
            o = torch.optim.AdamW(ps, lr=lr, weight_decay=0.05)
        else:
            o = torch.optim.SGD(ps, lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-3)
        losses = []
        for step in range(20):
            for g in o.param_groups:
                g["lr"] = lr_at(sched, lr, step, 20)
            b = (step * B) % NS
            o.zero_grad()
            out = run(mods, x[b:b + B]).reshape(B, 2)
            loss = F.cross_entropy(out, y[b:b + B])
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(ps, clip)
            o.step()
            losses.append(loss.item())
        vec("train/%s/losses" % name, torch.tensor(losses))
        vec("train/%s/params20" % name, torch.cat([p.reshape(-1) for p in ps]))


def main():
    lines.append("# made by dev/golden_nn.py with torch %s; see the script for the format" % torch.__version__)
    layer_cases()
    loss_cases()
    train_cases()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s (%d lines)" % (OUT, len(lines)))


if __name__ == "__main__":
    main()
