/* streamclient/producer/fastpath.py in C: HandleFields and FastAppender, with the same
 * behaviour (the tests hold the two to the same results).  The point is one C call per
 * record for send()'s common case, where Python spends a few microseconds. */
#include "../protocol/records/_cwriter.h"
#include <structmember.h>
#include <time.h>

static PyTypeObject *WriterType; /* from _cwriter's capsule */

/* --- HandleFields ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *callbacks;
    PyObject *next;
    PyObject *result;
    PyObject *relative_offset;
    PyObject *timestamp;
    PyObject *key_size;
    PyObject *value_size;
} HandleFields;

static int Handle_init(HandleFields *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"result", "relative_offset", "timestamp", "serialized_key_size",
                            "serialized_value_size", NULL};
    PyObject *result, *offset, *timestamp, *ks, *vs;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOO:HandleFields", names, &result,
                                     &offset, &timestamp, &ks, &vs)) {
        return -1;
    }
    Py_XSETREF(self->result, Py_NewRef(result));
    Py_XSETREF(self->relative_offset, Py_NewRef(offset));
    Py_XSETREF(self->timestamp, Py_NewRef(timestamp));
    Py_XSETREF(self->key_size, Py_NewRef(ks));
    Py_XSETREF(self->value_size, Py_NewRef(vs));
    Py_CLEAR(self->next);
    Py_CLEAR(self->callbacks);
    return 0;
}

static void Handle_dealloc(HandleFields *self) {
    Py_CLEAR(self->callbacks);
    Py_CLEAR(self->next);
    Py_CLEAR(self->result);
    Py_CLEAR(self->relative_offset);
    Py_CLEAR(self->timestamp);
    Py_CLEAR(self->key_size);
    Py_CLEAR(self->value_size);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef Handle_members[] = {
    {"_callbacks", T_OBJECT, offsetof(HandleFields, callbacks), 0, NULL},
    {"_next", T_OBJECT, offsetof(HandleFields, next), 0, NULL},
    {"_result", T_OBJECT, offsetof(HandleFields, result), 0, NULL},
    {"relative_offset", T_OBJECT, offsetof(HandleFields, relative_offset), 0, NULL},
    {"timestamp", T_OBJECT, offsetof(HandleFields, timestamp), 0, NULL},
    {"serialized_key_size", T_OBJECT, offsetof(HandleFields, key_size), 0, NULL},
    {"serialized_value_size", T_OBJECT, offsetof(HandleFields, value_size), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject HandleType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "streamclient.producer._cfastpath.HandleFields",
    .tp_basicsize = sizeof(HandleFields),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The per-record handle's state (base of FutureRecordMetadata).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Handle_init,
    .tp_dealloc = (destructor)Handle_dealloc,
    .tp_members = Handle_members,
};

/* --- FastAppender ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *topics; /* dict: the accumulator's {topic: _TopicInfo} */
    PyObject *view;   /* MetadataView or None */
    Py_ssize_t max_record_size;
    char enabled;
} FastAppender;

static PyObject *s_partitioner, *s_info, *s_batches, *s_index, *s_closed, *s_builder,
    *s_produced_bytes, *s_sticky_batch_size, *s_batch_size, *s_handle_class, *s_result,
    *s_handles, *s_topics;

static int Appender_init(FastAppender *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"topics", "view", "max_record_size", NULL};
    PyObject *topics, *view = Py_None;
    Py_ssize_t max_record_size = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!|On:FastAppender", names, &PyDict_Type,
                                     &topics, &view, &max_record_size)) {
        return -1;
    }
    Py_XSETREF(self->topics, Py_NewRef(topics));
    Py_XSETREF(self->view, Py_NewRef(view));
    self->max_record_size = max_record_size;
    self->enabled = 1;
    return 0;
}

static int Appender_traverse(FastAppender *self, visitproc visit, void *arg) {
    Py_VISIT(self->topics);
    Py_VISIT(self->view);
    return 0;
}

