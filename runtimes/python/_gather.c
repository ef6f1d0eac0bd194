/* The reads of a Python worker's check after each task (runtimes/python/leftovers.py), in C.

   gather(addresses) -> bytes: the 8-byte word at each of the addresses packed in
   `addresses` (native 8-byte integers), in order.
   spans(pairs) -> bytes: the bytes of each (start, length) span packed in `pairs` (native
   8-byte integers, two per span), one after the other.
   The check compares each answer with the answer it had for the pristine state: one
   comparison of bytes for thousands of version tags and item pointers.

   Why C: the same reads through a memoryview of the address space make a Python int per
   word and run the interpreter between them, about 20-30 ns each on warm caches and 200 ns
   on the cold caches a busy daemon leaves a worker; here the loads are independent and the
   processor overlaps their misses. What is read, and what a difference means, is decided in
   leftovers.py; without this module it reads the same words the slower way.

   Only our own check calls it, with addresses of objects it keeps alive. It reads; it
   writes nothing and calls nothing. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *gather(PyObject *module, PyObject *arg) {
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (view.len % 8 != 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "addresses must be packed 8-byte integers");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, view.len);
    if (out != NULL) {
        const char *from = (const char *)view.buf;
        char *to = PyBytes_AS_STRING(out);
        for (Py_ssize_t at = 0; at < view.len; at += 8) {
            uintptr_t address;
            memcpy(&address, from + at, 8);
            uint64_t word = *(const volatile uint64_t *)address;
            memcpy(to + at, &word, 8);
        }
    }
    PyBuffer_Release(&view);
    return out;
}

static PyObject *spans(PyObject *module, PyObject *arg) {
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const char *from = (const char *)view.buf;
    Py_ssize_t total = 0;
    int bad = view.len % 16 != 0;
    for (Py_ssize_t at = 0; !bad && at < view.len; at += 16) {
        uint64_t length;
        memcpy(&length, from + at + 8, 8);
        bad = length > (uint64_t)(PY_SSIZE_T_MAX - total);
        total += bad ? 0 : (Py_ssize_t)length;
    }
    if (bad) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "spans must be packed (start, length) 8-byte pairs");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, total);
    if (out != NULL) {
        char *to = PyBytes_AS_STRING(out);
        for (Py_ssize_t at = 0; at < view.len; at += 16) {
            uintptr_t start;
            uint64_t length;
            memcpy(&start, from + at, 8);
            memcpy(&length, from + at + 8, 8);
            if (length != 0) {  /* an empty list's span may start nowhere */
                memcpy(to, (const void *)start, (size_t)length);
                to += length;
            }
        }
    }
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"gather", gather, METH_O, "The 8-byte words at the packed addresses, as bytes."},
    {"spans", spans, METH_O, "The bytes of the packed (start, length) spans, one after the other."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT, "_gather", "Reads for a Python worker's check.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__gather(void) {
    return PyModule_Create(&definition);
}
