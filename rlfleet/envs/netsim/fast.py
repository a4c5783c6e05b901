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

Speed: the per-packet and per-ACK kernels (``_send``, ``_enqueue``, ``_on_ack``,
``_detect_losses``, ``_record``, ``_send_ack``) are inlined into ``run_until`` and work on
one-dimensional row views of the packed state (``si = SI[e]``), so an access is base + column
rather than row * stride + column and no call marshals array structs. Measured with
``rlfleet bench netsim``'s BDP-steering policy on ``india_to_aws_india`` (64 envs, CPU time,
same shared machine, interleaved with the previous code): x1.28 to x1.55 (docs/netsim.md); the
first compile takes ~30 s of CPU instead of ~15 s (cached afterwards).

Every kernel is compiled with ``_nrt=False`` (numba's reference-counting runtime off): none of
them allocates, and with NRT on, each row view and each call of a non-inlined kernel cost atomic
``NRT_incref`` / ``NRT_decref`` pairs, which a profile (perf, cpu-clock samples) showed taking
~60 % of the CPU time of ``rlfleet bench netsim``'s 100 Mbps case. Without them: x2.1 to x2.5 env
steps/s, identical results (docs/netsim.md). Keep new kernels allocation-free (pass scratch
arrays in) or they will not compile.

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


@nb.njit(cache=True, inline="always", error_model="numpy", _nrt=False)
def _rand(si, e):
    # splitmix64 -> uniform [0, 1); per-env state so envs are independent and reproducible
    x = (si[I_RNG] + np.int64(-7046029254386353131)) & np.int64(0x7FFFFFFFFFFFFFFF)
    si[I_RNG] = x
    z = x
    z = ((z ^ (z >> 30)) * np.int64(-4658895280553007687)) & np.int64(0x7FFFFFFFFFFFFFFF)
    z = ((z ^ (z >> 27)) * np.int64(-7723592293110705685)) & np.int64(0x7FFFFFFFFFFFFFFF)
    z = z ^ (z >> 31)
    return (z >> 11) * (1.0 / 4503599627370496.0)


@nb.njit(cache=True, inline="always", error_model="numpy", _nrt=False)
def _stime(si, tab, e, d, k):
    b = 6 * d
    if si[O_SC + (b)] == 0:
        num = si[O_SC + (b + 1)]
        den = si[O_SC + (b + 2)]
        return ((k + 1) * den + num - 1) // num
    n = si[O_SC + (b + 4)]
    q = k // n
    return tab[si[O_SC + (b + 3)] + (k - q * n)] + q * si[O_SC + (b + 5)]


@nb.njit(cache=True, error_model="numpy", _nrt=False)
def _sfirst(si, tab, e, d, t):
    b = 6 * d
    if t < 0:
        return 0
    if si[O_SC + (b)] == 0:
        return t * si[O_SC + (b + 1)] // si[O_SC + (b + 2)]
    n = si[O_SC + (b + 4)]
    per = si[O_SC + (b + 5)]
    off = si[O_SC + (b + 3)]
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


@nb.njit(cache=True, inline="always", error_model="numpy", _nrt=False)
def _enqueue(si, sf, tab, e, d, a, size):
    """Link ``d`` (0 up, 1 down) of env ``e``: departure ms of a packet offered at ``a``, or -1."""
    kk, tkk, lft, qh, qt = (
        (I_UK, I_UTK, I_ULEFT, I_UQH, I_UQT) if d == 0 else (I_DK, I_DTK, I_DLEFT, I_DQH, I_DQT)
    )
    lpk = sf[O_CFG + (C_UPK)] if d == 0 else sf[O_CFG + (C_DPK)]
    lby = sf[O_CFG + (C_UBY)] if d == 0 else sf[O_CFG + (C_DBY)]
    fa = np.int64(math.floor(a))
    h = si[qh]
    t_ = si[qt]
    while h < t_ and si[O_QR + d * RING + (h & MASK)] <= fa:
        h += 1
    si[qh] = h
    waiting = t_ - h
    if lpk >= 0 and waiting + 1 > lpk:
        return -1
    if lby >= 0 and (waiting + 1) * size > lby:
        return -1
    if waiting >= RING - 1:
        si[I_OVF] = 1
        return -1
    left = si[lft]
    if left > 0 and si[tkk] > fa:
        k = si[kk]
        tk = si[tkk]
    else:
        k = _sfirst(si, tab, e, d, fa)
        if k <= si[kk]:
            k = si[kk] + 1
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
    si[kk] = k
    si[tkk] = tk
    si[lft] = left
    si[O_QR + d * RING + (t_ & MASK)] = start
    si[qt] = t_ + 1
    return tk


@nb.njit(cache=True, inline="always", error_model="numpy", _nrt=False)
def _send(si, sf, tab, e, now, force):
    """Send while inflight < cwnd (or ``force`` probe packets regardless of cwnd)."""
    mss = np.int64(sf[O_CFG + (C_MSS)])
    n = 0
    while (force > 0 and n < force) or (force == 0 and si[I_INFLIGHT] < sf[F_CWND]):
        pn = si[I_NEXT_PN]
        if pn - si[I_LO] >= RING - 1:
            si[I_OVF] = 1
            return
        si[I_NEXT_PN] = pn + 1
        if si[I_DEBT] > 0:
            si[I_DEBT] -= 1
            si[I_RETX] += 1
            if force > 0:
                si[I_TORTX] += 1
        sf[O_STIME + (pn & MASK)] = now
        si[O_PST + (pn & MASK)] = 0
        si[I_INFLIGHT] += 1
        si[I_SENT] += 1
        sf[F_LASTSEND] = now
        dep = _enqueue(si, sf, tab, e, 0, now, mss)
        n += 1
        if dep < 0:
            si[I_QDROP] += 1
            continue
        if sf[O_CFG + (C_LUP)] > 0.0 and _rand(si, e) < sf[O_CFG + (C_LUP)]:
            si[I_RLOST] += 1
            continue
        t_ = si[I_DT]
        sf[O_DT + (t_ & MASK)] = dep + sf[O_CFG + (C_DUP)]
        si[O_DPN + (t_ & MASK)] = pn
        si[I_DT] = t_ + 1


@nb.njit(cache=True, inline="always", error_model="numpy", _nrt=False)
def _record(si, sf, ev, e, now, acked, lost, ack_delay):
    i = si[I_NEV]
    if i >= EV_MAX:
        si[I_OVF] = 2
        return
    si[I_NEV] = i + 1
    has = si[I_HASRTT] > 0
    ev[i, 0] = now
    ev[i, 1] = sf[F_MINRTT] if has else 0.0
    ev[i, 2] = sf[F_STAND]
    ev[i, 3] = sf[F_LRTT]
    ev[i, 4] = sf[F_SRTT] if has else 0.0
    ev[i, 5] = sf[F_RTTVAR] if has else 0.0
    ev[i, 6] = sf[F_CWND]
    ev[i, 7] = si[I_INFLIGHT]
    ev[i, 8] = si[I_SENT]
    ev[i, 9] = si[I_ACKB]
    ev[i, 10] = si[I_RETX]
    ev[i, 11] = si[I_PTO]
    ev[i, 12] = si[I_TPTO]
    ev[i, 13] = si[I_TORTX]
    ev[i, 14] = acked
    ev[i, 15] = lost
    ev[i, 16] = si[I_ACKED]
    ev[i, 17] = 1.0 if (lost > 0 and sf[F_PERSIST] > 0) else 0.0
    ev[i, 18] = ack_delay


@nb.njit(cache=True, inline="always", error_model="numpy", _nrt=False)
def _loss_delay(sf, e):
    r = sf[F_SRTT] if sf[F_SRTT] > sf[F_LRTT] else sf[F_LRTT]
    r *= sf[O_CFG + (C_TTHR)]
    return r if r > 1.0 else 1.0


@nb.njit(cache=True, inline="always", error_model="numpy", _nrt=False)
def _pto_base(sf, e):
    v = 4.0 * sf[F_RTTVAR]
    return sf[F_SRTT] + (v if v > 1.0 else 1.0) + sf[O_CFG + (C_ACKTM)]


@nb.njit(cache=True, inline="always", error_model="numpy", _nrt=False)
def _detect_losses(si, sf, e, now):
    """Declare lost the outstanding packets below the largest acked past either threshold."""
    ld = _loss_delay(sf, e)
    la = si[I_LARGEST]
    pn = si[I_LO]
    n = 0
    first_t = -1.0
    last_t = -1.0
    while pn < la:
        s = si[O_PST + (pn & MASK)]
        if s == 0:
            ts = sf[O_STIME + (pn & MASK)]
            if la - pn >= 3 or ts + ld <= now:
                si[O_PST + (pn & MASK)] = 2
                n += 1
                if first_t < 0:
                    first_t = ts
                last_t = ts
            else:
                break
        pn += 1
    # advance the lowest-unresolved pointer over resolved packets
    lo = si[I_LO]
    while lo < si[I_NEXT_PN] and si[O_PST + (lo & MASK)] != 0:
        lo += 1
    si[I_LO] = lo
    if n > 0:
        si[I_INFLIGHT] -= n
        si[I_LOST] += n
        si[I_DEBT] += n
        persist = 0.0
        if n >= 2 and si[I_HASRTT] > 0 and last_t - first_t > 3.0 * _pto_base(sf, e):
            persist = 1.0
        sf[F_PERSIST] = persist
    return n


@nb.njit(cache=True, inline="always", error_model="numpy", _nrt=False)
def _on_ack(si, sf, ev, e, now, end, ack_delay):
    start = si[I_SEEN]
    if end <= start:
        return
    si[I_SEEN] = end
    si[I_ACKB] += np.int64(sf[O_CFG + (C_ACKSZ)])
    acked = 0
    newest = -1
    for i in range(start, end):
        pn = si[O_RX + (i & MASK)]
        if si[O_PST + (pn & MASK)] == 0 and pn >= si[I_LO]:
            si[O_PST + (pn & MASK)] = 1
            acked += 1
            newest = pn
    if newest >= 0:
        si[I_LARGEST] = newest
        lrtt = now - sf[O_STIME + (newest & MASK)]
        sf[F_LRTT] = lrtt
        if now > sf[F_SRTTMARK]:  # the srtt settled before this ms (the receiver's timer)
            sf[F_SRTTPREV] = sf[F_SRTT]
            sf[F_SRTTMARK] = now
        if si[I_HASRTT] == 0:
            si[I_HASRTT] = 1
            sf[F_MINRTT] = lrtt
            sf[F_SRTT] = lrtt
            sf[F_RTTVAR] = lrtt / 2.0
        else:
            if lrtt < sf[F_MINRTT]:
                sf[F_MINRTT] = lrtt
            adj = lrtt - ack_delay if lrtt - ack_delay >= sf[F_MINRTT] else lrtt
            sf[F_RTTVAR] = 0.75 * sf[F_RTTVAR] + 0.25 * abs(sf[F_SRTT] - adj)
            sf[F_SRTT] = 0.875 * sf[F_SRTT] + 0.125 * adj
        # standing RTT: windowed min over srtt/2 (monotonic deque)
        h = si[I_SH]
        t_ = si[I_ST]
        while t_ > h and sf[O_SSV + ((t_ - 1) & MASK)] >= lrtt:
            t_ -= 1
        sf[O_SST + (t_ & MASK)] = now
        sf[O_SSV + (t_ & MASK)] = lrtt
        t_ += 1
        lo = now - sf[F_SRTT] / 2.0
        while sf[O_SST + (h & MASK)] < lo:
            h += 1
        si[I_SH] = h
        si[I_ST] = t_
        sf[F_STAND] = sf[O_SSV + (h & MASK)]
        si[I_INFLIGHT] -= acked
        si[I_ACKED] += acked
        si[I_PTO] = 0
    n_lost = _detect_losses(si, sf, e, now)
    _record(si, sf, ev, e, now, acked, n_lost, ack_delay)


@nb.njit(cache=True, inline="always", error_model="numpy", _nrt=False)
def _send_ack(si, sf, tab, rx_time_last, e, now):
    ack_delay = now - rx_time_last
    si[I_RXPEND] = 0
    sf[F_RXTIMER] = -1.0
    dep = _enqueue(si, sf, tab, e, 1, now + sf[O_CFG + (C_DDN)], np.int64(sf[O_CFG + (C_ACKSZ)]))
    if dep < 0:
        return
    if sf[O_CFG + (C_LDN)] > 0.0 and _rand(si, e) < sf[O_CFG + (C_LDN)]:
        return
    t_ = si[I_AT]
    sf[O_AT + (t_ & MASK)] = dep
    si[O_AEND + (t_ & MASK)] = si[I_RXN]
    sf[O_ADL + (t_ & MASK)] = ack_delay
    si[I_AT] = t_ + 1


@nb.njit(cache=True, error_model="numpy", _nrt=False)
def _timers(si, sf, tab, ev, e, lo, hi):
    """Fire the loss timer or PTO if due in (lo, hi) (or at exactly ``hi`` when lo == hi).

    Returns True if one fired. The event engine's lazily re-armed timer, evaluated here.
    """
    if si[I_INFLIGHT] <= 0:
        return False
    dl = np.inf
    is_loss = False
    lo_pn = si[I_LO]
    if lo_pn < si[I_LARGEST]:
        dl = sf[O_STIME + (lo_pn & MASK)] + _loss_delay(sf, e)
        is_loss = True
    p = si[I_PTO]
    pto = sf[F_LASTSEND] + _pto_base(sf, e) * (1 << min(p, 16))
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
        si[I_PTO] = p + 1
        si[I_TPTO] += 1
        _send(si, sf, tab, e, now, 2)
        _record(si, sf, ev, e, now, 0, 0, 0.0)
    if si[I_INFLIGHT] < sf[F_CWND]:
        _send(si, sf, tab, e, now, 0)
    return True


@nb.njit(cache=True, error_model="numpy", _nrt=False)
def run_until(SI, SF, tab, EV, OWD, rxbytes, active, t_end):
    """Advance every active env tick by tick to ``t_end[e]`` (inclusive)."""
    for e in range(SI.shape[0]):
        if not active[e]:
            continue
        # row views: every access below is base + column, not row * stride + column
        si = SI[e]
        sf = SF[e]
        ev = EV[e]
        owd = OWD[e]
        t = sf[F_NOW]
        while t < t_end[e]:
            # jump straight to the next tick with something due (nothing happens in between)
            nxt = t_end[e]
            if si[I_DH] < si[I_DT] and sf[O_DT + (si[I_DH] & MASK)] < nxt:
                nxt = sf[O_DT + (si[I_DH] & MASK)]
            if si[I_AH] < si[I_AT] and sf[O_AT + (si[I_AH] & MASK)] < nxt:
                nxt = sf[O_AT + (si[I_AH] & MASK)]
            if si[I_RXPEND] > 0 and 0.0 <= sf[F_RXTIMER] < nxt:
                nxt = sf[F_RXTIMER]
            if si[I_INFLIGHT] > 0:
                lo_pn = si[I_LO]
                if lo_pn < si[I_LARGEST]:
                    dl = sf[O_STIME + (lo_pn & MASK)] + _loss_delay(sf, e)
                    if dl < nxt:
                        nxt = dl
                pto = sf[F_LASTSEND] + _pto_base(sf, e) * (1 << min(si[I_PTO], 16))
                if pto < nxt:
                    nxt = pto
            if si[I_INFLIGHT] < sf[F_CWND]:
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
            if si[I_RXPEND] > 0 and 0.0 <= sf[F_RXTIMER] < t:
                _send_ack(si, sf, tab, sf[F_RXLAST], e, sf[F_RXTIMER])
            # 1. receiver: data arrivals due
            h = si[I_DH]
            while h < si[I_DT] and sf[O_DT + (h & MASK)] <= t:
                pn = si[O_DPN + (h & MASK)]
                at = sf[O_DT + (h & MASK)]
                # same-ms order as the event heap: an ACK timer armed (pushed) before this
                # packet was sent fires first
                tm = sf[F_RXTIMER]
                if si[I_RXPEND] > 0 and tm == at and sf[F_RXARM] < sf[O_STIME + (pn & MASK)]:
                    _send_ack(si, sf, tab, sf[F_RXLAST], e, tm)
                h += 1
                si[I_DH] = h
                n = si[I_RXN]
                si[O_RX + (n & MASK)] = pn
                si[I_RXN] = n + 1
                d = np.int64(at - sf[O_STIME + (pn & MASK)])
                owd[d if d < OWD_BINS else OWD_BINS - 1] += 1
                rxbytes[e] += sf[O_CFG + (C_MSS)]
                sf[F_RXLAST] = at
                gap = pn != si[I_RXEXP]
                si[I_RXEXP] = pn + 1
                si[I_RXPEND] += 1
                if si[I_RXPEND] >= sf[O_CFG + (C_ACKEV)] or gap:
                    _send_ack(si, sf, tab, at, e, at)
                elif si[I_RXPEND] == 1:
                    # delayed-ACK timer: fixed, or min(frac * srtt, max) (mvfst: srtt / 4)
                    atm = sf[O_CFG + (C_ACKTM)]
                    if sf[O_CFG + (C_ATSRTT)] > 0.0:
                        srtt = sf[F_SRTTPREV] if at <= sf[F_SRTTMARK] else sf[F_SRTT]
                        v = sf[O_CFG + (C_ATSRTT)] * srtt
                        if v < atm:
                            atm = v
                    sf[F_RXARM] = at
                    sf[F_RXTIMER] = at + atm
            if si[I_RXPEND] > 0 and 0.0 <= sf[F_RXTIMER] <= t:
                tm = sf[F_RXTIMER]
                _send_ack(si, sf, tab, sf[F_RXLAST], e, tm)
            # 2. sender: ACKs due
            h = si[I_AH]
            while h < si[I_AT] and sf[O_AT + (h & MASK)] <= t:
                si[I_AH] = h + 1
                _on_ack(
                    si,
                    sf,
                    ev,
                    e,
                    t,
                    si[O_AEND + (h & MASK)],
                    sf[O_ADL + (h & MASK)],
                )
                _send(si, sf, tab, e, t, 0)
                h = si[I_AH]
            # 3. sender timers due exactly at t
            _timers(si, sf, tab, ev, e, t, t)
            # 4. sending (the window may have opened)
            if si[I_INFLIGHT] < sf[F_CWND]:
                _send(si, sf, tab, e, t, 0)
        sf[F_NOW] = t


@nb.njit(cache=True, error_model="numpy", _nrt=False)
def kick(SI, SF, tab, active):
    """Let every active env send now (after an action changed its cwnd)."""
    for e in range(SI.shape[0]):
        si = SI[e]
        sf = SF[e]
        if active[e] and si[I_INFLIGHT] < sf[F_CWND]:
            _send(si, sf, tab, e, sf[F_NOW], 0)
