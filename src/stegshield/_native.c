/*
 * stegshield._native: the two hot loops of `hide`, in C, so that a command-line hide starts
 * without a JIT (numba's start-up alone cost ~0.5 s of CPU per process).
 *
 *  viterbi  the Viterbi pass of syndrome-trellis codes
 *           (Filler, Judas, Fridrich, "Minimizing additive distortion in steganography using
 *           syndrome-trellis codes", IEEE TIFS 2011); block layout and submatrices come
 *           from stego/stc.py, which also computes syndromes (numpy).
 *  hill     the HILL cost map (Li, Wang, Huang, Li, ICIP 2014), mirrored borders, float32.
 *
 *  feistel  the keyed permutation that picks embedding positions (stego/positions.py).
 *  ws_tiles one pass of WS steganalysis sums per tile (analysis/structural/ws.py), the hot
 *           loop of `scan --detector classical`.
 *  pair_hist  the adjacent-pair histogram of SPA (analysis/structural/spa.py).
 *  srm_counts  the co-occurrence counts of the SRM-lite features (analysis/features/srm.py).
 *
 * All release the GIL. Buffers come through the buffer protocol; shapes are checked here.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- STC Viterbi */

static PyObject *viterbi(PyObject *self, PyObject *args) {
    Py_buffer rho_b, target_b, table_b, e_b;
    int h;
    Py_ssize_t cols;
    if (!PyArg_ParseTuple(args, "y*y*iy*nw*", &rho_b, &target_b, &h, &table_b, &cols, &e_b))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t n = rho_b.len / (Py_ssize_t)sizeof(double);
    const Py_ssize_t m = target_b.len;
    /* sizes compared by division: 2 * cols * 8 could wrap for a huge cols */
    if (h < 1 || h > 16 || m < 1 || n < m || e_b.len != n || cols < 1 ||
        rho_b.len % (Py_ssize_t)sizeof(double) != 0 ||
        table_b.len % (Py_ssize_t)(2 * sizeof(uint64_t)) != 0 ||
        table_b.len / (Py_ssize_t)(2 * sizeof(uint64_t)) != cols) {
        PyErr_SetString(PyExc_ValueError, "viterbi: inconsistent buffer sizes");
        goto done;
    }
    /* the table is indexed by column within a block (up to n / m rounded up) and the target
       by bit: anything else would read outside the buffers */
    if (cols < n / m + (n % m != 0)) {
        PyErr_SetString(PyExc_ValueError, "viterbi: table has too few columns for n / m");
        goto done;
    }
    for (Py_ssize_t i = 0; i < m; i++) {
        if (((const uint8_t *)target_b.buf)[i] > 1) {
            PyErr_SetString(PyExc_ValueError, "viterbi: target bits must be 0 or 1");
            goto done;
        }
    }
    {
        const double *rho = (const double *)rho_b.buf;
        const uint8_t *target = (const uint8_t *)target_b.buf;
        const uint64_t *table = (const uint64_t *)table_b.buf;
        uint8_t *e = (uint8_t *)e_b.buf;
        const Py_ssize_t q = n / m;
        const int S = 1 << h;
        const int nwords = S >= 64 ? S / 64 : 1;
        double *w = malloc(sizeof(double) * S), *wn = malloc(sizeof(double) * S);
        uint64_t *path = malloc(sizeof(uint64_t) * (size_t)nwords * (size_t)n);
        double cost = INFINITY;
        if (!w || !wn || !path) {
            free(w); free(wn); free(path);
            PyErr_NoMemory();
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        for (int s = 0; s < S; s++) w[s] = INFINITY;
        w[0] = 0.0;
        for (Py_ssize_t i = 0; i < m; i++) {
            const Py_ssize_t start = (Py_ssize_t)(((__int128)i * n) / m);
            const Py_ssize_t end = (Py_ssize_t)(((__int128)(i + 1) * n) / m);
            const Py_ssize_t sel = end - start - q;
            const int rows = (m - i) < h ? (int)(m - i) : h;
            const uint64_t mask = (rows >= 64) ? ~(uint64_t)0 : (((uint64_t)1 << rows) - 1);
            for (Py_ssize_t j = start; j < end; j++) {
                uint64_t *pj = path + (size_t)j * nwords;
                const double r = rho[j];
                if (isinf(r)) {
                    memset(pj, 0, sizeof(uint64_t) * nwords);
                    continue;
                }
                const int c = (int)(table[sel * cols + (j - start)] & mask);
                for (int k = 0; k < nwords; k++) {
                    const int lo = k * 64, hi = (lo + 64 < S) ? lo + 64 : S;
                    uint64_t word = 0;
                    for (int s = lo; s < hi; s++) { /* branch-free add-compare-select */
                        const double keep = w[s], flip = w[s ^ c] + r;
                        const uint64_t take = flip < keep;
                        wn[s] = take ? flip : keep;
                        word |= take << (s - lo);
                    }
                    pj[k] = word;
                }
                double *tmp = w; w = wn; wn = tmp;
            }
            /* row i leaves the window: keep states whose bit 0 equals target[i], shift down */
            const int t = target[i];
            const int half = S >> 1;
            for (int s = 0; s < half; s++) wn[s] = w[2 * s + t];
            for (int s = half; s < S; s++) wn[s] = INFINITY;
            double *tmp = w; w = wn; wn = tmp;
        }
        cost = w[0];
        memset(e, 0, (size_t)n);
        if (!isinf(cost)) {
            int64_t s = 0;
            for (Py_ssize_t i = m - 1; i >= 0; i--) {
                const Py_ssize_t start = (Py_ssize_t)(((__int128)i * n) / m);
                const Py_ssize_t end = (Py_ssize_t)(((__int128)(i + 1) * n) / m);
                const Py_ssize_t sel = end - start - q;
                const int rows = (m - i) < h ? (int)(m - i) : h;
                const uint64_t mask = (((uint64_t)1 << rows) - 1);
                s = (s << 1) | target[i];
                for (Py_ssize_t j = end - 1; j >= start; j--) {
                    const uint64_t *pj = path + (size_t)j * nwords;
                    if ((pj[s >> 6] >> (s & 63)) & 1) {
                        e[j] = 1;
                        s ^= (int64_t)(table[sel * cols + (j - start)] & mask);
                    }
                }
            }
        }
        Py_END_ALLOW_THREADS
        free(w); free(wn); free(path);
        result = PyFloat_FromDouble(cost);
    }
done:
    PyBuffer_Release(&rho_b);
    PyBuffer_Release(&target_b);
    PyBuffer_Release(&table_b);
    PyBuffer_Release(&e_b);
    return result;
}

/* ---------------------------------------------------------------- HILL cost map */

static inline Py_ssize_t refl(Py_ssize_t k, Py_ssize_t n) {
    /* half-sample symmetric extension: d c b a | a b c d | d c b a */
    if (k >= 0 && k < n) return k; /* the common case: no division */
    const Py_ssize_t p = 2 * n;
    k %= p;
    if (k < 0) k += p;
    return k >= n ? p - 1 - k : k;
}

/* out[j] = sum_{|d| <= r} src[refl(j + d)], via a mirrored copy in buf (len W + 2r) */
static void row_box(const float *src, float *buf, float *out, Py_ssize_t W, int r) {
    for (Py_ssize_t j = 0; j < W + 2 * r; j++) buf[j] = src[refl(j - r, W)];
    for (Py_ssize_t j = 0; j < W; j++) out[j] = buf[j];
    for (int d = 1; d <= 2 * r; d++)
        for (Py_ssize_t j = 0; j < W; j++) out[j] += buf[j + d];
}

static PyObject *hill(PyObject *self, PyObject *args) {
    Py_buffer x_b, out_b;
    Py_ssize_t H, W;
    double floor_v, tiny, big;
    if (!PyArg_ParseTuple(args, "y*nnw*ddd", &x_b, &H, &W, &out_b, &floor_v, &tiny, &big))
        return NULL;
    PyObject *result = NULL;
    if (H < 1 || W < 1 || x_b.len != H * W || out_b.len != (Py_ssize_t)(H * W * sizeof(float))) {
        PyErr_SetString(PyExc_ValueError, "hill: inconsistent buffer sizes");
        goto done;
    }
    {
        const uint8_t *x = (const uint8_t *)x_b.buf;
        float *out = (float *)out_b.buf;
        float *res = malloc(sizeof(float) * (size_t)(H * W));
        float *inv = malloc(sizeof(float) * (size_t)(H * W));
        float *v = malloc(sizeof(float) * (size_t)W);
        float *buf = malloc(sizeof(float) * (size_t)(W + 16));
        double *dacc = malloc(sizeof(double) * (size_t)W);
        if (!res || !inv || !v || !buf || !dacc) {
            free(res); free(inv); free(v); free(buf); free(dacc);
            PyErr_NoMemory();
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        const float fl = (float)floor_v;
        /* |X (*) KB| / 4, KB = -[1,-2,1]^T [1,-2,1]: two 1-D second differences */
        for (Py_ssize_t i = 0; i < H; i++) {
            const uint8_t *a = x + refl(i - 1, H) * W, *b = x + i * W, *c = x + refl(i + 1, H) * W;
            for (Py_ssize_t j = 0; j < W; j++) v[j] = (float)a[j] - 2.0f * (float)b[j] + (float)c[j];
            for (Py_ssize_t j = 0; j < W + 2; j++) buf[j] = v[refl(j - 1, W)];
            float *row = res + i * W;
            for (Py_ssize_t j = 0; j < W; j++)
                row[j] = fabsf(0.25f * (buf[j] - 2.0f * buf[j + 1] + buf[j + 2]));
        }
        /* 1 / max(|R| (*) L3, floor) */
        for (Py_ssize_t i = 0; i < H; i++) {
            const float *a = res + refl(i - 1, H) * W, *b = res + i * W, *c = res + refl(i + 1, H) * W;
            for (Py_ssize_t j = 0; j < W; j++) v[j] = a[j] + b[j] + c[j];
            float *row = inv + i * W;
            row_box(v, buf, row, W, 1);
            for (Py_ssize_t j = 0; j < W; j++) {
                const float m = row[j] * (1.0f / 9.0f);
                row[j] = 1.0f / (m > fl ? m : fl);
            }
        }
        /* (...) (*) L15, clipped to [tiny, big]: running sums in double, recomputed exactly
         * every RESTART steps so that cancellation between flat (1/eps) and textured areas
         * cannot accumulate. */
        enum { R = 7, RESTART = 32 };
        {
            for (Py_ssize_t i = 0; i < H; i++) {
                if (i % RESTART == 0) {
                    for (Py_ssize_t j = 0; j < W; j++) dacc[j] = 0.0;
                    for (int d = -R; d <= R; d++) {
                        const float *src = inv + refl(i + d, H) * W;
                        for (Py_ssize_t j = 0; j < W; j++) dacc[j] += src[j];
                    }
                } else {
                    const float *add = inv + refl(i + R, H) * W;
                    const float *sub = inv + refl(i - R - 1, H) * W;
                    for (Py_ssize_t j = 0; j < W; j++) dacc[j] += (double)add[j] - (double)sub[j];
                }
                for (Py_ssize_t j = 0; j < W + 2 * R; j++) buf[j] = (float)dacc[refl(j - R, W)];
                float *orow = out + i * W;
                double run = 0.0;
                for (Py_ssize_t j = 0; j < W; j++) {
                    if (j % RESTART == 0) {
                        run = 0.0;
                        for (int d = 0; d <= 2 * R; d++) run += buf[j + d];
                    } else {
                        run += (double)buf[j + 2 * R] - (double)buf[j - 1];
                    }
                    const float val = (float)(run / 225.0);
                    orow[j] = val < (float)tiny ? (float)tiny : (val > (float)big ? (float)big : val);
                }
            }
        }
        Py_END_ALLOW_THREADS
        free(res); free(inv); free(v); free(buf); free(dacc);
        Py_INCREF(Py_None);
        result = Py_None;
    }
done:
    PyBuffer_Release(&x_b);
    PyBuffer_Release(&out_b);
    return result;
}

/* ---------------------------------------------------------------- keyed permutation */

static inline uint64_t mix64(uint64_t x) { /* SplitMix64's finaliser */
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* out[i] = pi(start + i): balanced Feistel network on 2*half_bits bits (Luby & Rackoff 1988),
 * restricted to [0, n) by cycle walking (Black & Rogaway, CT-RSA 2002). */
static PyObject *feistel(PyObject *self, PyObject *args) {
    Py_buffer rk_b, out_b;
    int half_bits;
    unsigned long long n, start;
    if (!PyArg_ParseTuple(args, "y*iKKw*", &rk_b, &half_bits, &n, &start, &out_b)) return NULL;
    PyObject *result = NULL;
    const Py_ssize_t rounds = rk_b.len / (Py_ssize_t)sizeof(uint64_t);
    const Py_ssize_t k = out_b.len / (Py_ssize_t)sizeof(int64_t);
    if (half_bits < 1 || half_bits > 31 || rounds < 1 || n == 0 ||
        (1ULL << (2 * half_bits)) < n || start + (unsigned long long)k > n) {
        PyErr_SetString(PyExc_ValueError, "feistel: bad arguments");
        goto done;
    }
    {
        const uint64_t *rk = (const uint64_t *)rk_b.buf;
        int64_t *out = (int64_t *)out_b.buf;
        const uint64_t mask = (1ULL << half_bits) - 1;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < k; i++) {
            uint64_t x = start + (uint64_t)i;
            do {
                uint64_t left = x >> half_bits, right = x & mask;
                for (Py_ssize_t r = 0; r < rounds; r++) {
                    const uint64_t z = (mix64(right ^ rk[r]) & mask) ^ left;
                    left = right;
                    right = z;
                }
                x = (left << half_bits) | right;
            } while (x >= n);
            out[i] = (int64_t)x;
        }
        Py_END_ALLOW_THREADS
        Py_INCREF(Py_None);
        result = Py_None;
    }
done:
    PyBuffer_Release(&rk_b);
    PyBuffer_Release(&out_b);
    return result;
}

/* ---------------------------------------------------------------- WS steganalysis sums */

/* One pass of weighted-stego steganalysis (Fridrich & Goljan 2004; Ker & Boehme, "Revisiting
 * weighted stego-image steganalysis", SPIE 2008): for every interior pixel, the local predictor
 * ("kb": Ker-Boehme 3x3, else "fg": 4-neighbour mean), the moderated weight
 * w = 1 / (moderation + local variance), and the per-tile sums of w, w d (x - pred) and
 * w d F(d) (the bias term), d = +1 on odd pixels, -1 on even ones.  out: 3 x ty x tx doubles,
 * tiles of `tile` pixels (tile = 0: one tile).  Mirrors analysis/structural/ws.py. */
/* per-pixel terms of one interior row; KB is a constant in each instance so that the loop has
 * no control flow and vectorises (the clamps compile to min/max) */
#define WS_ROW(NAME, KB)                                                                        \
static void NAME(const uint8_t *restrict a, const uint8_t *restrict b,                          \
                 const uint8_t *restrict c, Py_ssize_t W, float moderation,                     \
                 float *restrict ow, float *restrict on, float *restrict ob) {                  \
    for (Py_ssize_t j = 1; j < W - 1; j++) {                                                    \
        float u = a[j], dn = c[j], l = b[j - 1], r = b[j + 1];                                  \
        float ul = a[j - 1], ur = a[j + 1], dl = c[j - 1], dr = c[j + 1];                       \
        float cross = u + dn + l + r, diag = ul + ur + dl + dr;                                 \
        float cross2 = u * u + dn * dn + l * l + r * r;                                         \
        /* parity maps: +1 odd, -1 even */                                                      \
        float dcross = (float)(((a[j] & 1) << 1) - 1) + (float)(((c[j] & 1) << 1) - 1) +       \
                       (float)(((b[j - 1] & 1) << 1) - 1) + (float)(((b[j + 1] & 1) << 1) - 1); \
        float pred, var, fd;                                                                    \
        if (KB) {                                                                               \
            float diag2 = ul * ul + ur * ur + dl * dl + dr * dr;                                \
            float mean = (cross + diag) * 0.125f;                                               \
            var = (cross2 + diag2) * 0.125f;                                                    \
            var = var - mean * mean;                                                            \
            pred = cross * 0.5f - diag * 0.25f;                                                 \
            float ddiag = (float)(((a[j - 1] & 1) << 1) - 1) +                                  \
                          (float)(((a[j + 1] & 1) << 1) - 1) +                                  \
                          (float)(((c[j - 1] & 1) << 1) - 1) +                                  \
                          (float)(((c[j + 1] & 1) << 1) - 1);                                   \
            fd = dcross * 0.5f - ddiag * 0.25f;                                                 \
        } else {                                                                                \
            pred = cross * 0.25f;                                                               \
            var = cross2 * 0.25f;                                                               \
            var = var - pred * pred;                                                            \
            fd = dcross * 0.25f;                                                                \
        }                                                                                       \
        pred = pred > 0.f ? pred : 0.f;                                                         \
        pred = pred < 255.f ? pred : 255.f;                                                     \
        var = var > 0.f ? var : 0.f;                                                            \
        float w = 1.0f / (var + moderation);                                                    \
        float wd = w * (float)(((b[j] & 1) << 1) - 1);                                          \
        ow[j] = w;                                                                              \
        on[j] = ((float)b[j] - pred) * wd;                                                      \
        ob[j] = fd * wd;                                                                        \
    }                                                                                           \
}
WS_ROW(ws_row_kb, 1)
WS_ROW(ws_row_fg, 0)

static PyObject *ws_tiles(PyObject *self, PyObject *args) {
    Py_buffer x_b, out_b;
    Py_ssize_t H, W, tile;
    int kb;
    double moderation;
    if (!PyArg_ParseTuple(args, "y*nnnpdw*", &x_b, &H, &W, &tile, &kb, &moderation, &out_b))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t T = tile > 0 ? tile : (H > W ? H : W);
    Py_ssize_t ty = (H + T - 1) / T, tx = (W + T - 1) / T;
    if (H < 3 || W < 3 || x_b.len != H * W ||
        out_b.len != (Py_ssize_t)(3 * ty * tx * sizeof(double))) {
        PyErr_SetString(PyExc_ValueError, "ws_tiles: inconsistent buffer sizes");
        goto done;
    }
    float *buf = malloc(sizeof(float) * (size_t)(3 * W));
    if (!buf) {
        PyErr_NoMemory();
        goto done;
    }
    {
        const uint8_t *x = (const uint8_t *)x_b.buf;
        double *out = (double *)out_b.buf;
        float *rw = buf, *rn = buf + W, *rb = buf + 2 * W;
        Py_BEGIN_ALLOW_THREADS
        memset(out, 0, (size_t)(3 * ty * tx) * sizeof(double));
        double *sw = out, *sn = out + ty * tx, *sb = out + 2 * ty * tx;
        for (Py_ssize_t i = 1; i < H - 1; i++) {
            (kb ? ws_row_kb : ws_row_fg)(x + (i - 1) * W, x + i * W, x + (i + 1) * W, W,
                                         (float)moderation, rw, rn, rb);
            Py_ssize_t trow = (i / T) * tx;
            for (Py_ssize_t t = 0; t < tx; t++) {  /* tile columns: interior part only */
                Py_ssize_t j0 = t * T < 1 ? 1 : t * T, j1 = (t + 1) * T > W - 1 ? W - 1 : (t + 1) * T;
                double accw = 0, accn = 0, accb = 0;
                for (Py_ssize_t j = j0; j < j1; j++) {
                    accw += rw[j];
                    accn += rn[j];
                    accb += rb[j];
                }
                sw[trow + t] += accw;
                sn[trow + t] += accn;
                sb[trow + t] += accb;
            }
        }
        Py_END_ALLOW_THREADS
        free(buf);
        result = Py_None;
        Py_INCREF(result);
    }
done:
    PyBuffer_Release(&x_b);
    PyBuffer_Release(&out_b);
    return result;
}

/* ---------------------------------------------------------------- SPA pair histogram */

/* Histogram of horizontally and vertically adjacent pairs (u, v) of a uint8 plane by the key
 * (v - u + 255) * 2 + (u & 1): what sample pair analysis (Dumitrescu, Wu, Wang 2003) needs,
 * in one pass (analysis/structural/spa.py folds it into trace-set counts).  out: 1022 int64. */
static PyObject *pair_hist(PyObject *self, PyObject *args) {
    Py_buffer x_b, out_b;
    Py_ssize_t H, W;
    if (!PyArg_ParseTuple(args, "y*nnw*", &x_b, &H, &W, &out_b)) return NULL;
    PyObject *result = NULL;
    if (H < 1 || W < 1 || x_b.len != H * W || out_b.len != (Py_ssize_t)(1022 * sizeof(int64_t))) {
        PyErr_SetString(PyExc_ValueError, "pair_hist: inconsistent buffer sizes");
        goto done;
    }
    {
        const uint8_t *x = (const uint8_t *)x_b.buf;
        int64_t *out = (int64_t *)out_b.buf;
        Py_BEGIN_ALLOW_THREADS
        memset(out, 0, 1022 * sizeof(int64_t));
        for (Py_ssize_t i = 0; i < H; i++) {
            const uint8_t *row = x + i * W, *next = i + 1 < H ? row + W : NULL;
            for (Py_ssize_t j = 0; j < W; j++) {
                int u = row[j], par = u & 1;
                if (j + 1 < W) out[(row[j + 1] - u + 255) * 2 + par]++;
                if (next) out[(next[j] - u + 255) * 2 + par]++;
            }
        }
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    }
done:
    PyBuffer_Release(&x_b);
    PyBuffer_Release(&out_b);
    return result;
}

/* ---------------------------------------------------------------- SRM-lite co-occurrences */

/* round(r / q) with halves away from zero for integer r, truncated to [-2, 2] and shifted to
 * 0..4 (q = 1..4): floor((2|r| + q) / 2q) is exact where float division would round. */
static inline uint8_t srm_q(int r, int q) {
    int a = (2 * (r < 0 ? -r : r) + q) / (2 * q);
    if (a > 2) a = 2;
    return (uint8_t)(r < 0 ? 2 - a : 2 + a);
}

#define SRM_CH 19
#define SRM_COPIES 4
/* Channel -> submodel and which co-occurrences it feeds (1 = along rows, 2 = along columns,
 * 3 = both); the order of the submodels is analysis/features/srm.py's, the quantisation steps
 * are written out where the channels are computed. */
static const int srm_sub[SRM_CH] = {0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 9};
static const int srm_dir[SRM_CH] = {1, 2, 3, 3, 3, 3, 1, 2, 3, 3, 3, 3, 1, 2, 3, 3, 3, 3, 3};

static inline int imin4(int a, int b, int c, int d) {
    int m = a < b ? a : b, n = c < d ? c : d;
    return m < n ? m : n;
}
static inline int imax4(int a, int b, int c, int d) {
    int m = a > b ? a : b, n = c > d ? c : d;
    return m > n ? m : n;
}

/* Raw 5^4 co-occurrence counts of the ten SRM-lite submodels (Fridrich & Kodovsky, "Rich
 * models for steganalysis of digital images", IEEE TIFS 2012) of a uint8 plane, in one pass
 * with a ring of four quantised residual rows: the same counts as the numpy reference
 * (analysis/features/srm.py, _strip_counts).  out: (10, 625) int64, overwritten. */
static PyObject *srm_counts(PyObject *self, PyObject *args) {
    Py_buffer x_b, out_b;
    Py_ssize_t H, W;
    if (!PyArg_ParseTuple(args, "y*nnw*", &x_b, &H, &W, &out_b)) return NULL;
    PyObject *result = NULL;
    uint8_t *ring = NULL;
    /* the private uint32 histograms hold at most (H - 4) * W counts per cell */
    if (H < 8 || W < 8 || W > PY_SSIZE_T_MAX / H || x_b.len != H * W ||
        (double)H * (double)W >= 4294967295.0 ||
        out_b.len != (Py_ssize_t)(10 * 625 * sizeof(int64_t))) {
        PyErr_SetString(PyExc_ValueError,
                        "srm_counts: needs a uint8 plane of 8x8 to 4 gigapixels and int64 out (10, 625)");
        goto done;
    }
    {
        const Py_ssize_t Hr = H - 4, Wr = W - 4; /* residuals reach two pixels out */
        /* the ring, then SRM_COPIES private histograms (consecutive codes go to different
         * copies; measured: no faster than one histogram on photographs, kept as harmless) */
        ring = (uint8_t *)calloc((size_t)SRM_CH * 4 * (size_t)Wr
                                 + SRM_COPIES * 10 * 625 * sizeof(uint32_t)
                                 + (size_t)Wr * sizeof(uint16_t), 1);
        if (!ring) {
            PyErr_NoMemory();
            goto done;
        }
        const uint8_t *x = (const uint8_t *)x_b.buf;
        int64_t *out = (int64_t *)out_b.buf;
        uint32_t *hist = (uint32_t *)(ring + (size_t)SRM_CH * 4 * (size_t)Wr);
        uint16_t *codes = (uint16_t *)(hist + SRM_COPIES * 10 * 625); /* one row of 4-tuples */
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < Hr; i++) {
            uint8_t *row[SRM_CH];
            for (int ch = 0; ch < SRM_CH; ch++) row[ch] = ring + ((size_t)ch * 4 + (size_t)(i & 3)) * Wr;
            const uint8_t *p0 = x + (i + 2) * W + 2;
            { /* the restrict promises end with this block: the channel loop below reads the
               * rows written here through other pointers */
                /* one simple loop per residual group (they vectorise; one loop computing all 19
                 * channels per pixel ran at half the speed); literal quantisation steps */
                uint8_t *restrict o0 = row[0], *restrict o1 = row[1], *restrict o2 = row[2],
                        *restrict o3 = row[3], *restrict o4 = row[4], *restrict o5 = row[5],
                        *restrict o6 = row[6], *restrict o7 = row[7], *restrict o8 = row[8],
                        *restrict o9 = row[9], *restrict o10 = row[10], *restrict o11 = row[11],
                        *restrict o12 = row[12], *restrict o13 = row[13], *restrict o14 = row[14],
                        *restrict o15 = row[15], *restrict o16 = row[16], *restrict o17 = row[17],
                        *restrict o18 = row[18];
                const uint8_t *restrict pc = p0, *restrict pu = p0 - W, *restrict pd = p0 + W,
                                        *restrict pu2 = p0 - 2 * W, *restrict pd2 = p0 + 2 * W;
                for (Py_ssize_t j = 0; j < Wr; j++) {
                    int c = pc[j];
                    int r1r = pc[j + 1] - c, r1l = pc[j - 1] - c, r1u = pu[j] - c, r1d = pd[j] - c;
                    o0[j] = srm_q(r1r, 1);
                    o1[j] = srm_q(r1u, 1);
                    o2[j] = srm_q(imin4(r1r, r1l, r1u, r1d), 1);
                    o3[j] = srm_q(-imax4(r1r, r1l, r1u, r1d), 1);
                }
                for (Py_ssize_t j = 0; j < Wr; j++) {
                    int c = pc[j];
                    int d1 = pu[j - 1] - c, d2 = pu[j + 1] - c, d3 = pd[j - 1] - c,
                        d4 = pd[j + 1] - c;
                    o4[j] = srm_q(imin4(d1, d2, d3, d4), 1);
                    o5[j] = srm_q(-imax4(d1, d2, d3, d4), 1);
                }
                for (Py_ssize_t j = 0; j < Wr; j++) {
                    int c2 = 2 * pc[j];
                    int r2h = pc[j - 1] + pc[j + 1] - c2, r2v = pu[j] + pd[j] - c2;
                    o6[j] = srm_q(r2h, 2);
                    o7[j] = srm_q(r2v, 2);
                    o8[j] = srm_q(r2h < r2v ? r2h : r2v, 2);
                    o9[j] = srm_q(-(r2h > r2v ? r2h : r2v), 2);
                }
                for (Py_ssize_t j = 0; j < Wr; j++) {
                    int c2 = 2 * pc[j];
                    int r2h = pc[j - 1] + pc[j + 1] - c2, r2v = pu[j] + pd[j] - c2;
                    int r2d1 = pu[j - 1] + pd[j + 1] - c2, r2d2 = pu[j + 1] + pd[j - 1] - c2;
                    o10[j] = srm_q(imin4(r2h, r2v, r2d1, r2d2), 2);
                    o11[j] = srm_q(-imax4(r2h, r2v, r2d1, r2d2), 2);
                }
                for (Py_ssize_t j = 0; j < Wr; j++) {
                    int c3 = 3 * pc[j], r = pc[j + 1], l = pc[j - 1], u = pu[j], d = pd[j];
                    int r3r = -pc[j + 2] + 3 * r - c3 + l, r3l = -pc[j - 2] + 3 * l - c3 + r;
                    int r3u = -pu2[j] + 3 * u - c3 + d, r3d = -pd2[j] + 3 * d - c3 + u;
                    o12[j] = srm_q(r3r, 3);
                    o13[j] = srm_q(r3u, 3);
                    o14[j] = srm_q(imin4(r3r, r3l, r3u, r3d), 3);
                    o15[j] = srm_q(-imax4(r3r, r3l, r3u, r3d), 3);
                }
                for (Py_ssize_t j = 0; j < Wr; j++) {
                    int c = pc[j], r = pc[j + 1], l = pc[j - 1], u = pu[j], d = pd[j];
                    int ul = pu[j - 1], ur = pu[j + 1], dl = pd[j - 1], dr = pd[j + 1];
                    int sq = 2 * (r + l + u + d) - (ul + ur + dl + dr) - 4 * c;
                    int e1 = 2 * (l + r + u) - ul - ur - 4 * c, e2 = 2 * (l + r + d) - dl - dr - 4 * c;
                    int e3 = 2 * (u + d + l) - ul - dl - 4 * c, e4 = 2 * (u + d + r) - ur - dr - 4 * c;
                    o16[j] = srm_q(sq, 4);
                    o17[j] = srm_q(imin4(e1, e2, e3, e4), 4);
                    o18[j] = srm_q(-imax4(e1, e2, e3, e4), 4);
                }
            }
            /* codes first (a vectorised loop), then the scattered increments */
            for (int ch = 0; ch < SRM_CH; ch++) {
                uint32_t *o = hist + srm_sub[ch] * 625;
                const size_t stride = 10 * 625;
                const uint8_t *restrict a = row[ch];
                if (srm_dir[ch] & 1) {
                    for (Py_ssize_t j = 0; j + 3 < Wr; j++)
                        codes[j] = (uint16_t)(((a[j] * 5 + a[j + 1]) * 5 + a[j + 2]) * 5 + a[j + 3]);
                    for (Py_ssize_t j = 0; j + 3 < Wr; j++)
                        o[(j & (SRM_COPIES - 1)) * stride + codes[j]]++;
                }
                if ((srm_dir[ch] & 2) && i >= 3) {
                    const uint8_t *restrict q0 = ring + ((size_t)ch * 4 + (size_t)((i - 3) & 3)) * Wr;
                    const uint8_t *restrict q1 = ring + ((size_t)ch * 4 + (size_t)((i - 2) & 3)) * Wr;
                    const uint8_t *restrict q2 = ring + ((size_t)ch * 4 + (size_t)((i - 1) & 3)) * Wr;
                    for (Py_ssize_t j = 0; j < Wr; j++)
                        codes[j] = (uint16_t)(((q0[j] * 5 + q1[j]) * 5 + q2[j]) * 5 + a[j]);
                    for (Py_ssize_t j = 0; j < Wr; j++)
                        o[(j & (SRM_COPIES - 1)) * stride + codes[j]]++;
                }
            }
        }
        for (int k = 0; k < 10 * 625; k++) {
            int64_t t = 0;
            for (int cp = 0; cp < SRM_COPIES; cp++) t += hist[cp * 10 * 625 + k];
            out[k] = t;
        }
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    }
done:
    free(ring);
    PyBuffer_Release(&x_b);
    PyBuffer_Release(&out_b);
    return result;
}

static PyMethodDef methods[] = {
    {"feistel", feistel, METH_VARARGS,
     "feistel(round_keys, half_bits, n, start, out): out[i] = pi(start + i), a keyed permutation"},
    {"viterbi", viterbi, METH_VARARGS,
     "viterbi(rho, target, h, table, cols, e) -> cost: STC Viterbi pass, writes flips into e"},
    {"hill", hill, METH_VARARGS,
     "hill(x, H, W, out, floor, tiny, big): HILL costs of uint8 x into float32 out"},
    {"ws_tiles", ws_tiles, METH_VARARGS,
     "ws_tiles(x, H, W, tile, kb, moderation, out): WS per-tile sums of w, w d (x - pred), "
     "w d F(d) into float64 out (3, ty, tx)"},
    {"pair_hist", pair_hist, METH_VARARGS,
     "pair_hist(x, H, W, out): SPA histogram of adjacent pairs into int64 out (1022,)"},
    {"srm_counts", srm_counts, METH_VARARGS,
     "srm_counts(x, H, W, out): SRM-lite raw co-occurrence counts into int64 out (10, 625)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native",
                                    "C kernels: STC Viterbi, HILL, positions, WS sums, SPA pairs, SRM counts.", -1, methods};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
