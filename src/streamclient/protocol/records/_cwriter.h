/* The C RecordWriter's layout and encoding, shared with the producer's fast path
 * (streamclient/producer/_cfast.c), which appends to a writer without a Python call.
 * Everything here mirrors streamclient/protocol/records/writer.py exactly. */
#ifndef STREAMCLIENT_CWRITER_H
#define STREAMCLIENT_CWRITER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define SC_HEADER_SIZE 61
#define SC_NO_TIMESTAMP (-1LL)
#define SC_TIMESTAMP_LIMIT (1LL << 62)
#define SC_CAPSULE_NAME "streamclient.protocol.records._cwriter.C_API"

typedef struct {
    PyObject_HEAD
    PyObject *buf;   /* bytearray: reserved header, then the records */
    PyObject *built; /* set once built; appends fail after that */
    Py_ssize_t count;
    double factor;
    long long first_ts;
    long long max_ts;
    Py_ssize_t appended_size;
    Py_ssize_t batch_size;
} SCRecordWriter;

typedef struct {
    PyTypeObject *writer_type;
} SCWriterCAPI;

static inline uint64_t sc_zigzag(int64_t n) {
    return ((uint64_t)n << 1) ^ (uint64_t)(n >> 63);
}

static inline int sc_uvarint_size(uint64_t v) {
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline unsigned char *sc_put_uvarint(unsigned char *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (unsigned char)((v & 0x7f) | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

/* One record, measured before it is written (nothing in the writer changes). */
typedef struct {
    int64_t timestamp;
    uint64_t ts_delta_zz;
    uint64_t key_len_zz;
    uint64_t value_len_zz;
    Py_ssize_t body;     /* bytes after the length prefix */
    Py_ssize_t total;    /* length prefix + body */
    Py_ssize_t size;     /* the writer's estimated size once appended */
} SCRecordPlan;

/* Plan a record with a key of klen bytes (-1: null), a value of vlen bytes (-1: null) and
 * headers already encoded (hlen bytes; 1 for the empty section). */
static inline void sc_plan(const SCRecordWriter *w, int64_t timestamp, Py_ssize_t klen,
                           Py_ssize_t vlen, Py_ssize_t hlen, SCRecordPlan *plan) {
    Py_ssize_t count = w->count;
    Py_ssize_t body = 1; /* attributes */
    plan->timestamp = timestamp;
    if (count) {
        plan->ts_delta_zz = sc_zigzag(timestamp - w->first_ts);
        body += sc_uvarint_size(plan->ts_delta_zz);
        body += sc_uvarint_size(sc_zigzag(count));
    } else {
        plan->ts_delta_zz = 0;
        body += 2;
    }
    plan->key_len_zz = sc_zigzag(klen);
    body += sc_uvarint_size(plan->key_len_zz) + (klen > 0 ? klen : 0);
    plan->value_len_zz = sc_zigzag(vlen);
    body += sc_uvarint_size(plan->value_len_zz) + (vlen > 0 ? vlen : 0);
    body += hlen;
    plan->body = body;
    plan->total = sc_uvarint_size(sc_zigzag(body)) + body;
    Py_ssize_t size = PyByteArray_GET_SIZE(w->buf) + plan->total;
    if (w->factor != 1.0) {
        size = SC_HEADER_SIZE + (Py_ssize_t)((double)(size - SC_HEADER_SIZE) * w->factor);
    }
    plan->size = size;
}

/* Write a planned record; returns its offset delta, or -1 with an exception set. */
static inline Py_ssize_t sc_commit(SCRecordWriter *w, const SCRecordPlan *plan,
                                   const char *key, Py_ssize_t klen,
                                   const char *value, Py_ssize_t vlen,
                                   const char *headers, Py_ssize_t hlen) {
    PyObject *buf = w->buf;
    Py_ssize_t at = PyByteArray_GET_SIZE(buf);
    if (PyByteArray_Resize(buf, at + plan->total) < 0) {
        return -1;
    }
    unsigned char *p = (unsigned char *)PyByteArray_AS_STRING(buf) + at;
    Py_ssize_t count = w->count;
    p = sc_put_uvarint(p, sc_zigzag(plan->body));
    *p++ = 0; /* attributes */
    if (count) {
        p = sc_put_uvarint(p, plan->ts_delta_zz);
        p = sc_put_uvarint(p, sc_zigzag(count));
    } else {
        *p++ = 0;
        *p++ = 0;
        w->first_ts = plan->timestamp;
    }
    p = sc_put_uvarint(p, plan->key_len_zz);
    if (klen > 0) {
        memcpy(p, key, (size_t)klen);
        p += klen;
    }
    p = sc_put_uvarint(p, plan->value_len_zz);
    if (vlen > 0) {
        memcpy(p, value, (size_t)vlen);
        p += vlen;
    }
    memcpy(p, headers, (size_t)hlen);
    w->appended_size = plan->size;
    w->count = count + 1;
    if (plan->timestamp > w->max_ts) {
        w->max_ts = plan->timestamp;
    }
    return count;
}

#endif
