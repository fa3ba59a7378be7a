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

/* columns(plane, starts, weights, out): out[r, j] = sum_k weights[j, k] * plane[r, starts[j] + k].
 * plane: 2-D uint8, rows may be padded (the decoder's line size) but pixels are adjacent; starts: 64 int32;
 * weights: 64 x taps float32, contiguous, taps a positive multiple of LANES; out: rows x 64 float32, contiguous. */
static PyObject *columns(PyObject *self, PyObject *args) {
    PyObject *plane_obj, *starts_obj, *weights_obj, *out_obj;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOO", &plane_obj, &starts_obj, &weights_obj, &out_obj))
        return NULL;
    Py_buffer plane = {0}, starts = {0}, weights = {0}, out = {0};
    PyObject *result = NULL;
    float *row = NULL;
    if (PyObject_GetBuffer(plane_obj, &plane, PyBUF_STRIDED_RO | PyBUF_FORMAT) < 0)
        goto done;
    if (PyObject_GetBuffer(starts_obj, &starts, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        goto done;
    if (PyObject_GetBuffer(weights_obj, &weights, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        goto done;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0)
        goto done;
    if (plane.ndim != 2 || !typed(&plane, "B", 1) || plane.strides[1] != 1 || plane.strides[0] < plane.shape[1]) {
        PyErr_SetString(PyExc_ValueError, "plane must be a 2-D uint8 array with adjacent pixels");
        goto done;
    }
    Py_ssize_t rows = plane.shape[0], width = plane.shape[1];
    if (!typed(&starts, "i", 4) || starts.len != OUTPUTS * 4) {
        PyErr_SetString(PyExc_ValueError, "starts must be 64 int32");
        goto done;
    }
    Py_ssize_t taps = weights.len / (OUTPUTS * 4);
    if (!typed(&weights, "f", 4) || taps <= 0 || taps % LANES || weights.len != taps * OUTPUTS * 4) {
        PyErr_SetString(PyExc_ValueError, "weights must be 64 rows of a positive multiple of 8 float32");
        goto done;
    }
    if (!typed(&out, "f", 4) || out.len != rows * OUTPUTS * 4) {
        PyErr_SetString(PyExc_ValueError, "out must be rows x 64 float32");
        goto done;
    }
    const int32_t *first = (const int32_t *)starts.buf;
    for (int j = 0; j < OUTPUTS; j++) {
        if (first[j] < 0 || first[j] + taps > width) {
            PyErr_SetString(PyExc_ValueError, "an output's taps reach outside the row");
            goto done;
        }
    }
    row = malloc((size_t)(width > 0 ? width : 1) * sizeof(float));
    if (!row) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    column_pass((const uint8_t *)plane.buf, rows, width, plane.strides[0], first, (const float *)weights.buf, taps,
                (float *)out.buf, row);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    free(row);
    if (plane.obj)
        PyBuffer_Release(&plane);
    if (starts.obj)
        PyBuffer_Release(&starts);
    if (weights.obj)
        PyBuffer_Release(&weights);
    if (out.obj)
        PyBuffer_Release(&out);
    return result;
}

/* rows(partial, starts, weights, out): out[i, c] = sum_k weights[i, k] * partial[starts[i] + k, c].
 * partial: rows x 64 float32, contiguous (what columns() wrote); starts: 64 int32; weights: 64 x taps float32,
 * contiguous; out: 64 x 64 float32, contiguous. */
static PyObject *rows(PyObject *self, PyObject *args) {
    PyObject *partial_obj, *starts_obj, *weights_obj, *out_obj;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOO", &partial_obj, &starts_obj, &weights_obj, &out_obj))
        return NULL;
    Py_buffer partial = {0}, starts = {0}, weights = {0}, out = {0};
    PyObject *result = NULL;
    if (PyObject_GetBuffer(partial_obj, &partial, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        goto done;
    if (PyObject_GetBuffer(starts_obj, &starts, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        goto done;
    if (PyObject_GetBuffer(weights_obj, &weights, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        goto done;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0)
        goto done;
    if (!typed(&partial, "f", 4) || partial.len % (OUTPUTS * 4)) {
        PyErr_SetString(PyExc_ValueError, "partial must be rows x 64 float32");
        goto done;
    }
    Py_ssize_t count = partial.len / (OUTPUTS * 4);
    if (!typed(&starts, "i", 4) || starts.len != OUTPUTS * 4) {
        PyErr_SetString(PyExc_ValueError, "starts must be 64 int32");
        goto done;
    }
    Py_ssize_t taps = weights.len / (OUTPUTS * 4);
    if (!typed(&weights, "f", 4) || taps <= 0 || weights.len != taps * OUTPUTS * 4) {
        PyErr_SetString(PyExc_ValueError, "weights must be 64 rows of float32");
        goto done;
    }
    if (!typed(&out, "f", 4) || out.len != OUTPUTS * OUTPUTS * 4) {
        PyErr_SetString(PyExc_ValueError, "out must be 64 x 64 float32");
        goto done;
    }
    const int32_t *first = (const int32_t *)starts.buf;
    for (int i = 0; i < OUTPUTS; i++) {
        if (first[i] < 0 || first[i] + taps > count) {
            PyErr_SetString(PyExc_ValueError, "an output's taps reach outside the column");
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    row_pass((const float *)partial.buf, first, (const float *)weights.buf, taps, (float *)out.buf);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    if (partial.obj)
        PyBuffer_Release(&partial);
    if (starts.obj)
        PyBuffer_Release(&starts);
    if (weights.obj)
        PyBuffer_Release(&weights);
    if (out.obj)
        PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"columns", columns, METH_VARARGS, "PDQ's column pass over an 8-bit plane (see the file's comment)."},
    {"rows", rows, METH_VARARGS, "PDQ's row pass over the column pass's output (see the file's comment)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pdq_frame", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pdq_frame(void) { return PyModule_Create(&module); }
