"""The two implementations of weight drop and the step recurrence: ``native`` (the
compiled CPU kernels) and ``python`` (PyTorch ops). Tests that take ``impl`` run on both."""

import pytest

from awdlstm.model import native


@pytest.fixture(params=["native", "python"])
def impl(request, monkeypatch):
    if request.param == "native":
        if native.native() is None:
            pytest.skip("the compiled kernels cannot be built on this machine")
    else:
        monkeypatch.setattr(native, "usable", lambda *tensors: False)
    return request.param
