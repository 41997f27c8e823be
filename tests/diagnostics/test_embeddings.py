import pytest
import torch

from awdlstm.cli import main
from awdlstm.data.vocab import Vocabulary
from awdlstm.diagnostics.embeddings import analogy, neighbours, projection
from awdlstm.errors import AwdlstmError

VOCAB = Vocabulary(["king", "queen", "man", "woman", "apple", "pear"])
EMB = torch.tensor([[1.0, 1.0, 0.0], [1.0, -1.0, 0.0], [0.1, 1.0, 0.0], [0.1, -1.0, 0.0],
                    [0.0, 0.0, 1.0], [0.05, 0.0, 1.0]])


def test_cosine_neighbours():
    assert neighbours(EMB, VOCAB, "apple", 1)[0][0] == "pear"
    # Cosines with king: man 0.77, pear 0.04, apple 0, queen 0, woman -0.63.
    ranked = [w for w, _ in neighbours(EMB, VOCAB, "king", 5)]
    assert ranked[0] == "man" and ranked[1] == "pear" and ranked[-1] == "woman"


def test_analogy_king_man_queen():
    # man : king :: woman : ?  ->  king - man + woman = queen
    assert analogy(EMB, VOCAB, "man", "king", "woman", 1)[0][0] == "queen"


def test_unknown_word_is_a_clear_error():
    with pytest.raises(AwdlstmError, match="'prince'"):
        neighbours(EMB, VOCAB, "prince")


def test_projection_keeps_the_main_direction():
    torch.manual_seed(0)
    x = torch.randn(50, 1) * torch.tensor([[5.0, 0.0, 0.0]]) + 0.01 * torch.randn(50, 3)
    p = projection(x, 50)
    assert p.shape == (50, 2)
    assert p[:, 0].std() > 10 * p[:, 1].std()


def test_cli_on_a_trained_run(tiny_run, capsys, tmp_path):
    run_dir, _ = tiny_run
    code = main(["embeddings", str(run_dir), "--words", "a1", "--analogy", "a1:z1:a2", "--plot", "30",
                 "--out", str(tmp_path / "e.png")])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("a1: ") and "a1 : z1 :: a2 :" in out
    assert (tmp_path / "e.png").stat().st_size > 1000
