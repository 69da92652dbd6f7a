"""p-values without SciPy: the two-sample Kolmogorov-Smirnov test and the chi-square law.

``ks_2samp_pvalue`` follows ``scipy.stats.ks_2samp(method="auto")`` step by step (exact
path counting up to 10,000 values a side, else ``kstwo.sf`` at the effective size), ported
from SciPy 1.17 (``scipy/stats/_stats_py.py``, ``_stats_pythran.py``, ``_ksstats.py`` and
the Cephes ``smirnov`` of ``xsf``), BSD-3-Clause, Copyright (c) 2001-2002 Enthought, Inc.
and 2003-2024 SciPy Developers. ``smirnov`` sums in log space instead of double-double,
so results agree with SciPy to about 1e-9 relative.
"""

from __future__ import annotations

import math

import numpy as np

_MAX_EXACT_N = 10_000
_WIDE = 48  # band width above which a column of the path count is done by numpy
_E128 = 128
_EP128 = np.ldexp(np.longdouble(1), _E128)
_EM128 = np.ldexp(np.longdouble(1), -_E128)
_SQRT2PI = math.sqrt(2 * math.pi)
_LOG_2PI = math.log(2 * math.pi)
_MIN_LOG = -708
_MINLOG_CEPHES = -7.451332191019412076235e2
_STIRLING = [-2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3,
             8.4175084175084175084e-4, -5.952380952380952381e-4, 7.9365079365079365079e-4,
             -2.7777777777777777778e-3, 8.3333333333333333333e-2]


def _clip(p: float) -> float:
    return float(min(max(p, 0.0), 1.0))


