/*
 * The luma plane of a Huffman-coded sequential JPEG at 1/8 scale, from the DC coefficients alone.
 *
 * Why this exists: at 1/8 scale every output pixel is the DC coefficient of one 8x8 block, so libjpeg-turbo's
 * scaled decode (Pillow's draft mode) spends almost all of its time parsing AC coefficients it then throws away.
 * They still have to be parsed, since Huffman codes have no boundaries, but a parser that only skips them can
 * skip a code and its magnitude bits in one table lookup, often two codes at once.  The output is bit for bit
 * libjpeg-turbo's: the same DC prediction, dequantisation, descaling and range limiting as its 1x1 inverse DCT
 * (jidctred.c) followed by the YCbCr -> grayscale "conversion", which copies the first component.
 *
 * What it does not do, on purpose: anything unusual (progressive or arithmetic coding, 12-bit samples, a first
 * component that is subsampled, corrupt or truncated entropy data, restart markers out of order) returns a
 * non-zero status and the caller decodes the file with Pillow instead, so errors and their messages stay
 * libjpeg-turbo's own.  Every read of the scan is bounded: the cleaned scan is followed by PAD bytes, and the
 * position is checked after every MCU against what one MCU can read at most.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FAST_BITS 11
#define FAST_SIZE (1 << FAST_BITS)
/* Bytes after a cleaned scan segment.  One MCU holds at most 10 blocks of 64 codes of at most 31 bits each
 * (19,840 bits, 2,480 bytes), and the reader loads 8 bytes ahead of its position. */
#define PAD 4096
#define MAX_BLOCKS 10
#define MAX_TABLES 4
/* One table in the block the caller hands over: a defined flag, 16 code counts, 256 symbols. */
#define TABLE_BYTES 273

/* A lookup entry.  `used`: the bits consumed (code plus magnitude bits, at most 26 for the pair of an 11-bit window
 * and a 15-bit magnitude); 0 means the code is longer than FAST_BITS (or not a code) and the slow path decides.
 * `advance`: for AC, how far the coefficient index moves (run + 1, 16 for ZRL, 64 for end of block); for DC, the
 * magnitude size.  Two bytes rather than bit fields of one 16-bit word: the shift by `used` then waits only for
 * the load, not for a mask after it, and that shift is on the path every code of the scan waits for. */
typedef struct {
    uint8_t used, advance;
} Entry;

typedef struct {
    Entry pair[FAST_SIZE];   /* AC: one code, or two when the second also lies inside the window */
    Entry single[FAST_SIZE]; /* AC: exactly one code; DC: the code's length and magnitude size */
    int32_t maxcode[18];        /* canonical decoding of long codes, as libjpeg's jpeg_huff_decode */
    int32_t valoffset[18];
    uint8_t values[256];
    int defined;
} HuffTable;

typedef struct {
    uint8_t dc_table, ac_table, luma, dy, dx;
} BlockPlan;

enum {
    OK = 0,
    ERR_TABLE = 1,     /* a Huffman table libjpeg would refuse, or a scan naming a missing one */
    ERR_CODE = 2,      /* a bit pattern that is no code */
    ERR_OVERRUN = 3,   /* the scan ended (marker or end of file) before its MCUs did */
    ERR_RESTART = 4,   /* a restart marker missing or out of order */
    ERR_COEFFICIENT = 5, /* a DC value far outside what any 8-bit picture produces */
    ERR_MEMORY = 6,
};

#if defined(_MSC_VER)
#define ALWAYS_INLINE __forceinline
#else
#define ALWAYS_INLINE inline __attribute__((always_inline))
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FROM_BE64(x) (x)
#elif defined(_MSC_VER)
#define FROM_BE64(x) _byteswap_uint64(x)
#else
#define FROM_BE64(x) __builtin_bswap64(x)
#endif

static inline uint64_t load_be64(const uint8_t *p) {
    uint64_t word;
    memcpy(&word, p, sizeof word);
    return FROM_BE64(word);
}

