/* RecordWriter in C: streamclient/protocol/records/writer.py, field for field and byte for
 * byte (the tests compare the two).  It exists because encoding a record is most of what
 * a producer spends per record in Python. */
#include "_cwriter.h"
#include <structmember.h>

static PyObject *IllegalArgumentError;
static PyObject *IllegalStateError;
static PyObject *encode_headers; /* writer.encode_headers: headers are rare, Python does them */

static PyObject *Writer_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    SCRecordWriter *self = (SCRecordWriter *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->buf = PyByteArray_FromStringAndSize(NULL, SC_HEADER_SIZE);
    if (self->buf == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    memset(PyByteArray_AS_STRING(self->buf), 0, SC_HEADER_SIZE);
    self->built = NULL;
    self->count = 0;
    self->factor = 1.0;
    self->first_ts = SC_NO_TIMESTAMP;
    self->max_ts = SC_NO_TIMESTAMP;
    self->appended_size = SC_HEADER_SIZE;
    self->batch_size = 16384;
    return (PyObject *)self;
}

static int Writer_init(SCRecordWriter *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"batch_size", "factor", NULL};
    Py_ssize_t batch_size;
    double factor = 1.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n|d:RecordWriter", names, &batch_size,
                                     &factor)) {
        return -1;
    }
    PyObject *buf = PyByteArray_FromStringAndSize(NULL, SC_HEADER_SIZE);
    if (buf == NULL) {
        return -1;
    }
    memset(PyByteArray_AS_STRING(buf), 0, SC_HEADER_SIZE);
    Py_XSETREF(self->buf, buf);
    Py_CLEAR(self->built);
    self->count = 0;
    self->factor = factor;
    self->first_ts = SC_NO_TIMESTAMP;
    self->max_ts = SC_NO_TIMESTAMP;
    self->appended_size = SC_HEADER_SIZE;
    self->batch_size = batch_size;
    return 0;
}

static void Writer_dealloc(SCRecordWriter *self) {
    Py_CLEAR(self->buf);
    Py_CLEAR(self->built);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A key or value as bytes: exact bytes without a copy, other bytes-likes through the
 * buffer protocol.  Returns 0, or -1 with IllegalArgumentError set. */
static int get_bytes(PyObject *obj, Py_buffer *view, const char **data, Py_ssize_t *len) {
    view->obj = NULL;
    if (obj == Py_None) {
        *data = NULL;
        *len = -1;
        return 0;
    }
    if (PyBytes_CheckExact(obj)) {
        *data = PyBytes_AS_STRING(obj);
        *len = PyBytes_GET_SIZE(obj);
        return 0;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        view->obj = NULL;
        PyErr_SetString(IllegalArgumentError, "key and value must be bytes-like or None");
        return -1;
    }
    *data = (const char *)view->buf;
    *len = view->len;
    return 0;
}

static int parse_timestamp(PyObject *obj, int64_t *out) {
    if (obj == Py_None) {
        *out = SC_NO_TIMESTAMP;
        return 0;
    }
    int overflow = 0;
    long long ts = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (ts == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow > 0 || ts >= SC_TIMESTAMP_LIMIT) {
        PyObject *text = PyObject_Str(obj);
        if (text != NULL) {
            PyErr_Format(IllegalArgumentError, "timestamp %U is out of range", text);
            Py_DECREF(text);
        }
        return -1;
    }
    if (overflow < 0 || (ts < 0 && ts != SC_NO_TIMESTAMP)) {
        PyObject *text = PyObject_Str(obj);
        if (text != NULL) {
            PyErr_Format(IllegalArgumentError, "invalid negative timestamp %U", text);
            Py_DECREF(text);
        }
        return -1;
    }
    *out = ts;
    return 0;
}

/* Plan the record, write it if it fits, and release the key's and value's buffers.
 * below=0: it fits when the writer is empty or its size stays within limit (append);
 * below=1: only when its size stays below limit (append_below).  Returns the offset
 * delta, None when it does not fit, or NULL with an exception set. */
static PyObject *write_if_fits(SCRecordWriter *self, int64_t timestamp, PyObject *key,
                               PyObject *value, const char *hdata, Py_ssize_t hlen,
                               Py_ssize_t limit, int below) {
    Py_buffer kview, vview;
    const char *kdata, *vdata;
    Py_ssize_t klen, vlen;
    PyObject *result = NULL;
    if (get_bytes(key, &kview, &kdata, &klen) < 0) {
        return NULL;
    }
    if (get_bytes(value, &vview, &vdata, &vlen) < 0) {
        goto done_key;
    }
    SCRecordPlan plan;
    sc_plan(self, timestamp, klen, vlen, hlen, &plan);
    int fits = below ? plan.size < limit : (!self->count || plan.size <= limit);
    if (!fits) {
        result = Py_NewRef(Py_None);
    } else {
        Py_ssize_t delta = sc_commit(self, &plan, kdata, klen, vdata, vlen, hdata, hlen);
        if (delta >= 0) {
            result = PyLong_FromSsize_t(delta);
        }
    }
    if (vview.obj != NULL) {
        PyBuffer_Release(&vview);
    }
done_key:
    if (kview.obj != NULL) {
        PyBuffer_Release(&kview);
    }
    return result;
}

static PyObject *Writer_append(SCRecordWriter *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames) {
    static const char *const names[] = {"timestamp_ms", "key", "value", "headers"};
    PyObject *argv[4] = {NULL, NULL, NULL, NULL};
    if (nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "append() takes at most 4 arguments");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        argv[i] = args[i];
    }
    if (kwnames != NULL) {
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kwnames); k++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, k);
            int slot = -1;
            for (int j = 0; j < 4; j++) {
                if (PyUnicode_CompareWithASCIIString(name, names[j]) == 0) {
                    slot = j;
                    break;
                }
            }
            if (slot < 0 || argv[slot] != NULL) {
                PyErr_Format(PyExc_TypeError, "append() got an unexpected or repeated "
                             "keyword argument %R", name);
                return NULL;
            }
            argv[slot] = args[nargs + k];
        }
    }
    if (argv[0] == NULL || argv[1] == NULL || argv[2] == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "append() needs timestamp_ms, key and value");
        return NULL;
    }
    if (self->built != NULL && self->built != Py_None) {
        PyErr_SetString(IllegalStateError, "append() after build()");
        return NULL;
    }
    if (!PyByteArray_Check(self->buf)) {
        PyErr_SetString(PyExc_TypeError, "RecordWriter._buf must be a bytearray");
        return NULL;
    }
    int64_t timestamp;
    if (parse_timestamp(argv[0], &timestamp) < 0) {
        return NULL;
    }
    PyObject *encoded_headers = NULL;
    const char *hdata = "\x00";
    Py_ssize_t hlen = 1;
    PyObject *headers = argv[3];
    if (headers != NULL && headers != Py_None) {
        int truth = PyObject_IsTrue(headers);
        if (truth < 0) {
            return NULL;
        }
        if (truth) {
            encoded_headers = PyObject_CallOneArg(encode_headers, headers);
            if (encoded_headers == NULL) {
                return NULL;
            }
            if (!PyBytes_Check(encoded_headers)) {
                Py_DECREF(encoded_headers);
                PyErr_SetString(PyExc_TypeError, "encode_headers() must return bytes");
                return NULL;
            }
            hdata = PyBytes_AS_STRING(encoded_headers);
            hlen = PyBytes_GET_SIZE(encoded_headers);
        }
    }
    PyObject *result = write_if_fits(self, timestamp, argv[1], argv[2], hdata, hlen,
                                     self->batch_size, 0);
    Py_XDECREF(encoded_headers);
    return result;
}

