"""mvfst-rl window features and reward for the compiled engine (:mod:`.fast`), in compiled code.

:func:`summarise_window` turns the raw ACK/loss events that :mod:`.fast` recorded for every env
during one window into the 100-float summary and the reward, as :mod:`.features` does with numpy
for the event engine.

It reads every size from its arguments and uses no constant of :mod:`.fast`: numba's on-disk
cache is invalidated only when a kernel's own file changes, so a kernel here that baked in a
constant of :mod:`.fast` would keep the stale value after an edit there.
"""

from __future__ import annotations

import math

import numba as nb


# _nrt=False: no reference counting. The kernel allocates nothing (the scratch ``tmp`` comes from
# the caller), and with NRT on, every row view (``ev[e, i]``, ``prev[e]``) cost an atomic
# incref/decref pair per event.
@nb.njit(cache=True, error_model="numpy", _nrt=False)
def summarise_window(
    ev,
    nev,
    prev,
    tail_t,
    tail_c,
    tidx,
    mss,
    out,
    rew,
    nvalid,
    coeffs,
    max_delay,
    log_reward,
    active,
    tmp,
):
    """mvfst-rl window features for every active env: ``out[e, :100]`` and ``rew[e]``.

    Mirrors :class:`.features.StateBuilder` + :func:`.features.summarise` + :func:`.reward`.
    Returns nothing; ``nev[e]`` valid states are summarised (0 -> zeros, reward 0).

    Sizes come from the arrays (allocated by :class:`.vector.NetSimVectorEnv` with the layout of
    :mod:`.fast`): ``ev`` is ``[B, EV_MAX, N_RAW]``, ``tail_t`` and ``tail_c`` are ``[B, RING]``
    rings (``RING`` a power of two), ``tmp`` is scratch of shape ``[20, >= EV_MAX]`` (field-major,
    so the per-field statistics read contiguous memory; a row length that is not a multiple of
    4 KB keeps the 20 per-event writes out of one L1 cache set).
    """
    B = ev.shape[0]
    n_raw = ev.shape[2]
    ring = tail_t.shape[1]
    mask = ring - 1
    for e in range(B):
        if not active[e]:
            continue
        n = nev[e]
        m = 0
        ms = mss[e]
        for i in range(n):
            r = ev[e, i]
            # rolling throughput: append (t, cum acked bytes), find last event <= t - 100 ms
            th = tidx[e, 0]
            tt = tidx[e, 1]
            tail_t[e, tt & mask] = r[0]
            tail_c[e, tt & mask] = r[16] * ms
            tt += 1
            tidx[e, 1] = tt
            j = tidx[e, 2]
            if j < th:
                j = th
            while j + 1 < tt and tail_t[e, (j + 1) & mask] <= r[0] - 100.0:
                j += 1
            tidx[e, 2] = j
            if tt - th > ring // 2:
                tidx[e, 0] = j if j > tt - ring // 2 else tt - ring // 2
            dt = r[0] - tail_t[e, j & mask]
            thr = (r[16] * ms - tail_c[e, j & mask]) / dt * 1000.0 if dt > 0 else 0.0
            # the previous event's raw row: the window's previous event, or the last event of
            # the previous window (copied to prev at the end)
            p = prev[e] if i == 0 else ev[e, i - 1]
            valid = r[2] > 0 and (r[3] - r[1]) >= 0
            if valid:
                tmp[0, m] = r[1] / 100.0
                tmp[1, m] = r[2] / 100.0
                tmp[2, m] = r[3] / 100.0
                tmp[3, m] = r[4] / 100.0
                tmp[4, m] = r[5] / 100.0
                tmp[5, m] = (r[3] - r[1]) / 100.0
                tmp[6, m] = r[6] * ms / 1000.0
                tmp[7, m] = r[7] * ms / 1000.0
                w = tmp[6, m] - tmp[7, m]
                tmp[8, m] = w if w > 0 else 0.0
                tmp[9, m] = (r[8] - p[8]) * ms / 1000.0
                tmp[10, m] = (r[9] - p[9]) / 1000.0
                tmp[11, m] = (r[10] - p[10]) * ms / 1000.0
                tmp[12, m] = r[11]
                tmp[13, m] = r[12] - p[12]
                tmp[14, m] = r[10] - p[10]
                tmp[15, m] = r[13] - p[13]
                tmp[16, m] = r[14] * ms / 1000.0
                tmp[17, m] = thr / 1000.0
                tmp[18, m] = r[15] * ms / 1000.0
                tmp[19, m] = r[17]
                m += 1
        if n > 0:
            last = ev[e, n - 1]
            pe = prev[e]
            for k in range(n_raw):
                pe[k] = last[k]
        nev[e] = 0
        nvalid[e] = m
        o = out[e]
        for k in range(100):
            o[k] = 0.0
        if m == 0:
            rew[e] = 0.0
            continue
        for f in range(20):
            col = tmp[f]
            sm = 0.0
            mn = col[0]
            mx = col[0]
            for i in range(m):
                v = col[i]
                sm += v
                if v < mn:
                    mn = v
                if v > mx:
                    mx = v
            mean = sm / m
            sd = 0.0
            if m > 1:
                acc = 0.0
                for i in range(m):
                    dv = col[i] - mean
                    acc += dv * dv
                sd = math.sqrt(acc / (m - 1))
            o[f] = sm if f > 8 else 0.0
            o[20 + f] = mean
            o[40 + f] = sd
            o[60 + f] = mn
            o[80 + f] = mx
        thr_mb = o[20 + 17] * 1000.0 * 1e-6
        delay = (o[80 + 5] if max_delay else o[20 + 5]) * 100.0
        lost = o[18] * 1000.0 * 1e-6
        if log_reward:
            rv = coeffs[0] * math.log(1e-5 + thr_mb) - coeffs[1] * math.log(1e-5 + delay)
            if coeffs[2] != 0.0:
                rv -= coeffs[2] * math.log(1e-5 + lost)
        else:
            rv = coeffs[0] * thr_mb - coeffs[1] * delay - coeffs[2] * lost
        rew[e] = rv
