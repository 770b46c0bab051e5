#!/usr/bin/env python3
"""Loads checkpoints written by `bptt` into PyTorch and compares the logits.

For each case in DIR/cases.json (written by scripts/torch-check-checkpoint.js): builds
nn.RNN/LSTM/GRU(num_layers, bidirectional, nonlinearity) + nn.Linear exactly as the checkpoint's
metadata says, loads the rnn.* and fc.* tensors with load_state_dict(strict=True), runs the saved
inputs (tokens one-hot, or dense), and compares with bptt's outputs: the logits at every step
(language models), the class probabilities from h_n of packed sequences (classify), the values of
the Linear on the last step (forecast). Needs torch and numpy; not part of the
test suite (which must run without torch).

usage: python3 scripts/torch-check-checkpoint.py DIR
"""
import json
import struct
import sys

import numpy as np
import torch


def read_safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop('__metadata__', {})
    base = 8 + n
    tensors = {}
    for name, t in header.items():
        begin, end = t['data_offsets']
        dtype = {'F32': np.float32, 'I32': np.int32, 'U32': np.uint32}[t['dtype']]
        tensors[name] = np.frombuffer(raw[base + begin:base + end], dtype=dtype).reshape(t['shape'])
    return meta, tensors


def main(folder):
    cases = json.load(open(f'{folder}/cases.json'))
    worst = 0.0
    for case in cases:
        meta, tensors = read_safetensors(case['file'])
        model = json.loads(meta['model'])
        kwargs = dict(input_size=model['inputSize'], hidden_size=model['hiddenSize'], num_layers=model['numLayers'],
                      bidirectional=model['bidirectional'])
        cell = model['cell']
        if cell in ('tanh', 'relu'):
            rnn = torch.nn.RNN(nonlinearity=cell, **kwargs)
        else:
            rnn = {'lstm': torch.nn.LSTM, 'gru': torch.nn.GRU}[cell](**kwargs)
        dirs = 2 if model['bidirectional'] else 1
        fc = torch.nn.Linear(dirs * model['hiddenSize'], model['outputSize'])
        net = torch.nn.ModuleDict({'rnn': rnn, 'fc': fc})
        state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items() if k.startswith('rnn.') or k.startswith('fc.')}
        net.load_state_dict(state, strict=True)
        T, B = case['steps'], case['batch']
        kind = case.get('kind', 'lm')
        if 'dense' in case:
            x = torch.tensor(case['dense'], dtype=torch.float32).reshape(T, B, case['inputSize'])
        else:
            tokens = torch.tensor(case['tokens']).reshape(T, B)
            x = torch.nn.functional.one_hot(tokens.long(), model['inputSize']).float()
        with torch.no_grad():
            if kind == 'classify':
                # The usual idiom: pack by length, take h_n's top layer (forward at the last
                # valid step, reverse at step 0), Linear, softmax.
                packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(case['lengths']), enforce_sorted=False)
                _, h_n = rnn(packed)
                if cell == 'lstm':
                    h_n = h_n[0]
                last = torch.cat([h_n[-2], h_n[-1]], dim=1) if dirs == 2 else h_n[-1]
                logits = torch.softmax(fc(last), dim=1).reshape(-1).numpy()
                ours = np.array(case['probabilities'], dtype=np.float64)
            elif kind == 'forecast':
                y, _ = rnn(x)
                logits = fc(y[-1]).reshape(-1).numpy()
                ours = np.array(case['values'], dtype=np.float64)
            else:
                y, _ = rnn(x)
                logits = fc(y).reshape(-1).numpy()
                ours = np.array(case['logits'], dtype=np.float64)
        err = float(np.max(np.abs(logits - ours)) / max(1e-30, np.max(np.abs(ours))))
        worst = max(worst, err)
        print(f"{case['name']}: strict load ok, logits max relative difference {err:.2e}")
    print(f'worst {worst:.2e}')
    sys.exit(0 if worst < 1e-5 else 1)


if __name__ == '__main__':
    main(sys.argv[1])
