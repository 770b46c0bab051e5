#!/usr/bin/env python3
"""Writes test/fixtures/torch-heads.json: the task heads as a PyTorch user writes them, loss and
the gradient of every parameter, so the test suite checks our heads against PyTorch without
needing torch.

Each case is a recurrent module (nn.RNN / nn.LSTM / nn.GRU; one or two layers; one or both
directions) plus nn.Linear over a variable-length batch packed with pack_padded_sequence, and one
head:
  - classify, pool 'last': fc(h_n of the top layer; both directions concatenated), CrossEntropyLoss
    (optionally with class weights, ignore_index -1);
  - classify, pool 'mean': fc(mean of the padded outputs over each sequence's valid steps);
  - regress, 'every': fc at every valid step, MSELoss or HuberLoss(delta) over the valid elements;
  - regress, 'last': fc(h_n as above), MSELoss or HuberLoss.
Weights and data are rounded to two decimals; everything runs in float64; results have 12
significant digits.

Usage: python3 scripts/torch-head-fixtures.py   (needs torch; run from the repository root)
"""
import json
import os

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

MODULES = {
    'tanh': lambda D, H, L, bi: torch.nn.RNN(D, H, num_layers=L, nonlinearity='tanh', bidirectional=bi),
    'relu': lambda D, H, L, bi: torch.nn.RNN(D, H, num_layers=L, nonlinearity='relu', bidirectional=bi),
    'lstm': lambda D, H, L, bi: torch.nn.LSTM(D, H, num_layers=L, bidirectional=bi),
    'gru': lambda D, H, L, bi: torch.nn.GRU(D, H, num_layers=L, bidirectional=bi),
}
D, H, T, B = 3, 4, 5, 4
LENGTHS = [5, 2, 1, 4]  # unsorted, with a length-1 sequence and a full one

CASES = [
    # (cell, layers, bidirectional, head)
    ('lstm', 2, True, {'kind': 'classify', 'pool': 'last'}),
    ('gru', 1, False, {'kind': 'classify', 'pool': 'last', 'classWeights': [0.5, 2.0, 1.25]}),
    ('tanh', 2, True, {'kind': 'classify', 'pool': 'mean'}),
    ('gru', 2, True, {'kind': 'regress', 'positions': 'every', 'loss': 'mse'}),
    ('lstm', 1, False, {'kind': 'regress', 'positions': 'every', 'loss': 'huber', 'delta': 0.25}),
    ('relu', 1, True, {'kind': 'regress', 'positions': 'last', 'loss': 'mse'}),
    ('lstm', 2, False, {'kind': 'regress', 'positions': 'last', 'loss': 'huber', 'delta': 0.5}),
]


def rounded(gen, shape, scale=1.0):
    values = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * scale
    return torch.round(values * 100) / 100


def flat(t):
    return [float(f'{v:.12g}') for v in t.detach().reshape(-1).tolist()]


def case(index, cell, layers, bidirectional, head):
    gen = torch.Generator().manual_seed(100 + index)
    dirs = 2 if bidirectional else 1
    K = 3 if head['kind'] == 'classify' else 2
    rnn = MODULES[cell](D, H, layers, bidirectional).double()
    fc = torch.nn.Linear(dirs * H, K).double()
    params = {}
    with torch.no_grad():
        for name, p in list(rnn.named_parameters()):
            p.copy_(rounded(gen, p.shape, 0.8))
            params['rnn.' + name] = p
        for name, p in list(fc.named_parameters()):
            p.copy_(rounded(gen, p.shape, 0.8))
            params['fc.' + name] = p
    x = rounded(gen, (T, B, D))
    lengths = torch.tensor(LENGTHS)
    out, state = rnn(pack_padded_sequence(x, lengths, enforce_sorted=False))
    y, _ = pad_packed_sequence(out, total_length=T)  # [T, B, dirs*H], zeros past each length
    h_n = state[0] if cell == 'lstm' else state
    last = torch.cat([h_n[-2], h_n[-1]], 1) if bidirectional else h_n[-1]  # [B, dirs*H]
    valid = (torch.arange(T)[:, None] < lengths[None, :]).double()  # [T, B]

    if head['kind'] == 'classify':
        targets = [0, 2, 1, -1] if 'classWeights' in head else [1, 0, 2, 2]
        if head['pool'] == 'last':
            features = last
        else:
            features = (y * valid[:, :, None]).sum(0) / lengths[:, None].double()
        weight = torch.tensor(head['classWeights'], dtype=torch.float64) if 'classWeights' in head else None
        loss = torch.nn.CrossEntropyLoss(weight=weight, ignore_index=-1)(fc(features), torch.tensor(targets))
    else:
        criterion = torch.nn.MSELoss() if head['loss'] == 'mse' else torch.nn.HuberLoss(delta=head['delta'])
        if head['positions'] == 'every':
            target = rounded(gen, (T, B, K), 1.5)
            mask = valid.bool()
            loss = criterion(fc(y)[mask], target[mask])
            targets = flat(target)
        else:
            target = rounded(gen, (B, K), 1.5)
            loss = criterion(fc(last), target)
            targets = flat(target)
    grads = torch.autograd.grad(loss, list(params.values()))
    return {
        'cell': cell,
        'numLayers': layers,
        'bidirectional': bidirectional,
        'inputSize': D,
        'hiddenSize': H,
        'outputSize': K,
        'head': head,
        'steps': T,
        'batch': B,
        'lengths': LENGTHS,
        'x': flat(x),
        'targets': targets,
        'params': {name: flat(p) for name, p in params.items()},
        'loss': float(f'{loss.item():.12g}'),
        'grads': {name: flat(g) for name, g in zip(params.keys(), grads)},
    }


def main():
    cases = [case(i, *c) for i, c in enumerate(CASES)]
    out = {'torch': torch.__version__, 'cases': cases}
    path = os.path.join('test', 'fixtures', 'torch-heads.json')
    with open(path, 'w') as f:
        json.dump(out, f, separators=(',', ':'))
        f.write('\n')
    print(f'wrote {path}: {len(cases)} cases, torch {torch.__version__}')


if __name__ == '__main__':
    main()