# -- two-sample KS ------------------------------------------------------------------------
def ks_2samp_pvalue(d: float, n1: int, n2: int) -> tuple[float, float]:
    """``(statistic, p)`` of the two-sided two-sample KS test with statistic ``d``."""
    g = math.gcd(n1, n2)
    if max(n1, n2) <= _MAX_EXACT_N:
        lcm = (n1 // g) * n2
        h = int(np.round(d * lcm))
        d = h / lcm
        if h == 0:
            return d, 1.0
        try:
            with np.errstate(invalid="raise", over="raise"):
                p = _prob_outside_square(n1, h) if n1 == n2 else _outer_prob_inside(n1, n2, g, h)
            if 0 <= p <= 1:
                return d, _clip(p)
        except (FloatingPointError, OverflowError):
            pass
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return d, _clip(kstwo_sf(d, int(np.round(m * n / (m + n)))))


def _prob_outside_square(n: int, h: int) -> float:
    p = 0.0
    k = int(np.floor(n / h))
    while k >= 0:
        p1 = 1.0
        for j in range(h):
            p1 = (n - k * h - j) * p1 / (n + k * h + j + 1)
        p = p1 * (1.0 - p)
        k -= 1
    return 2 * p


def _outer_prob_inside(m: int, n: int, g: int, h: int) -> float:
    """Proportion of lattice paths leaving the band |x/m - y/n| < h/lcm (Viehmann's form)."""
    if m < n:
        m, n = n, m
    mg, ng = m // g, n // g
    minj, maxj = 0, min(int(np.ceil(h / mg)), n + 1)
    curlen = maxj - minj
    a = [1.0] * min(2 * maxj + 2, n + 1)
    for j in range(minj, maxj):
        a[j] = 0.0
    for i in range(1, m + 1):
        lastminj, lastlen = minj, curlen
        minj = min(max(int(np.floor((ng * i - h) / mg)) + 1, 0), n)
        maxj = min(int(np.ceil((ng * i + h) / mg)), n + 1)
        if maxj <= minj:
            return 1.0
        shift = minj - lastminj
        if maxj - minj > _WIDE:
            a[:maxj - minj] = _column(a[shift:shift + maxj - minj], i, minj)
        else:
            val = 0.0 if minj == 0 else 1.0
            for jj in range(maxj - minj):
                j = jj + minj
                val = (a[jj + shift] * i + val * j) / (i + j)
                a[jj] = val
        curlen = maxj - minj
        if lastlen > curlen:
            for k in range(curlen, curlen + lastlen - curlen):
                a[k] = 1.0
    return a[maxj - minj - 1]


def _column(prev: list[float], i: int, minj: int) -> list[float]:
    """The loop above, val_j = (prev_j*i + val_{j-1}*j) / (i+j), solved in log space at once:
    val_j = P_j * (v0 + sum_k b_k / P_k) with P_j the running product of j/(i+j)."""
    j = np.arange(minj, minj + len(prev), dtype=np.float64)
    b = np.asarray(prev) * i / (i + j)
    v0 = 0.0 if minj == 0 else 1.0
    if minj == 0:  # the first factor is 0/(i+0): val_0 = b_0 whatever came before
        v0, j, b = b[0], j[1:], b[1:]
    with np.errstate(divide="ignore"):
        log_p = np.cumsum(np.log(j / (i + j)))
        terms = np.concatenate([[np.log(v0)], np.log(b) - log_p])
    out = np.exp(log_p + np.logaddexp.accumulate(terms)[1:])
    return ([float(v0)] if minj == 0 else []) + out.tolist()


# -- the one-sample two-sided KS law at size n (scipy.stats.kstwo.sf) ------------------------
def kstwo_sf(x: float, n: int) -> float:
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    t = n * x
    if t <= 1.0:
        if t <= 0.5:
            return 1.0
        if n <= 140:
            prob = float(np.prod(np.arange(1, n + 1) * (1.0 / n) * (2 * t - 1)))
        else:
            prob = math.exp(_log_nfactorial_div_n_pow_n(n) + n * math.log(2 * t - 1))
        return _clip(1.0 - prob)
    if t >= n - 1:
        return _clip(2 * (1.0 - x) ** n)
    if x >= 0.5:
        return _clip(2 * smirnov_sf(n, x))
    nxsquared = t * x
    if n <= 140:
        if nxsquared <= 0.754693:
            return _clip(1.0 - _kolmogn_dmtw(n, x))
        if nxsquared <= 4:
            return _clip(1.0 - _kolmogn_pomeranz(n, x))
        return _clip(2 * smirnov_sf(n, x))
    if nxsquared >= 370.0:
        return 0.0
    if nxsquared >= 2.2:
        return _clip(2 * smirnov_sf(n, x))
    if n <= 100000 and n * x ** 1.5 <= 1.4:
        return _clip(1.0 - _kolmogn_dmtw(n, x))
    return _clip(1.0 - _kolmogn_pelz_good(n, x))


def _log_nfactorial_div_n_pow_n(n: int) -> float:
    rn = 1.0 / n
    return math.log(n) / 2 - n + _LOG_2PI / 2 + rn * float(np.polyval(_STIRLING, rn / n))


def _kolmogn_dmtw(n: int, d: float) -> float:
    """P(D_n <= d), Durbin's matrix method as Marsaglia, Tsang and Wang compute it."""
    nd = n * d
    if nd <= 0.5:
        return 0.0
    k = int(np.ceil(nd))
    h = k - nd
    m = 2 * k - 1
    big = np.zeros([m, m])
    intm = np.arange(1, m + 1)
    v = 1.0 - h ** intm
    w = np.empty(m)
    fac = 1.0
    for j in intm:
        w[j - 1] = fac
        fac /= j
        v[j - 1] *= fac
    tt = max(2 * h - 1.0, 0) ** m - 2 * h ** m
    v[-1] = (1.0 + tt) * fac
    for i in range(1, m):
        big[i - 1:, i] = w[:m - i + 1]
    big[:, 0] = v
    big[-1, :] = np.flip(v, axis=0)
    power, nn, expnt, big_expnt = np.eye(m), n, 0, 0
    while nn > 0:
        if nn % 2:
            power = np.matmul(power, big)
            expnt += big_expnt
        big = np.matmul(big, big)
        big_expnt *= 2
        if np.abs(big[k - 1, k - 1]) > _EP128:
            big /= _EP128
            big_expnt += _E128
        nn //= 2
    p = power[k - 1, k - 1]
    for i in range(1, n + 1):
        p = i * p / n
        if np.abs(p) < _EM128:
            p *= _EP128
            expnt -= _E128
    if expnt != 0:
        p = np.ldexp(p, expnt)
    return _clip(p)


def _pomeranz_j1j2(i: int, n: int, ll: int, ceilf: int, roundf: int) -> tuple[int, int]:
    if i == 0:
        j1, j2 = -ll - ceilf - 1, ll + ceilf - 1
    else:
        ip1div2, ip1mod2 = divmod(i + 1, 2)
        if ip1mod2 == 0:
            if ip1div2 == n + 1:
                j1, j2 = n - ll - ceilf - 1, n + ll + ceilf - 1
            else:
                j1, j2 = ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1
        else:
            j1, j2 = ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1
    return max(j1 + 2, 0), min(j2, n)


def _kolmogn_pomeranz(n: int, x: float) -> float:
    """P(D_n <= x) by Pomeranz's recursion."""
    t = n * x
    ll = int(np.floor(t))
    f = 1.0 * (t - ll)
    g = min(f, 1.0 - f)
    ceilf, roundf = (1 if f > 0 else 0), (1 if f > 0.5 else 0)
    npwrs = 2 * (ll + 1)
    gpower, twogpower, onem2gpower = np.empty(npwrs), np.empty(npwrs), np.empty(npwrs)
    gpower[0] = twogpower[0] = onem2gpower[0] = 1.0
    expnt = 0
    g_n, two_g_n, one_m2g_n = g / n, 2 * g / n, (1 - 2 * g) / n
    for m in range(1, npwrs):
        gpower[m] = gpower[m - 1] * g_n / m
        twogpower[m] = twogpower[m - 1] * two_g_n / m
        onem2gpower[m] = onem2gpower[m - 1] * one_m2g_n / m
    v0, v1 = np.zeros([npwrs]), np.zeros([npwrs])
    v1[0] = 1
    v0s = v1s = 0
    j1, j2 = _pomeranz_j1j2(0, n, ll, ceilf, roundf)
    for i in range(1, 2 * n + 2):
        k1 = j1
        v0, v1 = v1, v0
        v0s, v1s = v1s, v0s
        v1.fill(0.0)
        j1, j2 = _pomeranz_j1j2(i, n, ll, ceilf, roundf)
        pwrs = gpower if i == 1 or i == 2 * n + 1 else (twogpower if i % 2 else onem2gpower)
        ln2 = j2 - k1 + 1
        if ln2 > 0:
            conv = np.convolve(v0[k1 - v0s:k1 - v0s + ln2], pwrs[:ln2])
            conv_start, conv_len = j1 - k1, j2 - j1 + 1
            v1[:conv_len] = conv[conv_start:conv_start + conv_len]
            if 0 < np.max(v1) < _EM128:
                v1 *= _EP128
                expnt -= _E128
            v1s = v0s + j1 - k1
    ans = v1[n - v1s]
    for m in range(1, n + 1):
        if np.abs(ans) > _EP128:
            ans *= _EM128
            expnt += _E128
        ans *= m
    if expnt != 0:
        ans = np.ldexp(ans, expnt)
    return _clip(ans)


def _kolmogn_pelz_good(n: int, x: float) -> float:
    """P(D_n <= x), the Pelz-Good asymptotic series."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    z = math.sqrt(n) * x
    z2, z3, z4, z6 = z ** 2, z ** 3, z ** 4, z ** 6
    qlog = -math.pi ** 2 / 8 / z2
    if qlog < _MIN_LOG:
        return 0.0
    q = math.exp(qlog)
    pi2, pi4, pi6 = math.pi ** 2, math.pi ** 4, math.pi ** 6
    k1a, k1b = -z2, pi2 / 4
    k2a, k2b, k2c = 6 * z6 + 2 * z4, (2 * z4 - 5 * z2) * pi2 / 4, pi4 * (1 - 2 * z2) / 16
    k3d, k3c = pi6 * (5 - 30 * z2) / 64, pi4 * (-60 * z2 + 212 * z4) / 16
    k3b, k3a = pi2 * (135 * z4 - 96 * z6) / 4, -30 * z6 - 90 * z ** 8
    k = np.zeros(4)
    maxk = int(np.ceil(16 * z / math.pi))
    for kk in range(maxk, 0, -1):
        m = 2 * kk - 1
        m2, m4, m6 = m ** 2, m ** 4, m ** 6
        k *= np.power(q, 8 * kk)
        k += np.array([1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6])
    k *= q
    k *= _SQRT2PI
    k /= np.array([z, 6 * z4, 72 * z ** 7, 6480 * z ** 10])
    q = math.exp(-pi2 / 2 / z2)
    ks = np.arange(maxk, 0, -1)
    ks2 = ks ** 2
    qp = q ** ks2
    k[2] += np.sum(ks2 * qp) * pi2 * _SQRT2PI / (-36 * z3)
    kspi, sqrt3z = math.pi * ks, math.sqrt(3) * z
    k[3] += np.sum((sqrt3z + kspi) * (sqrt3z - kspi) * ks2 * qp) * pi2 * _SQRT2PI / (216 * z6)
    k /= np.power(n * 1.0, np.arange(4) / 2.0)
    return float(sum(k))


def smirnov_sf(n: int, x: float) -> float:
    """P(D+_n >= x), one-sided KS (Birnbaum-Tingey sum, as Cephes ``smirnov``)."""
    if n == 1:
        return 1 - x
    if x <= 0.0:
        return 1.0
    if x >= 1.0:
        return 0.0
    nxfl = math.floor(n * x)
    alpha = n * x - nxfl
    n1mxfl = n - nxfl - (0 if alpha == 0 else 1)
    n1mxceil = n - nxfl
    if alpha == 0:
        n1mxfl, n1mxceil = n1mxfl - 1, n1mxceil + 1
    if nxfl == 0 or (nxfl == 1 and alpha == 0):
        return 1 - x * (1 + x) ** (n - 1)
    if -2 * n * x * x < _MINLOG_CEPHES:
        return 0.0
    if nxfl >= n - 1:
        return (1 - x) ** n
    if n > 1_000_000:
        logp = -((6.0 * n * x + 1) ** 2) / 18.0 / n
        return math.exp(logp) if logp < -math.log(2) else 1 + math.expm1(logp)
    upper = n - n1mxceil + 1
    if (upper <= 1 and x < 0.5) or (n >= 10 and upper <= 3 and x <= 0.5 / math.sqrt(n)):
        total = 0.0
        for v in range(n, n1mxceil - 1, -1):  # few terms, alternating signs
            total += math.comb(n, v) * ((n - v - nxfl - alpha) / n) ** (n - v) * ((v + nxfl + alpha) / n) ** (v - 1)
        return 1 - x * total
    v = np.arange(0, n1mxfl + 1, dtype=np.float64)
    log_comb = np.concatenate([[0.0], np.cumsum(np.log(n - v[1:] + 1) - np.log(v[1:]))])
    log_a = (log_comb + (n - v) * np.log(((n - nxfl - v) - alpha) / n)
             + (v - 1) * np.log((v + nxfl + alpha) / n))
    top = log_a.max()
    return _clip(x * math.exp(top) * float(np.sum(np.exp(log_a - top))))


# -- chi-square and the normal law -------------------------------------------------------
def chi2_sf(stat: float, dof: int) -> float:
    """P(X >= stat) for X ~ chi-square with ``dof`` degrees of freedom."""
    if dof <= 0 or stat <= 0:
        return 1.0
    return _gammaincc(dof / 2.0, stat / 2.0)


def _gammaincc(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) (series below a+1, continued fraction above)."""
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-17:
                break
        return _clip(1.0 - total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return _clip(math.exp(log_front) * h)


def two_proportion_pvalue(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of the pooled z-test that k1/n1 and k2/n2 estimate one proportion."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var <= 0:
        return 1.0
    z = (k2 / n2 - k1 / n1) / math.sqrt(var)
    return math.erfc(abs(z) / math.sqrt(2))