static int Appender_clear(FastAppender *self) {
    Py_CLEAR(self->topics);
    Py_CLEAR(self->view);
    return 0;
}

static void Appender_dealloc(FastAppender *self) {
    PyObject_GC_UnTrack(self);
    Appender_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* New reference to obj.name, or NULL with no exception set for "decline" cases too. */
static inline PyObject *get(PyObject *obj, PyObject *name) {
    return PyObject_GetAttr(obj, name);
}

static PyObject *make_handle(PyObject *cls, PyObject *result, Py_ssize_t delta,
                             long long timestamp, Py_ssize_t klen, Py_ssize_t vlen) {
    PyObject *offset = PyLong_FromSsize_t(delta);
    PyObject *ts = PyLong_FromLongLong(timestamp);
    PyObject *ks = PyLong_FromSsize_t(klen);
    PyObject *vs = PyLong_FromSsize_t(vlen);
    PyObject *handle = NULL;
    if (offset == NULL || ts == NULL || ks == NULL || vs == NULL) {
        goto done;
    }
    if (PyType_Check(cls) && ((PyTypeObject *)cls)->tp_init == (initproc)Handle_init
            && PyType_IsSubtype((PyTypeObject *)cls, &HandleType)) {
        /* the class adds no __init__: fill the fields without a Python call */
        PyTypeObject *type = (PyTypeObject *)cls;
        HandleFields *h = (HandleFields *)type->tp_alloc(type, 0);
        if (h != NULL) {
            /* Untracked by the garbage collector, which would otherwise walk every
             * pending handle again and again while a producer holds hundreds of
             * thousands (every Python class is collectable).  A handle can only be in a
             * cycle through its callbacks, and they are dropped once they have run. */
            if (PyType_IS_GC(type)) {
                PyObject_GC_UnTrack(h);
            }
            h->result = Py_NewRef(result);
            h->relative_offset = offset;
            h->timestamp = ts;
            h->key_size = ks;
            h->value_size = vs;
            return (PyObject *)h;
        }
    } else {
        PyObject *argv[5] = {result, offset, ts, ks, vs};
        handle = PyObject_Vectorcall(cls, argv, 5, NULL);
    }
done:
    Py_XDECREF(offset);
    Py_XDECREF(ts);
    Py_XDECREF(ks);
    Py_XDECREF(vs);
    return handle;
}

/* append(topic, timestamp_ms, key, value, woken) -> handle or None */
static PyObject *Appender_append(FastAppender *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "append() takes topic, timestamp_ms, key, value and woken");
        return NULL;
    }
    PyObject *topic = args[0], *ts_arg = args[1], *key = args[2], *value = args[3];
    int woken = PyObject_IsTrue(args[4]);
    if (woken < 0) {
        return NULL;
    }
    if (!self->enabled || self->topics == NULL || !PyBytes_CheckExact(value)
            || (key != Py_None && !PyBytes_CheckExact(key))
            || PyBytes_GET_SIZE(value) + (key == Py_None ? 0 : PyBytes_GET_SIZE(key))
                   > self->max_record_size) {
        Py_RETURN_NONE;
    }
    PyObject *ret = NULL;
    PyObject *sticky = NULL, *pinfo = NULL, *batches = NULL, *index = NULL, *batch = NULL;
    PyObject *closed = NULL, *builder = NULL, *produced_obj = NULL, *sticky_size_obj = NULL;
    PyObject *batch_size_obj = NULL, *cls = NULL, *result = NULL, *handles = NULL;
    PyObject *handle = NULL;
    if (self->view != Py_None) {
        PyObject *cached = get(self->view, s_topics);
        if (cached == NULL) {
            return NULL;
        }
        PyObject *parts = PyDict_Check(cached) ? PyDict_GetItemWithError(cached, topic) : NULL;
        Py_DECREF(cached);
        if (parts == NULL || parts == Py_None) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
    }
    PyObject *info = PyDict_GetItemWithError(self->topics, topic); /* borrowed */
    if (info == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    Py_INCREF(info);
    if ((sticky = get(info, s_partitioner)) == NULL || (pinfo = get(sticky, s_info)) == NULL) {
        goto done;
    }
    if (pinfo == Py_None) {
        goto decline;
    }
    if ((batches = get(info, s_batches)) == NULL || (index = get(pinfo, s_index)) == NULL) {
        goto done;
    }
    if (!PyDict_Check(batches)) {
        goto decline;
    }
    PyObject *dq = PyDict_GetItemWithError(batches, index); /* borrowed */
    if (dq == NULL) {
        if (PyErr_Occurred()) {
            goto done;
        }
        goto decline;
    }
    Py_ssize_t queued = PySequence_Size(dq);
    if (queued < 0) {
        goto done;
    }
    if (queued == 0 || (queued > 1 && !woken)) {
        goto decline;
    }
    if ((batch = PySequence_GetItem(dq, queued - 1)) == NULL
            || (closed = get(batch, s_closed)) == NULL) {
        goto done;
    }
    if (closed != Py_False) {
        goto decline;
    }
    if ((builder = get(batch, s_builder)) == NULL) {
        goto done;
    }
    if (!PyObject_TypeCheck(builder, WriterType)) {
        goto decline; /* a pure-Python builder: the Python path serves it */
    }
    SCRecordWriter *w = (SCRecordWriter *)builder;
    if (!w->count || (w->built != NULL && w->built != Py_None) || !PyByteArray_Check(w->buf)) {
        goto decline;
    }
    if ((produced_obj = get(pinfo, s_produced_bytes)) == NULL
            || (sticky_size_obj = get(sticky, s_sticky_batch_size)) == NULL
            || (batch_size_obj = get(batch, s_batch_size)) == NULL) {
        goto done;
    }
    Py_ssize_t produced = PyLong_AsSsize_t(produced_obj);
    Py_ssize_t sticky_size = PyLong_AsSsize_t(sticky_size_obj);
    Py_ssize_t limit = PyLong_AsSsize_t(batch_size_obj);
    if (PyErr_Occurred()) {
        goto done;
    }
    Py_ssize_t before = w->appended_size;
    /* below the batch size (else it is full: the sender must hear of it), and below
     * twice the sticky quota (KIP-794's switch points: see fastpath.py) */
    if (before + 2 * sticky_size - produced < limit) {
        limit = before + 2 * sticky_size - produced;
    }
    long long timestamp;
    if (ts_arg == Py_None) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        timestamp = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    } else {
        int overflow = 0;
        timestamp = PyLong_AsLongLongAndOverflow(ts_arg, &overflow);
        if (timestamp == -1 && PyErr_Occurred()) {
            goto done;
        }
        if (overflow || timestamp < 0 || timestamp >= SC_TIMESTAMP_LIMIT) {
            goto decline; /* the general path raises the right error */
        }
    }
    Py_ssize_t klen = key == Py_None ? -1 : PyBytes_GET_SIZE(key);
    Py_ssize_t vlen = PyBytes_GET_SIZE(value);
    SCRecordPlan plan;
    sc_plan(w, timestamp, klen, vlen, 1, &plan);
    if (plan.size >= limit) {
        goto decline;
    }
    if ((cls = get(batch, s_handle_class)) == NULL || (result = get(batch, s_result)) == NULL
            || (handles = get(batch, s_handles)) == NULL) {
        goto done;
    }
    if (!PyList_Check(handles)) {
        goto decline;
    }
    /* the handle first: once the record is written, nothing may fail */
    handle = make_handle(cls, result, w->count, timestamp, klen, vlen);
    if (handle == NULL || PyList_Append(handles, handle) < 0) {
        goto done;
    }
    PyObject *new_produced = PyLong_FromSsize_t(produced + plan.size - before);
    if (new_produced == NULL) {
        goto undo_handle;
    }
    if (sc_commit(w, &plan, key == Py_None ? NULL : PyBytes_AS_STRING(key), klen,
                  PyBytes_AS_STRING(value), vlen, "\x00", 1) < 0) {
        Py_DECREF(new_produced);
        goto undo_handle;
    }
    int set = PyObject_SetAttr(pinfo, s_produced_bytes, new_produced);
    Py_DECREF(new_produced);
    if (set < 0) {
        goto done; /* the record is in; only the partitioner's count is behind */
    }
    ret = Py_NewRef(handle);
    goto done;
