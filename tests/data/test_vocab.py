import numpy as np
import pytest

from awdlstm.data.vocab import Vocabulary


def test_order_is_frequency_then_first_occurrence():
    v = Vocabulary.build("b a c a b d".split())
    # a and b both occur twice: b came first; c before d by first occurrence.
    assert v.itos == ["b", "a", "c", "d"]


def test_encode_maps_unknown_to_unk_when_present():
    v = Vocabulary(["x", "<unk>", "<eos>"])
    assert v.encode(["x", "zzz", "<eos>"]).tolist() == [0, 1, 2]
    assert v.encode(["x"]).dtype == np.int64


def test_encode_without_unk_raises_on_unknown():
    with pytest.raises(KeyError):
        Vocabulary(["x", "<eos>"]).encode(["y"])