/* How far an AC symbol moves the coefficient index: past its run and its coefficient, 16 for ZRL (run 15, size
 * 0); any other size-0 symbol ends the block (libjpeg's `if (r != 15) break`), so it moves past the last one. */
static inline int ac_advance(int symbol) {
    int run = symbol >> 4, size = symbol & 15;
    return size ? run + 1 : (run == 15 ? 16 : 64);
}

/* Builds one table from a DHT definition (16 code counts, then the symbols), with libjpeg-turbo's checks. */
static int build_table(HuffTable *t, const uint8_t *counts, const uint8_t *symbols, int is_dc) {
    int total = 0;
    for (int l = 0; l < 16; l++) total += counts[l];
    if (total > 256) return ERR_TABLE;
    uint8_t lengths[256];
    uint16_t codes[256];
    int32_t code = 0;
    int k = 0;
    for (int l = 1; l <= 16; l++) {
        int n = counts[l - 1];
        t->valoffset[l] = k - code;
        for (int i = 0; i < n; i++) {
            lengths[k] = (uint8_t)l;
            codes[k] = (uint16_t)code;
            code++;
            k++;
        }
        t->maxcode[l] = n ? code - 1 : -1;
        if (code >= (1 << l)) return ERR_TABLE; /* over-subscribed, or an all-ones code */
        code <<= 1;
    }
    t->maxcode[17] = INT32_MAX;
    memset(t->values, 0, sizeof t->values);
    memcpy(t->values, symbols, (size_t)total);
    if (is_dc) {
        for (int i = 0; i < total; i++)
            if (symbols[i] > 15) return ERR_TABLE;
    }
    memset(t->single, 0, sizeof t->single);
    memset(t->pair, 0, sizeof t->pair);
    /* Code length and symbol of every FAST_BITS-bit window whose leading code is short enough. */
    uint8_t win_len[FAST_SIZE];
    uint8_t win_sym[FAST_SIZE];
    memset(win_len, 0, sizeof win_len);
    for (int i = 0; i < total; i++) {
        int l = lengths[i];
        if (l > FAST_BITS) break;
        int lo = codes[i] << (FAST_BITS - l), hi = (codes[i] + 1) << (FAST_BITS - l);
        for (int w = lo; w < hi; w++) {
            win_len[w] = (uint8_t)l;
            win_sym[w] = symbols[i];
        }
    }
    for (int w = 0; w < FAST_SIZE; w++) {
        if (!win_len[w]) continue;
        int sym = win_sym[w];
        if (is_dc) {
            t->single[w] = (Entry){win_len[w], (uint8_t)sym};
            continue;
        }
        int used = win_len[w] + (sym & 15);
        int advance = ac_advance(sym);
        Entry one = {(uint8_t)used, (uint8_t)advance};
        t->single[w] = one;
        t->pair[w] = one;
        if (advance == 64 || used >= FAST_BITS) continue;
        int rest = (w << used) & (FAST_SIZE - 1); /* the window after the first code, known bits on top */
        if (!win_len[rest] || win_len[rest] > FAST_BITS - used) continue;
        int sym2 = win_sym[rest];
        t->pair[w] = (Entry){(uint8_t)(used + win_len[rest] + (sym2 & 15)), (uint8_t)(advance + ac_advance(sym2))};
    }
    t->defined = 1;
    return OK;
}

/* A code longer than FAST_BITS (or none): its length and symbol, from the top of `bits`.  0 when no code. */
static inline int slow_code(const HuffTable *t, uint64_t bits, int *symbol) {
    for (int l = FAST_BITS + 1; l <= 16; l++) {
        int32_t code = (int32_t)(bits >> (64 - l));
        if (code <= t->maxcode[l]) {
            int32_t index = code + t->valoffset[l];
            if (index < 0 || index > 255) return 0;
            *symbol = t->values[index];
            return l;
        }
    }
    return 0;
}

