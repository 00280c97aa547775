"""Array helpers: numpy when it is installed, plain Python containers otherwise.

Set DIA_PYTHON_NO_NUMPY=1 to force the numpy-free path (used by the tests).
"""
import array
import ctypes
import os

if os.environ.get("DIA_PYTHON_NO_NUMPY") == "1":
    np = None
else:
    try:
        import numpy as np
    except ImportError:  # numpy is optional
        np = None

HAVE_NUMPY = np is not None


def _flatten(x, out, shape, depth):
    if isinstance(x, (list, tuple, array.array)) or (np is not None and isinstance(x, np.ndarray)):
        n = len(x)
        if len(shape) <= depth:
            shape.append(n)
        elif shape[depth] != n:
            raise ValueError("ragged nested sequence")
        if isinstance(x, array.array) or (n and not isinstance(x[0], (list, tuple, array.array))):
            if len(shape) != depth + 1:
                raise ValueError("ragged nested sequence")
            out.extend(x)
        else:
            for v in x:
                _flatten(v, out, shape, depth + 1)
    else:
        raise TypeError("expected a sequence, got %r" % type(x).__name__)


def as_c(x, kind):
    """(ctypes pointer, keepalive object, shape) of x as a C-contiguous int32 or float32 array.
    kind is "i32" or "f32"."""
    ctype = ctypes.c_int32 if kind == "i32" else ctypes.c_float
    if np is not None:
        a = np.ascontiguousarray(np.asarray(x), dtype=np.int32 if kind == "i32" else np.float32)
        return a.ctypes.data_as(ctypes.POINTER(ctype)), a, tuple(a.shape)
    flat, shape = [], []
    _flatten(x, flat, shape, 0)
    buf = (ctype * len(flat))(*flat)
    return ctypes.cast(buf, ctypes.POINTER(ctype)), buf, tuple(shape)


def empty(n, kind):
    """A zeroed ctypes buffer of n float32/int32 values."""
    return ((ctypes.c_int32 if kind == "i32" else ctypes.c_float) * n)()


def _nest(flat, shape):
    if len(shape) == 1:
        return list(flat)
    step = 1
    for s in shape[1:]:
        step *= s
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def result(buf, shape, kind, count=None):
    """Turn a ctypes buffer (or pointer, with count) into the returned array: numpy array of the
    shape, else array.array for 1-D and nested lists for more dimensions."""
    n = 1
    for s in shape:
        n *= s
    if count is None:
        count = n
    ctype = ctypes.c_int32 if kind == "i32" else ctypes.c_float
    if n == 0:
        data = b""
    else:
        data = ctypes.string_at(ctypes.cast(buf, ctypes.POINTER(ctype)), n * 4)
    if np is not None:
        return np.frombuffer(bytearray(data), dtype=np.int32 if kind == "i32" else np.float32).reshape(shape)
    a = array.array("i" if kind == "i32" else "f")
    assert a.itemsize == 4
    a.frombytes(data)
    if len(shape) == 1:
        return a
    return _nest(a.tolist(), list(shape))
