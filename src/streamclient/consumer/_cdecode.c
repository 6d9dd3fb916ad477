/* decode_consumer_records (streamclient/consumer/records.py) in C, with the same contract:
 * the ConsumerRecords of a well-formed records section, or None for anything else, so that
 * the general reader raises the precise error.  It declines (None) at least wherever the
 * Python version does; the tests compare the two on valid and corrupted sections. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>

enum { F_TOPIC, F_PARTITION, F_OFFSET, F_TIMESTAMP, F_TIMESTAMP_TYPE, F_KEY, F_VALUE,
       F_CHECKSUM, F_KEY_SIZE, F_VALUE_SIZE, F_HEADERS, N_FIELDS };

static const char *const field_names[N_FIELDS] = {
    "topic", "partition", "offset", "timestamp", "timestamp_type", "key", "value",
    "checksum", "serialized_key_size", "serialized_value_size", "headers"};

/* The record class's slot offsets, looked up once per class. */
static PyTypeObject *cached_cls;
static Py_ssize_t offsets[N_FIELDS];

static int load_offsets(PyTypeObject *cls) {
    if (cls == cached_cls) {
        return 0;
    }
    for (int f = 0; f < N_FIELDS; f++) {
        PyObject *descr = PyObject_GetAttrString((PyObject *)cls, field_names[f]);
        if (descr == NULL) {
            return -1;
        }
        int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type)
                 && ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX
                 && !(((PyMemberDescrObject *)descr)->d_member->flags & READONLY);
        if (ok) {
            offsets[f] = ((PyMemberDescrObject *)descr)->d_member->offset;
        }
        Py_DECREF(descr);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "%s.%s is not a writable slot", cls->tp_name,
                         field_names[f]);
            return -1;
        }
    }
    Py_XSETREF(cached_cls, (PyTypeObject *)Py_NewRef(cls));
    return 0;
}

/* An unsigned varint of at most 64 bits; 0 on success, -1 when malformed or too long. */
static inline int read_uvarint(const unsigned char *p, Py_ssize_t end, Py_ssize_t *pos,
                               uint64_t *out) {
    uint64_t value = 0;
    int shift = 0;
    Py_ssize_t i = *pos;
    while (1) {
        if (i >= end || shift > 63) {
            return -1;
        }
        unsigned char b = p[i++];
        if (shift == 63 && (b & 0x7e)) {
            return -1; /* more than 64 bits: the Python path decides */
        }
        value |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            break;
        }
        shift += 7;
    }
    *pos = i;
    *out = value;
    return 0;
}

static inline int read_varint(const unsigned char *p, Py_ssize_t end, Py_ssize_t *pos,
                              int64_t *out) {
    uint64_t u;
    if (read_uvarint(p, end, pos, &u) < 0) {
        return -1;
    }
    *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return 0;
}

static inline void set_field(PyObject *obj, int f, PyObject *value) {
    PyObject **slot = (PyObject **)((char *)obj + offsets[f]);
    PyObject *old = *slot;
    *slot = value; /* steals the reference */
    Py_XDECREF(old);
}

/* ConsumerRecord, decode_headers and EMPTY_HEADERS, the defaults of the last three
 * arguments, imported at first use (the modules import this one) */
static PyObject *default_args[3];

static int load_defaults(void) {
    if (default_args[0] != NULL) {
        return 0;
    }
    PyObject *structs = PyImport_ImportModule("streamclient.structs");
    PyObject *batch = PyImport_ImportModule("streamclient.protocol.records.batch");
    if (structs != NULL && batch != NULL) {
        default_args[0] = PyObject_GetAttrString(structs, "ConsumerRecord");
        default_args[1] = PyObject_GetAttrString(batch, "decode_headers");
        default_args[2] = PyObject_GetAttrString(batch, "EMPTY_HEADERS");
    }
    Py_XDECREF(structs);
    Py_XDECREF(batch);
    if (default_args[0] == NULL || default_args[1] == NULL || default_args[2] == NULL) {
        Py_CLEAR(default_args[0]);
        Py_CLEAR(default_args[1]);
        Py_CLEAR(default_args[2]);
        return -1;
    }
    return 0;
}

