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
    acc,
):
    """mvfst-rl window features for every active env: ``out[e, :100]`` and ``rew[e]``.

    Mirrors :class:`.features.StateBuilder` + :func:`.features.summarise` + :func:`.reward`.
    Returns nothing; ``nev[e]`` valid states are summarised (0 -> zeros, reward 0).

    Sizes come from the arrays (allocated by :class:`.vector.NetSimVectorEnv` with the layout of
    :mod:`.fast`): ``ev`` is ``[B, EV_MAX, N_RAW]``, ``tail_t`` and ``tail_c`` are ``[B, RING]``
    rings (``RING`` a power of two); ``tmp`` (``[EV_MAX, 20]``, one row per valid event) and
    ``acc`` (``[5, 20]``) are scratch.
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
                row = tmp[m]
                row[0] = r[1] / 100.0
                row[1] = r[2] / 100.0
                row[2] = r[3] / 100.0
                row[3] = r[4] / 100.0
                row[4] = r[5] / 100.0
                row[5] = (r[3] - r[1]) / 100.0
                row[6] = r[6] * ms / 1000.0
                row[7] = r[7] * ms / 1000.0
                w = row[6] - row[7]
                row[8] = w if w > 0 else 0.0
                row[9] = (r[8] - p[8]) * ms / 1000.0
                row[10] = (r[9] - p[9]) / 1000.0
                row[11] = (r[10] - p[10]) * ms / 1000.0
                row[12] = r[11]
                row[13] = r[12] - p[12]
                row[14] = r[10] - p[10]
                row[15] = r[13] - p[13]
                row[16] = r[14] * ms / 1000.0
                row[17] = thr / 1000.0
                row[18] = r[15] * ms / 1000.0
                row[19] = r[17]
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
        # event-outer, field-inner: each field accumulates in event order, as numpy's
        # reduction over axis 0 of the event engine's [events, 20] array (exactly the same
        # sums), while the 20 independent chains run side by side instead of one after another
        sm = acc[0]
        mn = acc[1]
        mx = acc[2]
        sq = acc[3]
        for f in range(20):
            sm[f] = 0.0
            mn[f] = math.inf
            mx[f] = -math.inf
            sq[f] = 0.0
        for i in range(m):
            row = tmp[i]
            for f in range(20):
                v = row[f]
                sm[f] += v
                if v < mn[f]:
                    mn[f] = v
                if v > mx[f]:
                    mx[f] = v
        mean = acc[4]
        for f in range(20):
            mean[f] = sm[f] / m
        if m > 1:
            for i in range(m):
                row = tmp[i]
                for f in range(20):
                    dv = row[f] - mean[f]
                    sq[f] += dv * dv
        for f in range(20):
            o[f] = sm[f] if f > 8 else 0.0
            o[20 + f] = mean[f]
            o[40 + f] = math.sqrt(sq[f] / (m - 1)) if m > 1 else 0.0
            o[60 + f] = mn[f]
            o[80 + f] = mx[f]
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
