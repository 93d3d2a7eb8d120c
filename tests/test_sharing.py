"""ag.tensor copies; ag.from_numpy and ag.as_tensor share memory (issue 11, item 2)."""
import numpy as np
import pytest

import autograd as ag
import nn


def test_tensor_copies_numpy_array_so_an_optimizer_step_leaves_it_alone():
    w0 = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    keep = w0.copy()
    w = ag.tensor(w0, requires_grad=True)
    (w * w).sum().backward()
    nn.optim.SGD([w], lr=0.1).step()
    np.testing.assert_array_equal(w0, keep)
    assert not np.shares_memory(w.array, w0)


@pytest.mark.parametrize("make", [lambda a: a, lambda a: a[:, ::2], lambda a: memoryview(a)])
def test_tensor_copies_arrays_views_and_buffers(make):
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    src = make(a)
    t = ag.tensor(src)
    t.array[...] = -1
    assert a.min() == 0


def test_tensor_of_tensor_copies():
    x = ag.tensor([1.0, 2.0])
    y = ag.tensor(x)
    y.array[0] = 9
    assert x.array[0] == 1


def test_from_numpy_shares_both_ways_and_keeps_dtype():
    a = np.zeros(3, dtype=np.float64)
    t = ag.from_numpy(a)
    assert t.dtype == np.float64 and t.device == "cpu" and not t.requires_grad
    t.array[1] = 5
    assert a[1] == 5
    a[2] = 7
    assert t.array[2] == 7


@pytest.mark.parametrize("bad", [[1.0, 2.0], 3.0, ag.zeros(2)])
def test_from_numpy_rejects_non_arrays(bad):
    with pytest.raises(TypeError, match=r"from_numpy: expected a numpy\.ndarray, got .*(list|float|Tensor)"):
        ag.from_numpy(bad)


def test_from_numpy_rejects_object_arrays():
    with pytest.raises(TypeError, match="from_numpy: .*dtype object"):
        ag.from_numpy(np.array([1, None], dtype=object))


def test_as_tensor_shares_when_it_can_and_copies_otherwise():
    a = np.ones(4, dtype=np.float32)
    t = ag.as_tensor(a)
    assert np.shares_memory(t.array, a)
    c = ag.as_tensor(a, dtype="float64")
    assert c.dtype == np.float64 and not np.shares_memory(c.array, a)
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    assert ag.as_tensor(x) is x
    assert ag.as_tensor(x, dtype="float64").dtype == np.float64
    lst = ag.as_tensor([1.0, 2.0])
    assert lst.dtype == np.float32 and lst.shape == (2,)


def test_dataloader_batches_do_not_copy_twice():
    from nn.data.loader import to_device
    batch = np.ones((2, 3), dtype=np.float32)
    assert np.shares_memory(to_device(batch, "cpu").array, batch)
