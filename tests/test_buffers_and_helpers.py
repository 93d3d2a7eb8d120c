"""The backend buffer service (backends.buffers) and the shared argument/array helpers."""
import threading

import numpy as np
import pytest

import autograd as ag
import backends
import nn.functional as F
from backends.buffers import PlainBuffers, RecyclingBuffers


def test_cpu_backend_recycles_scratch_arrays_and_plain_buffers_never_do():
    rec, plain = RecyclingBuffers(np), PlainBuffers(np)
    dt = np.dtype(np.float32)
    a = rec.take((512, 512), dt)
    rec.give(a)
    assert np.shares_memory(rec.take((256, 1024), dt), a)        # same size, another shape: the same memory
    b = plain.take((512, 512), dt)
    plain.give(b)
    assert not np.shares_memory(plain.take((512, 512), dt), b)
    assert plain.result((3, 4), dt).shape == (3, 4)
    assert isinstance(backends.cpu.buffers, RecyclingBuffers)


def test_recycled_zero_take_is_zeroed():
    rec = RecyclingBuffers(np)
    dt = np.dtype(np.float64)
    a = rec.take((300, 300), dt)
    a.fill(7)
    rec.give(a)
    z = rec.take((300, 300), dt, zero=True)
    assert np.shares_memory(z, a) and not z.any()


def test_recycled_results_are_per_thread():
    dt = np.dtype(np.float32)
    store = backends.cpu.buffers
    mine = store.result((400, 400), dt)
    seen = []
    t = threading.Thread(target=lambda: seen.append(store.result((400, 400), dt)))
    t.start()
    t.join()
    assert not np.shares_memory(seen[0], mine)


def test_is_array_accepts_backend_arrays_only():
    class FakeGpuArray:
        __cuda_array_interface__ = {}

    assert backends.is_array(np.zeros(3))
    assert not backends.is_array(np.float32(1))
    assert not backends.is_array(ag.tensor([1.0]))
    assert not backends.is_array([1.0])
    assert not backends.is_array(FakeGpuArray())


@pytest.mark.parametrize("call, op, arg", [
    (lambda x, w: F.conv2d(x, w, stride=(True, 1)), "conv2d", "stride"),
    (lambda x, w: F.conv2d(x, w, padding=True), "conv2d", "padding"),
    (lambda x, w: F.conv_transpose2d(x, w, dilation=(1, False)), "conv_transpose2d", "dilation"),
    (lambda x, w: F.max_pool2d(x, (2, True)), "max_pool2d", "kernel_size"),
    (lambda x, w: F.avg_pool2d(x, 2, stride=True), "avg_pool2d", "stride"),
])
def test_int_arguments_reject_bools_naming_op_and_argument(call, op, arg):
    x, w = ag.randn(1, 2, 5, 5), ag.randn(2, 2, 3, 3)
    with pytest.raises(ValueError, match=rf"^{op}: {arg} must be an int or a pair of ints"):
        call(x, w)


def test_conv_window_clipping_matches_enumeration():
    """``_clip1``: exactly the outputs o with 0 <= o·s + shift < n_in, and the inputs they read, for every small
    geometry (the im2col/col2im windows of every padding, stride and dilation rest on it)."""
    from autograd.ops._grid import _clip1
    for n_in in range(1, 8):
        for n_out in range(1, 9):
            for s in range(1, 4):
                for shift in range(-7, 8):
                    want = [o for o in range(n_out) if 0 <= o * s + shift < n_in]
                    got = _clip1(n_out, n_in, s, shift)
                    if not want:
                        assert got is None, (n_in, n_out, s, shift)
                        continue
                    outs, ins = got
                    assert list(range(n_out))[outs] == want, (n_in, n_out, s, shift)
                    assert list(range(n_in))[ins] == [o * s + shift for o in want], (n_in, n_out, s, shift)
