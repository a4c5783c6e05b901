"""Numba kernels behind the replay buffers (private).

Every kernel is ``@njit(cache=True, nogil=True)``: compiled once per machine and then loaded from
the on-disk cache (so a short training run does not pay the compiler), and run without the GIL
(so the learner's prefetch thread samples while torch runs an update in another thread).

A tree is 8-ary and stored level by level in one flat float64 array ``t`` (sums) and a twin
``mn`` (minimum positive leaf, +inf when none): ``offs[d]`` is where level ``d`` starts (level 0 =
the 8 top nodes, the last level = the leaves), and the children of node ``i`` of level ``d`` are
``8i .. 8i+7`` of level ``d + 1``. Eight float64 siblings fill one 64-byte cache line, so a
descent through a 1M-leaf tree touches 7 lines instead of 20 for a binary tree. Every parent is
*recomputed* from its children (never incremented by a delta), so the tree never drifts and a tree
rebuilt bottom-up from its leaves is bit-identical to one built by updates.

Kernels that validate input return an error code (0 = fine) and the position of the first bad
item *before* they write anything; the Python side turns the code into a message.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

INF = np.inf

# Error codes shared with the Python wrappers.
OK = 0
ERR_INDEX_RANGE = 1
ERR_INDEX_EMPTY = 2
ERR_PRIORITY_NAN = 3
ERR_PRIORITY_NEG = 4


@njit(cache=True, nogil=True, inline="always")
def _repair_parent(t, mn, child, parent, p):  # pragma: no cover - compiled
    """Recompute node ``p`` of level ``parent`` (sum and min) from its 8 children."""
    base = child + 8 * p
    acc = 0.0
    lo = INF
    for k in range(8):
        acc += t[base + k]
        x = mn[base + k]
        lo = x if x < lo else lo
    t[parent + p] = acc
    mn[parent + p] = lo


@njit(cache=True, nogil=True)
def _set_batch(t, mn, offs, idx, values, m):  # pragma: no cover - compiled
    """Set leaves ``idx[:m]`` to ``values[:m]`` and repair every ancestor.

    Level-synchronous: all leaves first, then one level of parents for the whole batch at a
    time. The items of a level are independent, so the CPU overlaps their cache misses (a 1M-slot
    tree does not fit in L2); a parent shared by several items is simply recomputed again, which
    is harmless because all of its children are final by then. Duplicates: last one wins.
    """
    depth = offs.shape[0]
    leaf = offs[depth - 1]
    for j in range(m):
        v = values[j]
        t[leaf + idx[j]] = v
        # The min tree ignores zero leaves: they can never be sampled, so they take no part in
        # the importance-weight normalisation (an empty leaf is +inf, not 0).
        mn[leaf + idx[j]] = v if v > 0.0 else INF
    for d in range(depth - 2, -1, -1):
        shift = 3 * (depth - 1 - d)
        child = offs[d + 1]
        parent = offs[d]
        prev = -1
        for j in range(m):
            p = idx[j] >> shift
            if p == prev:
                continue  # sorted / contiguous batches share parents: compute each once
            prev = p
            _repair_parent(t, mn, child, parent, p)


@njit(cache=True, nogil=True)
def tree_set(t, mn, offs, idx, values):  # pragma: no cover - compiled
    """Set leaves ``idx`` to ``values`` (already transformed) and repair the tree upwards."""
    _set_batch(t, mn, offs, idx, values, idx.shape[0])


@njit(cache=True, nogil=True, inline="always")
def _total(t, offs):  # pragma: no cover - compiled
    acc = 0.0
    for k in range(8):
        acc += t[offs[0] + k]
    return acc


@njit(cache=True, nogil=True, inline="always")
def _minimum(mn, offs):  # pragma: no cover - compiled
    lo = INF
    for k in range(8):
        x = mn[offs[0] + k]
        lo = x if x < lo else lo
    return lo


@njit(cache=True, nogil=True)
def tree_total_min(t, mn, offs):  # pragma: no cover - compiled
    """(sum of all leaves, smallest positive leaf or inf)."""
    return _total(t, offs), _minimum(mn, offs)


@njit(cache=True, nogil=True)
def _descend(t, offs, v, out):  # pragma: no cover - compiled
    """Prefix-sum search for every value of ``v`` (overwritten), level-synchronous (see above).

    Half-open intervals: leaf i owns ``[C_i, C_i + p_i)``. Only children with mass are
    candidates, so zero leaves are never returned; a value at or beyond a node's mass (rounding,
    or exactly the total) goes to its last child with mass, keeping ``v >= mass`` so the descent
    ends on the last positive leaf below it: the last slot is reachable, nothing falls off.
    """
    b = v.shape[0]
    for j in range(b):
        out[j] = 0
    for d in range(offs.shape[0]):
        off = offs[d]
        for j in range(b):
            base = off + 8 * out[j]
            x = v[j]
            sel = -1
            last = 0
            for k in range(8):
                s = t[base + k]
                if s > 0.0:
                    if x < s:
                        sel = k
                        break
                    x -= s
                    last = k
            if sel < 0:
                sel = last
                x += t[base + last]
            v[j] = x
            out[j] = 8 * out[j] + sel


@njit(cache=True, nogil=True)
def tree_find(t, offs, values, out):  # pragma: no cover - compiled
    """``out[j]`` = the leaf whose interval ``[C_i, C_i + p_i)`` holds ``values[j]``."""
    _descend(t, offs, values.copy(), out)


@njit(cache=True, nogil=True)
def tree_rebuild(t, mn, offs):  # pragma: no cover - compiled
    """Recompute every internal node from the leaves (after a bulk leaf load)."""
    depth = offs.shape[0]
    leaf = offs[depth - 1]
    for i in range(leaf, t.shape[0]):
        v = t[i]
        mn[i] = v if v > 0.0 else INF
    for d in range(depth - 2, -1, -1):
        child = offs[d + 1]
        parent = offs[d]
        child_end = offs[d + 2] if d + 2 < depth else t.shape[0]
        # Only parents with real children: padding nodes stay 0 / +inf.
        for p in range((child_end - child) // 8):
            _repair_parent(t, mn, child, parent, p)


@njit(cache=True, nogil=True)
def sample_prioritized(t, mn, offs, u, beta, gens, out_idx, out_w, out_gen):  # pragma: no cover
    """Stratified proportional sampling with paper importance weights.

    Segment ``j`` of ``B`` equal segments of the total mass gets the value ``(j + u_j) * total/B``.
    Weights: ``w_i = (N P(i))^-beta / max_k w_k`` with ``max_k w_k = (N p_min / total)^-beta``;
    N and the total cancel, leaving ``w_i = (p_min / p_i)^beta`` (tree values, i.e. ``p^alpha``).
    """
    b = u.shape[0]
    seg = _total(t, offs) / b
    v = np.empty(b, dtype=np.float64)
    for j in range(b):
        v[j] = (j + u[j]) * seg
    _descend(t, offs, v, out_idx)
    pmin = _minimum(mn, offs)
    leaf = offs[offs.shape[0] - 1]
    for j in range(b):
        i = out_idx[j]
        out_w[j] = math.pow(pmin / t[leaf + i], beta)
        out_gen[j] = gens[i]


@njit(cache=True, nogil=True)
def check_update(idx, td, gens, capacity):  # pragma: no cover - compiled
    """Validate a priority update; return (code, position) of the first problem or (0, -1)."""
    for j in range(idx.shape[0]):
        i = idx[j]
        if i < 0 or i >= capacity:
            return ERR_INDEX_RANGE, j
        if gens[i] == 0:
            return ERR_INDEX_EMPTY, j
        d = td[j]
        if not math.isfinite(d):
            return ERR_PRIORITY_NAN, j
        if d < 0.0:
            return ERR_PRIORITY_NEG, j
    return OK, -1


@njit(cache=True, nogil=True)
def update_prioritized(
    t, mn, offs, idx, td, gen_in, gens, reserved, eps, eps_reserved, alpha, max_p
):  # pragma: no cover - compiled
    """Validate, then apply priorities ``(|td| + eps_slot) ** alpha`` where the generation still
    matches (the slot was not overwritten since it was sampled).

    Returns (error code, error position, applied, new max_p); on an error nothing is written.
    """
    code, pos = check_update(idx, td, gens, gens.shape[0])
    if code != OK:
        return code, pos, 0, max_p
    m = 0
    keep = np.empty(idx.shape[0], dtype=np.int64)
    vals = np.empty(idx.shape[0], dtype=np.float64)
    for j in range(idx.shape[0]):
        i = idx[j]
        if gens[i] != gen_in[j]:
            continue
        p = td[j] + (eps_reserved if i < reserved else eps)
        if p > max_p:
            max_p = p
        keep[m] = i
        vals[m] = math.pow(p, alpha)
        m += 1
    # Duplicates: the leaf loop runs in order, so the last occurrence wins.
    _set_batch(t, mn, offs, keep, vals, m)
    return OK, -1, m, max_p


@njit(cache=True, nogil=True)
def check_priorities(prio):  # pragma: no cover - compiled
    """Return (code, position) of the first NaN/inf or negative raw priority, or (0, -1)."""
    for j in range(prio.shape[0]):
        d = prio[j]
        if not math.isfinite(d):
            return ERR_PRIORITY_NAN, j
        if d < 0.0:
            return ERR_PRIORITY_NEG, j
    return OK, -1


@njit(cache=True, nogil=True)
def add_prioritized(t, mn, offs, gens, slots, prio, eps, alpha, max_p):  # pragma: no cover
    """New items with priorities ``(|prio| + eps) ** alpha``: bump the slots' generations (the
    stale-update guard) and set their leaves. Returns the new max raw priority."""
    n = slots.shape[0]
    vals = np.empty(n, dtype=np.float64)
    for j in range(n):
        gens[slots[j]] += 1
        p = prio[j] + eps
        if p > max_p:
            max_p = p
        vals[j] = math.pow(p, alpha)
    _set_batch(t, mn, offs, slots, vals, n)
    return max_p


@njit(cache=True, nogil=True)
def add_at_value(t, mn, offs, gens, slots, value):  # pragma: no cover - compiled
    """New items without a priority all get the same (already transformed) max priority."""
    n = slots.shape[0]
    vals = np.empty(n, dtype=np.float64)
    for j in range(n):
        gens[slots[j]] += 1
        vals[j] = value
    _set_batch(t, mn, offs, slots, vals, n)


@njit(cache=True, nogil=True)
def bump_generations(gens, slots):  # pragma: no cover - compiled
    """Mark slots as rewritten (stale-update guard) for buffers without a tree."""
    for j in range(slots.shape[0]):
        gens[slots[j]] += 1