/* Copies entropy-coded bytes from src[*at..n) to dst without the stuffed zero after each 0xFF, up to the next
 * marker.  Returns the bytes written; *marker is the marker's second byte, or -1 at the end of the data, and *at
 * the offset of that second byte (n at the end of the data). */
static size_t unstuff(const uint8_t *src, size_t n, size_t *at, uint8_t *dst, int *marker) {
    size_t i = *at, o = 0;
    while (i < n) {
        const uint8_t *ff = memchr(src + i, 0xFF, n - i);
        size_t run = ff ? (size_t)(ff - (src + i)) : n - i;
        memcpy(dst + o, src + i, run);
        o += run;
        i += run;
        if (!ff) break;
        size_t j = i + 1;
        while (j < n && src[j] == 0xFF) j++; /* fill bytes */
        if (j >= n) {
            i = n;
            break;
        }
        if (src[j] == 0) {
            dst[o++] = 0xFF;
            i = j + 1;
            continue;
        }
        *marker = src[j];
        *at = j;
        return o;
    }
    *marker = -1;
    *at = n;
    return o;
}

/* libjpeg-turbo's post-IDCT range limit: index (value & 1023), with its wrap-around for absurd values. */
static uint8_t range_limit(int32_t value) {
    int32_t x = value & 1023;
    if (x < 128) return (uint8_t)(x + 128);
    if (x < 512) return 255;
    if (x < 896) return 0;
    return (uint8_t)(x - 896);
}

typedef struct {
    const uint8_t *data;
    size_t size, start;
    int mcus_x, mcus_y, restart_interval, blocks;
    int luma_h, luma_v; /* luma blocks per MCU across and down */
    int out_w, out_h;
    int32_t quant;      /* the first component's DC quantiser */
    BlockPlan plan[MAX_BLOCKS];
    HuffTable *dc[MAX_TABLES], *ac[MAX_TABLES];
    uint8_t *out;
} Job;

#define REFILL()                                    \
    do {                                            \
        acc |= load_be64(clean + pos) >> nbits;     \
        pos += (63 - nbits) >> 3;                   \
        nbits |= 56;                                \
    } while (0)

/* Skips AC codes from coefficient k until the index reaches `limit`, two at a time where `pairs`.  Returns the new
 * index, or -1 on a bit pattern that is no code.  Inlined, so the bit reader's state stays in registers. */
static ALWAYS_INLINE int skip_ac(const HuffTable *ac, int pairs, int k, int limit, const uint8_t *clean,
                                 uint64_t *acc_io, unsigned *nbits_io, size_t *pos_io) {
    const Entry *table = pairs ? ac->pair : ac->single; /* a constant after inlining: an offset in the load */
    uint64_t acc = *acc_io;
    unsigned nbits = *nbits_io;
    size_t pos = *pos_io;
    while (k < limit) {
        /* The window is read before the refill: at least 25 bits are left from the last one. */
        Entry e = table[acc >> (64 - FAST_BITS)];
        REFILL();
        if (e.used) {
            acc <<= e.used;
            nbits -= e.used;
            k += e.advance;
        } else {
            int symbol;
            int l = slow_code(ac, acc, &symbol);
            if (!l) return -1;
            int size_bits = symbol & 15;
            acc <<= l + size_bits;
            nbits -= (unsigned)(l + size_bits);
            k += ac_advance(symbol);
        }
    }
    *acc_io = acc;
    *nbits_io = nbits;
    *pos_io = pos;
    return k;
}

