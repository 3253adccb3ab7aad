"""Formula weights for golden fixtures: every state_dict entry's values are a function of its key and shape only
(FNV-1a of the key, then a murmur3 finaliser per element), bit for bit as tests/helpers/formula-weights.ts computes
them, so a fixture needs to store no weights. Imported by the fixture scripts beside it."""

import numpy as np


def fnv1a(s):
    h = 0x811C9DC5
    for c in s.encode():
        h = ((h ^ c) * 0x01000193) & 0xFFFFFFFF
    return h


def hash_uniform(key, n):
    """n values in [-1, 1): 2 * fmix32(fnv1a(key) ^ (i * 0x9E3779B9)) / 2^32 - 1, exact in float64."""
    i = np.arange(n, dtype=np.uint64)
    h = (np.uint64(fnv1a(key)) ^ ((i * np.uint64(0x9E3779B9)) & np.uint64(0xFFFFFFFF))).astype(np.uint64)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(16)
    return 2.0 * (h.astype(np.float64) / 4294967296.0) - 1.0


def formula_value(key, shape):
    """float32 values for one state_dict entry, a function of its key and shape only."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = hash_uniform(key, n)
    if key.endswith('num_batches_tracked'):
        v = np.zeros(n)
    elif key.endswith('running_var'):
        v = 1.0 + u * 0.5
    elif key.endswith('running_mean') or key.endswith('bias'):
        v = u * 0.1
    elif len(shape) == 1:  # BN weight
        v = 1.0 + u * 0.25
    else:  # conv / linear weight: He uniform over fan_in
        fan_in = int(np.prod(shape[1:]))
        v = u * np.sqrt(6.0 / fan_in)
    return v.astype(np.float32).reshape(shape)