static PyObject *Writer_append_below(SCRecordWriter *self, PyObject *const *args,
                                     Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "append_below() takes limit, timestamp_ms, key and value");
        return NULL;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(args[0]);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (!self->count || (self->built != NULL && self->built != Py_None)
            || !PyByteArray_Check(self->buf)) {
        Py_RETURN_NONE;
    }
    int64_t timestamp;
    if (args[1] == Py_None) {
        PyErr_SetString(IllegalArgumentError, "append_below() needs a timestamp");
        return NULL;
    }
    if (parse_timestamp(args[1], &timestamp) < 0) {
        return NULL;
    }
    if (args[3] == Py_None) {
        PyErr_SetString(IllegalArgumentError, "append_below() needs a value");
        return NULL;
    }
    return write_if_fits(self, timestamp, args[2], args[3], "\x00", 1, limit, 1);
}

static PyMethodDef Writer_methods[] = {
    {"append", (PyCFunction)(void (*)(void))Writer_append, METH_FASTCALL | METH_KEYWORDS,
     "Add one record; return its offset delta, or None when the batch is full."},
    {"append_below", (PyCFunction)(void (*)(void))Writer_append_below, METH_FASTCALL,
     "Append a record with no headers to a non-empty batch if its size stays below limit."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Writer_members[] = {
    {"_buf", T_OBJECT, offsetof(SCRecordWriter, buf), 0, NULL},
    {"_built", T_OBJECT, offsetof(SCRecordWriter, built), 0, NULL},
    {"_count", T_PYSSIZET, offsetof(SCRecordWriter, count), 0, NULL},
    {"_factor", T_DOUBLE, offsetof(SCRecordWriter, factor), 0, NULL},
    {"_first_ts", T_LONGLONG, offsetof(SCRecordWriter, first_ts), 0, NULL},
    {"_max_ts", T_LONGLONG, offsetof(SCRecordWriter, max_ts), 0, NULL},
    {"appended_size", T_PYSSIZET, offsetof(SCRecordWriter, appended_size), 0, NULL},
    {"batch_size", T_PYSSIZET, offsetof(SCRecordWriter, batch_size), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject WriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "streamclient.protocol.records._cwriter.RecordWriter",
    .tp_basicsize = sizeof(SCRecordWriter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The records section of a magic-2 batch, appended one record at a time.",
    .tp_new = Writer_new,
    .tp_init = (initproc)Writer_init,
    .tp_dealloc = (destructor)Writer_dealloc,
    .tp_methods = Writer_methods,
    .tp_members = Writer_members,
};

static SCWriterCAPI capi;

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cwriter", "RecordWriter in C (see writer.py).", -1, NULL,
};

PyMODINIT_FUNC PyInit__cwriter(void) {
    PyObject *errors = PyImport_ImportModule("streamclient.errors");
    if (errors == NULL) {
        return NULL;
    }
    IllegalArgumentError = PyObject_GetAttrString(errors, "IllegalArgumentError");
    IllegalStateError = PyObject_GetAttrString(errors, "IllegalStateError");
    Py_DECREF(errors);
    if (IllegalArgumentError == NULL || IllegalStateError == NULL) {
        return NULL;
    }
    PyObject *writer = PyImport_ImportModule("streamclient.protocol.records.writer");
    if (writer == NULL) {
        return NULL;
    }
    encode_headers = PyObject_GetAttrString(writer, "encode_headers");
    Py_DECREF(writer);
    if (encode_headers == NULL) {
        return NULL;
    }
    if (PyType_Ready(&WriterType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "RecordWriter", (PyObject *)&WriterType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    capi.writer_type = &WriterType;
    PyObject *capsule = PyCapsule_New(&capi, SC_CAPSULE_NAME, NULL);
    if (capsule == NULL || PyModule_AddObject(m, "C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