/* Decodes every MCU into job->out.  *end: the offset of the code byte of the marker that ended the scan. */
static int decode(const Job *job, uint8_t *clean, size_t *end) {
    size_t at = job->start;
    int marker = -1;
    int expected_restart = 0;
    long long total = (long long)job->mcus_x * job->mcus_y;
    long long mcu = 0;
    while (mcu < total) {
        /* No clearing after the segment: bytes left there by an earlier segment only reach codes that would
         * run past its end, and those fail the overrun check. */
        size_t seg = unstuff(job->data, job->size, &at, clean, &marker);
        uint64_t acc = 0;
        unsigned nbits = 0; /* valid bits at the top of acc */
        size_t pos = 0;     /* next byte to load */
        int64_t pred = 0;
        long long end = job->restart_interval ? mcu + job->restart_interval : total;
        if (end > total) end = total;
        for (; mcu < end; mcu++) {
            int my = (int)(mcu / job->mcus_x), mx = (int)(mcu % job->mcus_x);
            for (int b = 0; b < job->blocks; b++) {
                const BlockPlan *p = &job->plan[b];
                const HuffTable *dc = job->dc[p->dc_table];
                REFILL();
                Entry entry = dc->single[acc >> (64 - FAST_BITS)];
                unsigned length, size;
                if (entry.used) {
                    length = entry.used;
                    size = entry.advance;
                } else {
                    int symbol;
                    length = (unsigned)slow_code(dc, acc, &symbol);
                    if (!length) return ERR_CODE;
                    size = (unsigned)symbol;
                }
                acc <<= length;
                nbits -= length;
                /* The magnitude bits and libjpeg's HUFF_EXTEND without branches: the sign of a DC difference is
                 * as good as random, and a mispredicted branch costs more than these few operations. */
                uint64_t extend = ((uint64_t)1 << size) - 1;
                int64_t raw = (int64_t)((acc >> 1) >> (63 - size)); /* 0 when size is 0 */
                int64_t diff = raw - (raw < (int64_t)((extend + 1) >> 1) ? (int64_t)extend : 0);
                acc <<= size;
                nbits -= size;
                if (p->luma) {
                    pred += diff;
                    if (pred > (1 << 24) || pred < -(1 << 24)) return ERR_COEFFICIENT;
                    int16_t coefficient = (int16_t)pred; /* libjpeg keeps coefficients as 16-bit JCOEF */
                    int row = my * job->luma_v + p->dy, col = mx * job->luma_h + p->dx;
                    if (row < job->out_h && col < job->out_w) {
                        int32_t value = ((int32_t)coefficient * job->quant + 4) >> 3;
                        job->out[(size_t)row * job->out_w + col] = range_limit(value);
                    }
                }
                const HuffTable *ac = job->ac[p->ac_table];
                /* Pairs while the first code cannot end the block by count (k + 16 <= 63), then single codes.
                 * Two loops rather than one that picks its table by k: a predicted branch keeps the choice off
                 * the chain of dependent loads, where a conditional move would lengthen it. */
                int k = skip_ac(ac, 1, 1, 48, clean, &acc, &nbits, &pos);
                if (k >= 0) k = skip_ac(ac, 0, k, 64, clean, &acc, &nbits, &pos);
                if (k < 0) return ERR_CODE;
            }
            if (pos * 8 - nbits > seg * 8) return ERR_OVERRUN;
        }
        if (mcu < total) {
            if (marker != 0xD0 + expected_restart) return ERR_RESTART;
            expected_restart = (expected_restart + 1) & 7;
            at++;
        }
    }
    *end = at;
    return OK;
}

