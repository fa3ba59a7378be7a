/*
 * PDQ's blur-and-decimate of a video frame's 8-bit luma plane to 64 x 64, straight from the decoder's memory.
 *
 * Why this exists: each of the 64 outputs of PDQ's operator along a row reaches only a few dozen neighbouring
 * pixels (19 of 1,280 for a 720p frame), so the column pass is a small amount of arithmetic.  Done with numpy it
 * needs a float copy of the whole plane first (3.7 MB for 720p), which on a video's fresh frames cost more than the
 * products themselves (1.4 ms a frame against 0.8 ms for the same frame already in cache).  Here each row is
 * widened into a buffer that stays in the first-level cache, and each output is one short dot product.  The row
 * pass that follows (the 64 outputs of each column) is as narrow; done here too, it leaves no BLAS call in a
 * frame's hash, whose threads otherwise spin between frames in a process that has not limited them (measured:
 * 4.7 s of wall and 6.3 of CPU for a 5-minute video, against 2.4 and 2.4 with one BLAS thread).
 *
 * The caller (signals.pdq_fast.PlaneHasher) passes each output's weights already padded with zeros to a multiple
 * of LANES taps and shifted so that they end inside the plane; the sums are always taken in the same order, so the
 * result does not depend on the machine.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>

#define LANES 8
#define OUTPUTS 64

static void column_pass(const uint8_t *plane, Py_ssize_t rows, Py_ssize_t width, Py_ssize_t stride,
                        const int32_t *starts, const float *weights, Py_ssize_t taps, float *out, float *row) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        const uint8_t *src = plane + r * stride;
        for (Py_ssize_t c = 0; c < width; c++)
            row[c] = (float)src[c];
        float *dst = out + r * OUTPUTS;
        for (int j = 0; j < OUTPUTS; j++) {
            const float *x = row + starts[j];
            const float *w = weights + (Py_ssize_t)j * taps;
            float acc[LANES] = {0};
            for (Py_ssize_t k = 0; k < taps; k += LANES)
                for (int l = 0; l < LANES; l++)
                    acc[l] += w[k + l] * x[k + l];
            dst[j] = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        }
    }
}

static void row_pass(const float *partial, const int32_t *starts, const float *weights, Py_ssize_t taps,
                     float *out) {
    for (int i = 0; i < OUTPUTS; i++) {
        float acc[OUTPUTS] = {0};
        const float *w = weights + (Py_ssize_t)i * taps;
        const float *src = partial + (Py_ssize_t)starts[i] * OUTPUTS;
        for (Py_ssize_t k = 0; k < taps; k++) {
            const float wk = w[k];
            const float *x = src + k * OUTPUTS;
            for (int c = 0; c < OUTPUTS; c++)
                acc[c] += wk * x[c];
        }
        for (int c = 0; c < OUTPUTS; c++)
            out[i * OUTPUTS + c] = acc[c];
    }
}

static int typed(const Py_buffer *view, const char *format, Py_ssize_t itemsize) {
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@')
        f++;
    return view->itemsize == itemsize && f[0] == format[0] && f[1] == '\0';
}

/* What both passes take: the array they read, each output's first tap (64 int32), the outputs' weights (64 rows
 * of `taps` float32, contiguous) and the float32 array they write (contiguous). */
typedef struct {
    Py_buffer source, starts, weights, out;
    Py_ssize_t taps;
} Args;

static void release(Args *a) {
    Py_buffer *views[4] = {&a->source, &a->starts, &a->weights, &a->out};
    for (int i = 0; i < 4; i++)
        if (views[i]->obj)
            PyBuffer_Release(views[i]);
}

