import pytest
import torch

from awdlstm import ModelConfig, build_model
from awdlstm.checkpoints.checkpoint import load_checkpoint, save_checkpoint
from awdlstm.errors import AwdlstmError


def test_round_trip_keeps_tied_weights_and_metadata(tmp_path):
    model = build_model(ModelConfig(emb_size=4, hidden_size=6, num_layers=2), 11)
    rng = torch.get_rng_state()
    save_checkpoint(tmp_path / "c.safetensors", {"model.": model.state_dict(), "rng.": {"torch": rng}},
                    {"vocab": ["a", "b"], "state": {"epoch": 3}})
    tensors, meta = load_checkpoint(tmp_path / "c.safetensors")
    assert meta["vocab"] == ["a", "b"] and meta["state"]["epoch"] == 3
    assert meta["aliases"] == {"model.decoder.weight": "model.embedding.weight"}
    clone = build_model(ModelConfig(emb_size=4, hidden_size=6, num_layers=2), 11)
    clone.load_state_dict(tensors["model."])
    for a, b in zip(model.state_dict().values(), clone.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(tensors["rng."]["torch"], rng)
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temporary file left


def test_truncated_and_foreign_files_are_clear_errors(tmp_path):
    save_checkpoint(tmp_path / "c.safetensors", {"model.": {"w": torch.ones(100, 100)}}, {})
    data = (tmp_path / "c.safetensors").read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(AwdlstmError, match="t.safetensors.*truncated or corrupt"):
        load_checkpoint(tmp_path / "t.safetensors")
    (tmp_path / "g.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(AwdlstmError, match="g.safetensors"):
        load_checkpoint(tmp_path / "g.safetensors")
    from safetensors.torch import save_file
    save_file({"x": torch.ones(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(AwdlstmError, match="not an awdlstm checkpoint"):
        load_checkpoint(tmp_path / "other.safetensors")
    with pytest.raises(AwdlstmError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")
