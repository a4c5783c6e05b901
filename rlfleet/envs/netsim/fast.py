"""A numba-compiled 1 ms-tick engine for batches of single-flow RL environments.

Same model as :mod:`.engine` (mahimahi links with departures computed at enqueue, droptail by
packets/bytes, IID loss after the bottleneck, fixed delays, an ACK path with its own schedule and
queue, an RFC 9002 window-limited sender without pacing, cumulative ACKs every ``ack_every``
packets / on a gap / after a timer), restricted to what RL training needs: **one flow per env
whose cwnd is set by actions** (or held fixed), integer one-way delays, and the mvfst-rl
features computed in compiled code. Work is processed tick by tick in a fixed order
(receiver, ACKs at the sender, timers, sending); timers due at a fractional time fire at the next
whole millisecond, the only timing difference from the event engine (agreement is tested on all
18 scenarios).

State lives in numpy arrays with one row per env; a ring of ``RING`` slots bounds the packets in
flight (cwnd <= 2000 plus PTO probes fits easily), and an overflow is reported, never ignored.
The window features and reward computed from the recorded events are in :mod:`.fast_features`.

Why this module is long: the packed-state layout and every kernel of the tick loop must share one
file. numba's on-disk cache (``cache=True``) is invalidated only when the file defining a kernel
changes, yet a kernel compiles its callees (most of them inlined) and the module constants it
reads into its own cached code. With the layout or the per-packet kernels in another file, an
edit there would leave ``run_until`` running stale code from the cache -- after a layout change,
reading and writing the wrong columns of the packed rows.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

# re-exported: the window features were part of this module
from rlfleet.envs.netsim.fast_features import summarise_window as summarise_window

RING = 8192
MASK = RING - 1
EV_MAX = 4096  # ACK/loss events per env per window
OWD_BINS = 32768  # per-packet one-way delay histogram, 1 ms bins
N_RAW = 19
OPP = 1504

# int state columns
(
    I_NEXT_PN,
    I_LO,
    I_LARGEST,
    I_INFLIGHT,
    I_SENT,
    I_RETX,
    I_TORTX,
    I_LOST,
    I_ACKED,
    I_DEBT,
    I_ACKB,
    I_PTO,
    I_TPTO,
    I_HASRTT,
    I_RXN,
    I_RXEXP,
    I_RXPEND,
    I_SEEN,
    I_DH,
    I_DT,
    I_AH,
    I_AT,
    I_SH,
    I_ST,
    I_UK,
    I_UTK,
    I_ULEFT,
    I_UQH,
    I_UQT,
    I_DK,
    I_DTK,
    I_DLEFT,
    I_DQH,
    I_DQT,
    I_NEV,
    I_OVF,
    I_RNG,
    I_QDROP,
    I_RLOST,
    I_TH,
    I_TT,
    I_TJ,
    I_NI,
) = range(43)
# float state columns
(
    F_NOW,
    F_CWND,
    F_SRTT,
    F_RTTVAR,
    F_MINRTT,
    F_LRTT,
    F_STAND,
    F_LASTSEND,
    F_RXTIMER,
    F_RXLAST,
    F_PERSIST,
    F_RXARM,
    F_SRTTPREV,
    F_SRTTMARK,
    F_NF,
) = range(15)
# float config columns
(
    C_DUP,
    C_DDN,
    C_LUP,
    C_LDN,
    C_MSS,
    C_ACKSZ,
    C_ACKEV,
    C_ACKTM,
    C_MINCW,
    C_MAXCW,
    C_UPK,
    C_UBY,
    C_DPK,
    C_DBY,
    C_TTHR,
    C_ATSRTT,
    C_NC,
) = range(17)
# int config: schedule (kind, num, den, off, n, period) for up then down
S_NI = 12
# Packed layout, one row per env. Few, wide arrays keep the compiled calls cheap (every array
# argument is passed as ~7 machine words; the per-ACK path makes ~8 calls):
#   si = [int state | schedule config | dfifo pn | rx pn | ack end | packet state | 2 link queues]
#   sf = [float state | float config | send time | dfifo time | ack time | ack delay | standing RTT
#        deque times | values]
O_SC = I_NI
O_DPN = O_SC + S_NI
O_RX = O_DPN + RING
O_AEND = O_RX + RING
O_PST = O_AEND + RING
O_QR = O_PST + RING
I_WIDTH = O_QR + 2 * RING
O_CFG = F_NF
O_STIME = O_CFG + C_NC
O_DT = O_STIME + RING
O_AT = O_DT + RING
O_ADL = O_AT + RING
O_SST = O_ADL + RING
O_SSV = O_SST + RING
F_WIDTH = O_SSV + RING


@nb.njit(cache=True, inline="always", error_model="numpy")
def _rand(si, e):
    # splitmix64 -> uniform [0, 1); per-env state so envs are independent and reproducible
    x = (si[e, I_RNG] + np.int64(-7046029254386353131)) & np.int64(0x7FFFFFFFFFFFFFFF)
    si[e, I_RNG] = x
    z = x
    z = ((z ^ (z >> 30)) * np.int64(-4658895280553007687)) & np.int64(0x7FFFFFFFFFFFFFFF)
    z = ((z ^ (z >> 27)) * np.int64(-7723592293110705685)) & np.int64(0x7FFFFFFFFFFFFFFF)
    z = z ^ (z >> 31)
    return (z >> 11) * (1.0 / 4503599627370496.0)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _stime(si, tab, e, d, k):
    b = 6 * d
    if si[e, O_SC + (b)] == 0:
        num = si[e, O_SC + (b + 1)]
        den = si[e, O_SC + (b + 2)]
        return ((k + 1) * den + num - 1) // num
    n = si[e, O_SC + (b + 4)]
    q = k // n
    return tab[si[e, O_SC + (b + 3)] + (k - q * n)] + q * si[e, O_SC + (b + 5)]


@nb.njit(cache=True, error_model="numpy")
def _sfirst(si, tab, e, d, t):
    b = 6 * d
    if t < 0:
        return 0
    if si[e, O_SC + (b)] == 0:
        return t * si[e, O_SC + (b + 1)] // si[e, O_SC + (b + 2)]
    n = si[e, O_SC + (b + 4)]
    per = si[e, O_SC + (b + 5)]
    off = si[e, O_SC + (b + 3)]
    q = t // per
    r = t - q * per
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if tab[off + mid] <= r:
            lo = mid + 1
        else:
            hi = mid
    return q * n + lo


@nb.njit(cache=True, error_model="numpy")
def _enqueue(si, sf, tab, e, d, a, size):
    """Link ``d`` (0 up, 1 down) of env ``e``: departure ms of a packet offered at ``a``, or -1."""
    kk, tkk, lft, qh, qt = (
        (I_UK, I_UTK, I_ULEFT, I_UQH, I_UQT) if d == 0 else (I_DK, I_DTK, I_DLEFT, I_DQH, I_DQT)
    )
    lpk = sf[e, O_CFG + (C_UPK)] if d == 0 else sf[e, O_CFG + (C_DPK)]
    lby = sf[e, O_CFG + (C_UBY)] if d == 0 else sf[e, O_CFG + (C_DBY)]
    fa = np.int64(math.floor(a))
    h = si[e, qh]
    t_ = si[e, qt]
    while h < t_ and si[e, O_QR + d * RING + (h & MASK)] <= fa:
        h += 1
    si[e, qh] = h
    waiting = t_ - h
    if lpk >= 0 and waiting + 1 > lpk:
        return -1
    if lby >= 0 and (waiting + 1) * size > lby:
        return -1
    if waiting >= RING - 1:
        si[e, I_OVF] = 1
        return -1
    left = si[e, lft]
    if left > 0 and si[e, tkk] > fa:
        k = si[e, kk]
        tk = si[e, tkk]
    else:
        k = _sfirst(si, tab, e, d, fa)
        if k <= si[e, kk]:
            k = si[e, kk] + 1
        tk = _stime(si, tab, e, d, k)
        left = OPP
    start = tk
    k0 = k
    s = size
    while s > left:
        s -= left
        k += 1
        left = OPP
    left -= s
    if k != k0:
        tk = _stime(si, tab, e, d, k)
    si[e, kk] = k
    si[e, tkk] = tk
    si[e, lft] = left
    si[e, O_QR + d * RING + (t_ & MASK)] = start
    si[e, qt] = t_ + 1
    return tk


@nb.njit(cache=True, error_model="numpy")
def _send(si, sf, tab, e, now, force):
    """Send while inflight < cwnd (or ``force`` probe packets regardless of cwnd)."""
    mss = np.int64(sf[e, O_CFG + (C_MSS)])
    n = 0
    while (force > 0 and n < force) or (force == 0 and si[e, I_INFLIGHT] < sf[e, F_CWND]):
        pn = si[e, I_NEXT_PN]
        if pn - si[e, I_LO] >= RING - 1:
            si[e, I_OVF] = 1
            return
        si[e, I_NEXT_PN] = pn + 1
        if si[e, I_DEBT] > 0:
            si[e, I_DEBT] -= 1
            si[e, I_RETX] += 1
            if force > 0:
                si[e, I_TORTX] += 1
        sf[e, O_STIME + (pn & MASK)] = now
        si[e, O_PST + (pn & MASK)] = 0
        si[e, I_INFLIGHT] += 1
        si[e, I_SENT] += 1
        sf[e, F_LASTSEND] = now
        dep = _enqueue(si, sf, tab, e, 0, now, mss)
        n += 1
        if dep < 0:
            si[e, I_QDROP] += 1
            continue
        if sf[e, O_CFG + (C_LUP)] > 0.0 and _rand(si, e) < sf[e, O_CFG + (C_LUP)]:
            si[e, I_RLOST] += 1
            continue
        t_ = si[e, I_DT]
        sf[e, O_DT + (t_ & MASK)] = dep + sf[e, O_CFG + (C_DUP)]
        si[e, O_DPN + (t_ & MASK)] = pn
        si[e, I_DT] = t_ + 1


@nb.njit(cache=True, error_model="numpy")
def _record(si, sf, ev, e, now, acked, lost, ack_delay):
    i = si[e, I_NEV]
    if i >= EV_MAX:
        si[e, I_OVF] = 2
        return
    si[e, I_NEV] = i + 1
    has = si[e, I_HASRTT] > 0
    ev[e, i, 0] = now
    ev[e, i, 1] = sf[e, F_MINRTT] if has else 0.0
    ev[e, i, 2] = sf[e, F_STAND]
    ev[e, i, 3] = sf[e, F_LRTT]
    ev[e, i, 4] = sf[e, F_SRTT] if has else 0.0
    ev[e, i, 5] = sf[e, F_RTTVAR] if has else 0.0
    ev[e, i, 6] = sf[e, F_CWND]
    ev[e, i, 7] = si[e, I_INFLIGHT]
    ev[e, i, 8] = si[e, I_SENT]
    ev[e, i, 9] = si[e, I_ACKB]
    ev[e, i, 10] = si[e, I_RETX]
    ev[e, i, 11] = si[e, I_PTO]
    ev[e, i, 12] = si[e, I_TPTO]
    ev[e, i, 13] = si[e, I_TORTX]
    ev[e, i, 14] = acked
    ev[e, i, 15] = lost
    ev[e, i, 16] = si[e, I_ACKED]
    ev[e, i, 17] = 1.0 if (lost > 0 and sf[e, F_PERSIST] > 0) else 0.0
    ev[e, i, 18] = ack_delay


@nb.njit(cache=True, inline="always", error_model="numpy")
def _loss_delay(sf, e):
    r = sf[e, F_SRTT] if sf[e, F_SRTT] > sf[e, F_LRTT] else sf[e, F_LRTT]
    r *= sf[e, O_CFG + (C_TTHR)]
    return r if r > 1.0 else 1.0


@nb.njit(cache=True, inline="always", error_model="numpy")
def _pto_base(sf, e):
    v = 4.0 * sf[e, F_RTTVAR]
    return sf[e, F_SRTT] + (v if v > 1.0 else 1.0) + sf[e, O_CFG + (C_ACKTM)]


@nb.njit(cache=True, error_model="numpy")
def _detect_losses(si, sf, e, now):
    """Declare lost the outstanding packets below the largest acked past either threshold."""
    ld = _loss_delay(sf, e)
    la = si[e, I_LARGEST]
    pn = si[e, I_LO]
    n = 0
    first_t = -1.0
    last_t = -1.0
    while pn < la:
        s = si[e, O_PST + (pn & MASK)]
        if s == 0:
            ts = sf[e, O_STIME + (pn & MASK)]
            if la - pn >= 3 or ts + ld <= now:
                si[e, O_PST + (pn & MASK)] = 2
                n += 1
                if first_t < 0:
                    first_t = ts
                last_t = ts
            else:
                break
        pn += 1
    # advance the lowest-unresolved pointer over resolved packets
    lo = si[e, I_LO]
    while lo < si[e, I_NEXT_PN] and si[e, O_PST + (lo & MASK)] != 0:
        lo += 1
    si[e, I_LO] = lo
    if n > 0:
        si[e, I_INFLIGHT] -= n
        si[e, I_LOST] += n
        si[e, I_DEBT] += n
        persist = 0.0
        if n >= 2 and si[e, I_HASRTT] > 0 and last_t - first_t > 3.0 * _pto_base(sf, e):
            persist = 1.0
        sf[e, F_PERSIST] = persist
    return n


@nb.njit(cache=True, error_model="numpy")
def _on_ack(si, sf, ev, e, now, end, ack_delay):
    start = si[e, I_SEEN]
    if end <= start:
        return
    si[e, I_SEEN] = end
    si[e, I_ACKB] += np.int64(sf[e, O_CFG + (C_ACKSZ)])
    acked = 0
    newest = -1
    for i in range(start, end):
        pn = si[e, O_RX + (i & MASK)]
        if si[e, O_PST + (pn & MASK)] == 0 and pn >= si[e, I_LO]:
            si[e, O_PST + (pn & MASK)] = 1
            acked += 1
            newest = pn
    if newest >= 0:
        si[e, I_LARGEST] = newest
        lrtt = now - sf[e, O_STIME + (newest & MASK)]
        sf[e, F_LRTT] = lrtt
        if now > sf[e, F_SRTTMARK]:  # the srtt settled before this ms (the receiver's timer)
            sf[e, F_SRTTPREV] = sf[e, F_SRTT]
            sf[e, F_SRTTMARK] = now
        if si[e, I_HASRTT] == 0:
            si[e, I_HASRTT] = 1
            sf[e, F_MINRTT] = lrtt
            sf[e, F_SRTT] = lrtt
            sf[e, F_RTTVAR] = lrtt / 2.0
        else:
            if lrtt < sf[e, F_MINRTT]:
                sf[e, F_MINRTT] = lrtt
            adj = lrtt - ack_delay if lrtt - ack_delay >= sf[e, F_MINRTT] else lrtt
            sf[e, F_RTTVAR] = 0.75 * sf[e, F_RTTVAR] + 0.25 * abs(sf[e, F_SRTT] - adj)
            sf[e, F_SRTT] = 0.875 * sf[e, F_SRTT] + 0.125 * adj
        # standing RTT: windowed min over srtt/2 (monotonic deque)
        h = si[e, I_SH]
        t_ = si[e, I_ST]
        while t_ > h and sf[e, O_SSV + ((t_ - 1) & MASK)] >= lrtt:
            t_ -= 1
        sf[e, O_SST + (t_ & MASK)] = now
        sf[e, O_SSV + (t_ & MASK)] = lrtt
        t_ += 1
        lo = now - sf[e, F_SRTT] / 2.0
        while sf[e, O_SST + (h & MASK)] < lo:
            h += 1
        si[e, I_SH] = h
        si[e, I_ST] = t_
        sf[e, F_STAND] = sf[e, O_SSV + (h & MASK)]
        si[e, I_INFLIGHT] -= acked
        si[e, I_ACKED] += acked
        si[e, I_PTO] = 0
    n_lost = _detect_losses(si, sf, e, now)
    _record(si, sf, ev, e, now, acked, n_lost, ack_delay)


@nb.njit(cache=True, error_model="numpy")
def _send_ack(si, sf, tab, rx_time_last, e, now):
    ack_delay = now - rx_time_last
    si[e, I_RXPEND] = 0
    sf[e, F_RXTIMER] = -1.0
    dep = _enqueue(
        si, sf, tab, e, 1, now + sf[e, O_CFG + (C_DDN)], np.int64(sf[e, O_CFG + (C_ACKSZ)])
    )
    if dep < 0:
        return
    if sf[e, O_CFG + (C_LDN)] > 0.0 and _rand(si, e) < sf[e, O_CFG + (C_LDN)]:
        return
    t_ = si[e, I_AT]
    sf[e, O_AT + (t_ & MASK)] = dep
    si[e, O_AEND + (t_ & MASK)] = si[e, I_RXN]
    sf[e, O_ADL + (t_ & MASK)] = ack_delay
    si[e, I_AT] = t_ + 1


@nb.njit(cache=True, error_model="numpy")
def _timers(si, sf, tab, ev, e, lo, hi):
    """Fire the loss timer or PTO if due in (lo, hi) (or at exactly ``hi`` when lo == hi).

    Returns True if one fired. The event engine's lazily re-armed timer, evaluated here.
    """
    if si[e, I_INFLIGHT] <= 0:
        return False
    dl = np.inf
    is_loss = False
    lo_pn = si[e, I_LO]
    if lo_pn < si[e, I_LARGEST]:
        dl = sf[e, O_STIME + (lo_pn & MASK)] + _loss_delay(sf, e)
        is_loss = True
    p = si[e, I_PTO]
    pto = sf[e, F_LASTSEND] + _pto_base(sf, e) * (1 << min(p, 16))
    if pto < dl:
        dl = pto
        is_loss = False
    if lo == hi:
        if dl > hi:
            return False
    elif not (lo < dl < hi):
        return False
    now = dl if dl > lo else lo
    if is_loss:
        n = _detect_losses(si, sf, e, now)
        if n > 0:
            _record(si, sf, ev, e, now, 0, n, 0.0)
    else:
        si[e, I_PTO] = p + 1
        si[e, I_TPTO] += 1
        _send(si, sf, tab, e, now, 2)
        _record(si, sf, ev, e, now, 0, 0, 0.0)
    if si[e, I_INFLIGHT] < sf[e, F_CWND]:
        _send(si, sf, tab, e, now, 0)
    return True


@nb.njit(cache=True, error_model="numpy")
def run_until(si, sf, tab, ev, owd, rxbytes, active, t_end):
    """Advance every active env tick by tick to ``t_end[e]`` (inclusive)."""
    for e in range(si.shape[0]):
        if not active[e]:
            continue
        t = sf[e, F_NOW]
        while t < t_end[e]:
            # jump straight to the next tick with something due (nothing happens in between)
            nxt = t_end[e]
            if si[e, I_DH] < si[e, I_DT] and sf[e, O_DT + (si[e, I_DH] & MASK)] < nxt:
                nxt = sf[e, O_DT + (si[e, I_DH] & MASK)]
            if si[e, I_AH] < si[e, I_AT] and sf[e, O_AT + (si[e, I_AH] & MASK)] < nxt:
                nxt = sf[e, O_AT + (si[e, I_AH] & MASK)]
            if si[e, I_RXPEND] > 0 and 0.0 <= sf[e, F_RXTIMER] < nxt:
                nxt = sf[e, F_RXTIMER]
            if si[e, I_INFLIGHT] > 0:
                lo_pn = si[e, I_LO]
                if lo_pn < si[e, I_LARGEST]:
                    dl = sf[e, O_STIME + (lo_pn & MASK)] + _loss_delay(sf, e)
                    if dl < nxt:
                        nxt = dl
                pto = sf[e, F_LASTSEND] + _pto_base(sf, e) * (1 << min(si[e, I_PTO], 16))
                if pto < nxt:
                    nxt = pto
            if si[e, I_INFLIGHT] < sf[e, F_CWND]:
                nxt = t + 1.0
            nxt = math.ceil(nxt)
            t = nxt if nxt > t + 1.0 else t + 1.0
            # 0. sender timers due strictly inside (t - 1, t) fire at their exact time, before
            # the events of tick t, as in the event engine
            for _ in range(4):
                if not _timers(si, sf, tab, ev, e, t - 1.0, t):
                    break
            # a delayed-ACK timer due strictly inside (t - 1, t) (the srtt-based timer is
            # fractional) fires at its exact time, before the arrivals of tick t
            if si[e, I_RXPEND] > 0 and 0.0 <= sf[e, F_RXTIMER] < t:
                _send_ack(si, sf, tab, sf[e, F_RXLAST], e, sf[e, F_RXTIMER])
            # 1. receiver: data arrivals due
            h = si[e, I_DH]
            while h < si[e, I_DT] and sf[e, O_DT + (h & MASK)] <= t:
                pn = si[e, O_DPN + (h & MASK)]
                at = sf[e, O_DT + (h & MASK)]
                # same-ms order as the event heap: an ACK timer armed (pushed) before this
                # packet was sent fires first
                tm = sf[e, F_RXTIMER]
                if (
                    si[e, I_RXPEND] > 0
                    and tm == at
                    and sf[e, F_RXARM] < sf[e, O_STIME + (pn & MASK)]
                ):
                    _send_ack(si, sf, tab, sf[e, F_RXLAST], e, tm)
                h += 1
                si[e, I_DH] = h
                n = si[e, I_RXN]
                si[e, O_RX + (n & MASK)] = pn
                si[e, I_RXN] = n + 1
                d = np.int64(at - sf[e, O_STIME + (pn & MASK)])
                owd[e, d if d < OWD_BINS else OWD_BINS - 1] += 1
                rxbytes[e] += sf[e, O_CFG + (C_MSS)]
                sf[e, F_RXLAST] = at
                gap = pn != si[e, I_RXEXP]
                si[e, I_RXEXP] = pn + 1
                si[e, I_RXPEND] += 1
                if si[e, I_RXPEND] >= sf[e, O_CFG + (C_ACKEV)] or gap:
                    _send_ack(si, sf, tab, at, e, at)
                elif si[e, I_RXPEND] == 1:
                    # delayed-ACK timer: fixed, or min(frac * srtt, max) (mvfst: srtt / 4)
                    atm = sf[e, O_CFG + (C_ACKTM)]
                    if sf[e, O_CFG + (C_ATSRTT)] > 0.0:
                        srtt = sf[e, F_SRTTPREV] if at <= sf[e, F_SRTTMARK] else sf[e, F_SRTT]
                        v = sf[e, O_CFG + (C_ATSRTT)] * srtt
                        if v < atm:
                            atm = v
                    sf[e, F_RXARM] = at
                    sf[e, F_RXTIMER] = at + atm
            if si[e, I_RXPEND] > 0 and 0.0 <= sf[e, F_RXTIMER] <= t:
                tm = sf[e, F_RXTIMER]
                _send_ack(si, sf, tab, sf[e, F_RXLAST], e, tm)
            # 2. sender: ACKs due
            h = si[e, I_AH]
            while h < si[e, I_AT] and sf[e, O_AT + (h & MASK)] <= t:
                si[e, I_AH] = h + 1
                _on_ack(
                    si,
                    sf,
                    ev,
                    e,
                    t,
                    si[e, O_AEND + (h & MASK)],
                    sf[e, O_ADL + (h & MASK)],
                )
                _send(si, sf, tab, e, t, 0)
                h = si[e, I_AH]
            # 3. sender timers due exactly at t
            _timers(si, sf, tab, ev, e, t, t)
            # 4. sending (the window may have opened)
            if si[e, I_INFLIGHT] < sf[e, F_CWND]:
                _send(si, sf, tab, e, t, 0)
        sf[e, F_NOW] = t


@nb.njit(cache=True, error_model="numpy")
def kick(si, sf, tab, active):
    """Let every active env send now (after an action changed its cwnd)."""
    for e in range(si.shape[0]):
        if active[e] and si[e, I_INFLIGHT] < sf[e, F_CWND]:
            _send(si, sf, tab, e, sf[e, F_NOW], 0)
