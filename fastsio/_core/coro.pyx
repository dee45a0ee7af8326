# cython: language_level=3
"""One step of a coroutine, for the Python layer's handler calls (``Server._call``).

A handler that never suspends (``return data``, ``await sio.emit(...)``) finishes in its first
step. From Python that step is ``ctx.run(coro.send, None)`` and the return value arrives as a
``StopIteration``, whose making and catching cost more than the rest of an event's dispatch.
``PyIter_Send`` hands the value back directly. Nothing here knows asyncio or what the
coroutine does: the caller decides what a yielded value means.
"""

cdef extern from *:
    """
    static PyObject* fastsio_coro_step(PyObject* coro, PyObject* ctx) {
        PyObject* value = NULL;
        PyObject *type, *exc, *tb;
        PySendResult sent;
        if (PyContext_Enter(ctx) < 0) {
            return NULL;
        }
        sent = PyIter_Send(coro, Py_None, &value);
        /* Leave the context with the coroutine's exception (if any) put aside. */
        PyErr_Fetch(&type, &exc, &tb);
        if (PyContext_Exit(ctx) < 0) {
            Py_XDECREF(type); Py_XDECREF(exc); Py_XDECREF(tb);
            Py_XDECREF(value);
            return NULL;
        }
        PyErr_Restore(type, exc, tb);
        if (sent == PYGEN_ERROR) {
            return NULL;
        }
        PyObject* out = PyTuple_New(2);
        if (out == NULL) {
            Py_DECREF(value);
            return NULL;
        }
        PyObject* done = sent == PYGEN_RETURN ? Py_True : Py_False;
        Py_INCREF(done);
        PyTuple_SET_ITEM(out, 0, done);
        PyTuple_SET_ITEM(out, 1, value);
        return out;
    }
    """
    object fastsio_coro_step(object coro, object ctx)


def step(object coro not None, object ctx not None):
    """Send ``None`` into ``coro`` inside the context ``ctx`` (a ``contextvars.Context``):
    ``(True, value)`` when it returned ``value``, ``(False, yielded)`` when it suspended on
    ``yielded``; what it raised propagates."""
    return fastsio_coro_step(coro, ctx)