static PyObject *luma_dc(PyObject *self, PyObject *args) {
    Py_buffer data, tables, plan, out;
    Py_ssize_t start;
    int mcus_x, mcus_y, restart, luma_h, luma_v, out_w, out_h, quant;
    if (!PyArg_ParseTuple(args, "y*ny*y*iiiiiiiiw*", &data, &start, &tables, &plan, &mcus_x, &mcus_y, &restart,
                          &luma_h, &luma_v, &out_w, &out_h, &quant, &out))
        return NULL;
    int status = OK;
    size_t end = 0;
    HuffTable *storage = NULL;
    uint8_t *clean = NULL;
    Job job;
    memset(&job, 0, sizeof job);
    const char *problem = NULL;
    if (start < 0 || start > data.len) problem = "scan start outside the data";
    else if (mcus_x <= 0 || mcus_y <= 0 || restart < 0 || luma_h < 1 || luma_v < 1 || luma_h > 4 || luma_v > 4)
        problem = "bad geometry";
    else if (out_w <= 0 || out_h <= 0 || (long long)out_w * out_h > out.len) problem = "output buffer too small";
    else if ((long long)out_w > (long long)mcus_x * luma_h || (long long)out_h > (long long)mcus_y * luma_v)
        problem = "output larger than the MCU grid";
    else if (plan.len <= 0 || plan.len % 5 || plan.len / 5 > MAX_BLOCKS) problem = "bad block plan";
    else if (tables.len != 2 * MAX_TABLES * TABLE_BYTES) problem = "bad table block";
    if (problem) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&tables);
        PyBuffer_Release(&plan);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, problem);
        return NULL;
    }
    job.data = data.buf;
    job.size = (size_t)data.len;
    job.start = (size_t)start;
    job.mcus_x = mcus_x;
    job.mcus_y = mcus_y;
    job.restart_interval = restart;
    job.luma_h = luma_h;
    job.luma_v = luma_v;
    job.out_w = out_w;
    job.out_h = out_h;
    job.quant = (int16_t)quant; /* libjpeg-turbo keeps quantisers as 16-bit multipliers */
    job.out = out.buf;
    job.blocks = (int)(plan.len / 5);
    const uint8_t *tb = tables.buf, *pb = plan.buf;

    Py_BEGIN_ALLOW_THREADS
    storage = calloc(2 * MAX_TABLES, sizeof(HuffTable));
    clean = calloc(job.size - job.start + PAD, 1);
    if (!storage || !clean) status = ERR_MEMORY;
    for (int i = 0; status == OK && i < 2 * MAX_TABLES; i++) {
        const uint8_t *def = tb + i * TABLE_BYTES;
        if (def[0]) status = build_table(&storage[i], def + 1, def + 17, i < MAX_TABLES);
    }
    for (int b = 0; status == OK && b < job.blocks; b++) {
        const uint8_t *q = pb + 5 * b;
        BlockPlan *p = &job.plan[b];
        p->dc_table = q[0];
        p->ac_table = q[1];
        p->luma = q[2];
        p->dy = q[3];
        p->dx = q[4];
        if (p->dc_table >= MAX_TABLES || p->ac_table >= MAX_TABLES || !storage[p->dc_table].defined ||
            !storage[MAX_TABLES + p->ac_table].defined || (p->luma && (p->dy >= luma_v || p->dx >= luma_h)))
            status = ERR_TABLE;
    }
    if (status == OK) {
        for (int i = 0; i < MAX_TABLES; i++) {
            job.dc[i] = &storage[i];
            job.ac[i] = &storage[MAX_TABLES + i];
        }
        status = decode(&job, clean, &end);
    }
    free(storage);
    free(clean);
    Py_END_ALLOW_THREADS

    PyBuffer_Release(&data);
    PyBuffer_Release(&tables);
    PyBuffer_Release(&plan);
    PyBuffer_Release(&out);
    return Py_BuildValue("in", status, (Py_ssize_t)end);
}

static PyMethodDef methods[] = {
    {"luma_dc", luma_dc, METH_VARARGS,
     "luma_dc(data, scan_start, tables, plan, mcus_x, mcus_y, restart_interval, luma_h, luma_v, out_w, out_h, "
     "quant, out) -> (status, end): writes the 1/8-scale luma of a sequential Huffman JPEG into out; status 0 on "
     "success, end the offset of the code byte of the marker after the scan."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jpeg_dc", NULL, -1, methods};

PyMODINIT_FUNC PyInit__jpeg_dc(void) { return PyModule_Create(&module); }