undo_handle:
    /* the handle was listed but its record could not be written (out of memory) */
    PySequence_DelItem(handles, PyList_GET_SIZE(handles) - 1);
    goto done;
decline:
    ret = Py_NewRef(Py_None);
done:
    Py_XDECREF(handle);
    Py_XDECREF(handles);
    Py_XDECREF(result);
    Py_XDECREF(cls);
    Py_XDECREF(batch_size_obj);
    Py_XDECREF(sticky_size_obj);
    Py_XDECREF(produced_obj);
    Py_XDECREF(builder);
    Py_XDECREF(closed);
    Py_XDECREF(batch);
    Py_XDECREF(index);
    Py_XDECREF(batches);
    Py_XDECREF(pinfo);
    Py_XDECREF(sticky);
    Py_DECREF(info);
    return ret;
}

static PyMethodDef Appender_methods[] = {
    {"append", (PyCFunction)(void (*)(void))Appender_append, METH_FASTCALL,
     "Append to the open sticky batch, or return None having changed nothing."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Appender_members[] = {
    {"_topics", T_OBJECT, offsetof(FastAppender, topics), READONLY, NULL},
    {"_view", T_OBJECT, offsetof(FastAppender, view), READONLY, NULL},
    {"enabled", T_BOOL, offsetof(FastAppender, enabled), 0, NULL},
    {"max_record_size", T_PYSSIZET, offsetof(FastAppender, max_record_size), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject AppenderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "streamclient.producer._cfastpath.FastAppender",
    .tp_basicsize = sizeof(FastAppender),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Appends to the accumulator's open sticky batches, or declines.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Appender_init,
    .tp_dealloc = (destructor)Appender_dealloc,
    .tp_traverse = (traverseproc)Appender_traverse,
    .tp_clear = (inquiry)Appender_clear,
    .tp_methods = Appender_methods,
    .tp_members = Appender_members,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cfastpath", "The producer's fast path in C (see fastpath.py).",
    -1, NULL,
};

static int intern(PyObject **slot, const char *name) {
    *slot = PyUnicode_InternFromString(name);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC PyInit__cfastpath(void) {
    /* loaded first: the capsule lookup walks attributes and does not import submodules */
    PyObject *cwriter = PyImport_ImportModule("streamclient.protocol.records._cwriter");
    if (cwriter == NULL) {
        return NULL;
    }
    Py_DECREF(cwriter);
    SCWriterCAPI *capi = PyCapsule_Import(SC_CAPSULE_NAME, 0);
    if (capi == NULL) {
        return NULL;
    }
    WriterType = capi->writer_type;
    if (intern(&s_partitioner, "partitioner") < 0 || intern(&s_info, "_info") < 0
            || intern(&s_batches, "batches") < 0 || intern(&s_index, "index") < 0
            || intern(&s_closed, "closed") < 0 || intern(&s_builder, "builder") < 0
            || intern(&s_produced_bytes, "produced_bytes") < 0
            || intern(&s_sticky_batch_size, "sticky_batch_size") < 0
            || intern(&s_batch_size, "batch_size") < 0
            || intern(&s_handle_class, "handle_class") < 0 || intern(&s_result, "result") < 0
            || intern(&s_handles, "handles") < 0 || intern(&s_topics, "_topics") < 0) {
        return NULL;
    }
    if (PyType_Ready(&HandleType) < 0 || PyType_Ready(&AppenderType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "HandleFields", (PyObject *)&HandleType) < 0
            || PyModule_AddObjectRef(m, "FastAppender", (PyObject *)&AppenderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