/* decode_consumer_records(data, count, base_offset, base_timestamp, topic, partition,
 *                         timestamp_type[, record_cls, decode_headers, empty_headers]) */
static PyObject *decode(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7 && nargs != 10) {
        PyErr_SetString(PyExc_TypeError,
                        "decode_consumer_records() takes 7 arguments (or 10)");
        return NULL;
    }
    PyObject *extra[3];
    if (nargs == 7) {
        if (load_defaults() < 0) {
            return NULL;
        }
        extra[0] = default_args[0];
        extra[1] = default_args[1];
        extra[2] = default_args[2];
    } else {
        extra[0] = args[7];
        extra[1] = args[8];
        extra[2] = args[9];
    }
    Py_ssize_t count = PyLong_AsSsize_t(args[1]);
    long long base_offset = PyLong_AsLongLong(args[2]);
    long long base_timestamp = PyLong_AsLongLong(args[3]);
    if (PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        return NULL;
    }
    PyObject *topic = args[4], *partition = args[5], *timestamp_type = args[6];
    PyObject *cls = extra[0], *headers_decoder = extra[1], *empty_headers = extra[2];
    if (!PyType_Check(cls) || load_offsets((PyTypeObject *)cls) < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)view.buf;
    Py_ssize_t size = view.len;
    PyObject *out = NULL;
    if (count < 0 || count > size / 7) {
        goto decline; /* a record takes 7 bytes at least: the count is corrupt */
    }
    out = PyList_New(count);
    if (out == NULL) {
        goto fail;
    }
    Py_ssize_t pos = 0;
    int64_t last_delta = -1;
    for (Py_ssize_t n = 0; n < count; n++) {
        int64_t length, ts_delta, offset_delta, key_size, value_size;
        if (read_varint(data, size, &pos, &length) < 0 || length < 1
                || length > size - pos) {
            goto decline;
        }
        const unsigned char *rec = data + pos;
        Py_ssize_t end = (Py_ssize_t)length;
        pos += end;
        Py_ssize_t i = 1; /* rec[0]: the record's attributes, unused by Kafka so far */
        if (read_varint(rec, end, &i, &ts_delta) < 0
                || read_varint(rec, end, &i, &offset_delta) < 0
                || offset_delta <= last_delta) {
            goto decline; /* offsets must rise: the general reader copes with the rest */
        }
        last_delta = offset_delta;
        int64_t offset, timestamp;
        if (__builtin_add_overflow(base_offset, offset_delta, &offset)
                || __builtin_add_overflow(base_timestamp, ts_delta, &timestamp)) {
            goto decline;
        }
        const unsigned char *key = NULL, *value = NULL;
        if (read_varint(rec, end, &i, &key_size) < 0) {
            goto decline;
        }
        if (key_size < 0) {
            key_size = -1;
        } else {
            if (key_size > end - i) {
                goto decline;
            }
            key = rec + i;
            i += (Py_ssize_t)key_size;
        }
        if (read_varint(rec, end, &i, &value_size) < 0) {
            goto decline;
        }
        if (value_size < 0) {
            value_size = -1;
        } else {
            if (value_size > end - i) {
                goto decline;
            }
            value = rec + i;
            i += (Py_ssize_t)value_size;
        }
        if (i >= end) {
            goto decline;
        }
        PyObject *headers;
        if (rec[i] == 0) {
            headers = Py_NewRef(empty_headers);
            i += 1;
        } else {
            /* headers are rare: the Python decoder reads them from the record's bytes */
            PyObject *record_bytes = PyBytes_FromStringAndSize((const char *)rec, end);
            if (record_bytes == NULL) {
                goto fail;
            }
            PyObject *start = PyLong_FromSsize_t(i);
            PyObject *stop = PyLong_FromSsize_t(end);
            PyObject *result = NULL;
            if (start != NULL && stop != NULL) {
                PyObject *argv[3] = {record_bytes, start, stop};
                result = PyObject_Vectorcall(headers_decoder, argv, 3, NULL);
            }
            Py_DECREF(record_bytes);
            Py_XDECREF(start);
            Py_XDECREF(stop);
            if (result == NULL) {
                /* a malformed header (CorruptRecordException and the like): decline */
                if (PyErr_ExceptionMatches(PyExc_Exception)) {
                    PyErr_Clear();
                    goto decline;
                }
                goto fail;
            }
            Py_ssize_t after = -1;
            if (PyTuple_Check(result) && PyTuple_GET_SIZE(result) == 2) {
                headers = Py_NewRef(PyTuple_GET_ITEM(result, 0));
                after = PyLong_AsSsize_t(PyTuple_GET_ITEM(result, 1));
            } else {
                headers = NULL;
            }
            Py_DECREF(result);
            if (headers == NULL || after < 0) {
                Py_XDECREF(headers);
                if (PyErr_Occurred()) {
                    goto fail;
                }
                goto decline;
            }
            i = after;
        }
        if (i != end) {
            Py_DECREF(headers);
            goto decline; /* the fields do not end where the record does */
        }
        PyTypeObject *type = (PyTypeObject *)cls;
        PyObject *record = type->tp_alloc(type, 0);
        if (record == NULL) {
            Py_DECREF(headers);
            goto fail;
        }
        PyList_SET_ITEM(out, n, record);
        set_field(record, F_HEADERS, headers);
        set_field(record, F_TOPIC, Py_NewRef(topic));
        set_field(record, F_PARTITION, Py_NewRef(partition));
        set_field(record, F_TIMESTAMP_TYPE, Py_NewRef(timestamp_type));
        set_field(record, F_CHECKSUM, Py_NewRef(Py_None));
        PyObject *values[6] = {
            PyLong_FromLongLong(offset),
            PyLong_FromLongLong(timestamp),
            key == NULL ? Py_NewRef(Py_None)
                        : PyBytes_FromStringAndSize((const char *)key, (Py_ssize_t)key_size),
            value == NULL ? Py_NewRef(Py_None)
                          : PyBytes_FromStringAndSize((const char *)value,
                                                      (Py_ssize_t)value_size),
            PyLong_FromLongLong(key_size),
            PyLong_FromLongLong(value_size),
        };
        static const int targets[6] = {F_OFFSET, F_TIMESTAMP, F_KEY, F_VALUE, F_KEY_SIZE,
                                       F_VALUE_SIZE};
        int failed = 0;
        for (int k = 0; k < 6; k++) {
            if (values[k] == NULL) {
                failed = 1;
            } else {
                set_field(record, targets[k], values[k]);
            }
        }
        if (failed) {
            goto fail;
        }
        /* Left to reference counting alone: a fetcher holds thousands of records at a
         * time, and the collector walking them again and again cost more than decoding
         * them.  A record refers to a str, ints, bytes and tuples of those (a
         * deserializer's value later, which cannot refer back to the record), so it is
         * in no cycle the collector would have to break. */
        if (PyObject_GC_IsTracked(record)) {
            PyObject_GC_UnTrack(record);
        }
    }
    if (pos != size) {
        goto decline; /* bytes left over */
    }
    PyBuffer_Release(&view);
    return out;
decline:
    PyBuffer_Release(&view);
    Py_XDECREF(out);
    Py_RETURN_NONE;
fail:
    PyBuffer_Release(&view);
    Py_XDECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"decode_consumer_records", (PyCFunction)(void (*)(void))decode, METH_FASTCALL,
     "ConsumerRecords from a records section, or None when it is not well formed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cdecode", "The consumer's record decoding in C (see records.py).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__cdecode(void) {
    return PyModule_Create(&module);
}