/* 0, or -1 with an exception set; `release` undoes it either way. */
static int acquire(PyObject *args, Args *a, int source_flags) {
    PyObject *source, *starts, *weights, *out;
    if (!PyArg_ParseTuple(args, "OOOO", &source, &starts, &weights, &out))
        return -1;
    if (PyObject_GetBuffer(source, &a->source, source_flags | PyBUF_FORMAT) < 0 ||
        PyObject_GetBuffer(starts, &a->starts, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0 ||
        PyObject_GetBuffer(weights, &a->weights, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0 ||
        PyObject_GetBuffer(out, &a->out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0)
        return -1;
    if (!typed(&a->starts, "i", 4) || a->starts.len != OUTPUTS * 4) {
        PyErr_SetString(PyExc_ValueError, "starts must be 64 int32");
        return -1;
    }
    a->taps = a->weights.len / (OUTPUTS * 4);
    if (!typed(&a->weights, "f", 4) || a->taps <= 0 || a->weights.len != a->taps * OUTPUTS * 4) {
        PyErr_SetString(PyExc_ValueError, "weights must be 64 rows of float32");
        return -1;
    }
    return 0;
}

/* Every output's taps a multiple of `multiple` long and inside [0, limit) of the source's `axis`. */
static int taps_inside(const Args *a, Py_ssize_t limit, Py_ssize_t multiple, const char *axis) {
    if (a->taps % multiple) {
        PyErr_Format(PyExc_ValueError, "weights' rows must be a multiple of %zd long", multiple);
        return -1;
    }
    const int32_t *first = (const int32_t *)a->starts.buf;
    for (int j = 0; j < OUTPUTS; j++) {
        if (first[j] < 0 || first[j] + a->taps > limit) {
            PyErr_Format(PyExc_ValueError, "an output's taps reach outside the %s", axis);
            return -1;
        }
    }
    return 0;
}

/* columns(plane, starts, weights, out): out[r, j] = sum_k weights[j, k] * plane[r, starts[j] + k].
 * plane: 2-D uint8, rows may be padded (the decoder's line size) but pixels are adjacent; weights' rows a multiple
 * of LANES long; out: rows x 64. */
static PyObject *columns(PyObject *self, PyObject *args) {
    Args a = {0};
    PyObject *result = NULL;
    float *row = NULL;
    (void)self;
    if (acquire(args, &a, PyBUF_STRIDED_RO) < 0)
        goto done;
    const Py_buffer *plane = &a.source;
    if (plane->ndim != 2 || !typed(plane, "B", 1) || plane->strides[1] != 1 || plane->strides[0] < plane->shape[1]) {
        PyErr_SetString(PyExc_ValueError, "plane must be a 2-D uint8 array with adjacent pixels");
        goto done;
    }
    Py_ssize_t height = plane->shape[0], width = plane->shape[1];
    if (!typed(&a.out, "f", 4) || a.out.len != height * OUTPUTS * 4) {
        PyErr_SetString(PyExc_ValueError, "out must be rows x 64 float32");
        goto done;
    }
    if (taps_inside(&a, width, LANES, "row") < 0)
        goto done;
    row = malloc((size_t)(width > 0 ? width : 1) * sizeof(float));
    if (!row) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    column_pass((const uint8_t *)plane->buf, height, width, plane->strides[0], (const int32_t *)a.starts.buf,
                (const float *)a.weights.buf, a.taps, (float *)a.out.buf, row);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    free(row);
    release(&a);
    return result;
}

/* rows(partial, starts, weights, out): out[i, c] = sum_k weights[i, k] * partial[starts[i] + k, c].
 * partial: rows x 64 float32, contiguous (what columns() wrote); out: 64 x 64. */
static PyObject *rows(PyObject *self, PyObject *args) {
    Args a = {0};
    PyObject *result = NULL;
    (void)self;
    if (acquire(args, &a, PyBUF_C_CONTIGUOUS) < 0)
        goto done;
    if (!typed(&a.source, "f", 4) || a.source.len % (OUTPUTS * 4)) {
        PyErr_SetString(PyExc_ValueError, "partial must be rows x 64 float32");
        goto done;
    }
    if (!typed(&a.out, "f", 4) || a.out.len != OUTPUTS * OUTPUTS * 4) {
        PyErr_SetString(PyExc_ValueError, "out must be 64 x 64 float32");
        goto done;
    }
    if (taps_inside(&a, a.source.len / (OUTPUTS * 4), 1, "column") < 0)
        goto done;
    Py_BEGIN_ALLOW_THREADS
    row_pass((const float *)a.source.buf, (const int32_t *)a.starts.buf, (const float *)a.weights.buf, a.taps,
             (float *)a.out.buf);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    release(&a);
    return result;
}

static PyMethodDef methods[] = {
    {"columns", columns, METH_VARARGS, "PDQ's column pass over an 8-bit plane (see the file's comment)."},
    {"rows", rows, METH_VARARGS, "PDQ's row pass over the column pass's output (see the file's comment)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pdq_frame", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pdq_frame(void) { return PyModule_Create(&module); }
