#!/usr/bin/env python3
"""Writes test/fixtures/torch-rnn.json: PyTorch's own forward and backward of nn.RNN (tanh, relu),
nn.LSTM and nn.GRU, two layers, bidirectional, over a variable-length batch packed with
pack_padded_sequence(enforce_sorted=False), so the test suite can check the engine's oracle
against PyTorch without needing torch.

For each cell: weights, inputs, h0 (and c0) from a fixed generator, rounded to two decimals so
the JSON stays small and both sides parse the same doubles; the loss is the linear functional
L = <dy, y> + <dhT, hT> (+ <dcT, cT>) whose gradients are what layerBackward(dy, dhT, dcT)
returns. Everything runs in float64; results are written to 12 significant digits.

Usage: python3 scripts/torch-fixtures.py   (needs torch; run from the repository root)
"""
import json
import os

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

CELLS = {
    'tanh': lambda D, H, L: torch.nn.RNN(D, H, num_layers=L, nonlinearity='tanh', bidirectional=True),
    'relu': lambda D, H, L: torch.nn.RNN(D, H, num_layers=L, nonlinearity='relu', bidirectional=True),
    'lstm': lambda D, H, L: torch.nn.LSTM(D, H, num_layers=L, bidirectional=True),
    'gru': lambda D, H, L: torch.nn.GRU(D, H, num_layers=L, bidirectional=True),
}
D, H, L, T, B = 3, 2, 2, 4, 3
LENGTHS = [3, 1, 4]  # unsorted, with a length-1 sequence and a full one


def rounded(gen, shape, scale=1.0):
    """Uniform in [-scale, scale), rounded to two decimals."""
    values = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale
    return torch.round(values * 100) / 100


def flat(t):
    return [float(f'{v:.12g}') for v in t.detach().reshape(-1).tolist()]


def case(cell, seed):
    gen = torch.Generator().manual_seed(seed)
    module = CELLS[cell](D, H, L).double()
    weights = {}
    with torch.no_grad():
        for name in module._flat_weights_names:
            p = getattr(module, name)
            p.copy_(rounded(gen, p.shape, 0.8))
            weights[name] = p
    x = rounded(gen, (T, B, D)).requires_grad_()
    h0 = rounded(gen, (2 * L, B, H), 0.5).requires_grad_()
    c0 = rounded(gen, (2 * L, B, H), 0.5).requires_grad_() if cell == 'lstm' else None
    dy = rounded(gen, (T, B, 2 * H))
    dhT = rounded(gen, (2 * L, B, H))
    dcT = rounded(gen, (2 * L, B, H)) if cell == 'lstm' else None

    packed = pack_padded_sequence(x, torch.tensor(LENGTHS), enforce_sorted=False)
    out, state = module(packed, (h0, c0) if cell == 'lstm' else h0)
    y, _ = pad_packed_sequence(out, total_length=T)
    hT, cT = state if cell == 'lstm' else (state, None)
    loss = (dy * y).sum() + (dhT * hT).sum() + ((dcT * cT).sum() if cell == 'lstm' else 0)
    loss.backward()

    result = {
        'cell': cell, 'inputSize': D, 'hiddenSize': H, 'numLayers': L, 'bidirectional': True,
        'steps': T, 'batch': B, 'lengths': LENGTHS,
        'x': flat(x), 'h0': flat(h0), 'c0': flat(c0) if c0 is not None else None,
        'weights': {name: flat(p) for name, p in weights.items()},
        'dy': flat(dy), 'dhT': flat(dhT), 'dcT': flat(dcT) if dcT is not None else None,
        'y': flat(y), 'hT': flat(hT), 'cT': flat(cT) if cT is not None else None,
        'dx': flat(x.grad), 'dh0': flat(h0.grad), 'dc0': flat(c0.grad) if c0 is not None else None,
        'grads': {name: flat(p.grad) for name, p in weights.items()},
    }
    return result


def main():
    fixture = {
        'source': 'scripts/torch-fixtures.py',
        'torch': torch.__version__.split('+')[0],
        'cases': [case(cell, seed) for seed, cell in enumerate(CELLS, start=1)],
    }
    path = os.path.join('test', 'fixtures', 'torch-rnn.json')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(fixture, f, separators=(',', ':'))
        f.write('\n')
    print(f'wrote {path} ({os.path.getsize(path)} bytes)')


if __name__ == '__main__':
    main()
