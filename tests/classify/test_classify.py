"""The classifier: labelled input and its errors, concat pooling over real positions only,
gradual unfreezing, learning the generated labelled set, and the CLI."""

import pytest
import torch

from awdlstm.classify.config import ClassifierConfig, classifier_config
from awdlstm.classify.data import read_labelled
from awdlstm.classify.model import Classifier, concat_pool
from awdlstm.classify.train import Encoded, train_classifier, trainable_groups
from awdlstm.cli import main
from awdlstm.config import build_config
from awdlstm.data import SyntheticSpec
from awdlstm.data.synthetic import write_labelled_synthetic
from awdlstm.errors import AwdlstmError
from awdlstm.model import build_model


@pytest.mark.parametrize("text, needle", [
    ("pos\tgood film\nneg bad film\n", ":2: no label column"),
    ("pos\tgood film\nneg\t   \n", ":2: the document is empty"),
    ("\tgood film\n", ":1: the label is empty"),
    ("", "holds no labelled lines"),
])
def test_bad_labelled_files_are_one_line_errors(tmp_path, text, needle):
    f = tmp_path / "d.tsv"
    f.write_text(text)
    with pytest.raises(AwdlstmError, match=needle) as e:
        read_labelled(f)
    assert "\n" not in str(e.value)


def test_csv_and_unknown_labels(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text('pos,"good, fine film"\nneg,bad\n')
    docs = read_labelled(f)
    assert [(d.label, d.text) for d in docs] == [("pos", "good, fine film"), ("neg", "bad")]
    with pytest.raises(AwdlstmError, match=r"d.csv:2: unknown label 'neg'; the classifier knows pos, meh"):
        read_labelled(f, ["pos", "meh"])


def test_concat_pool_reads_only_each_documents_own_positions():
    torch.manual_seed(0)
    out = torch.randn(5, 3, 4)
    lengths = torch.tensor([5, 2, 3])
    pooled = concat_pool(out, lengths)
    for b, n in enumerate(lengths.tolist()):
        own = out[:n, b]
        want = torch.cat([own[-1], own.max(0).values, own.mean(0)])
        torch.testing.assert_close(pooled[b], want)


def make_classifier(vocab=30, **kw):
    torch.manual_seed(0)
    lm = build_model(build_config("tiny").model, vocab)
    return Classifier(lm, 2, ClassifierConfig(**kw))


def test_gradual_unfreezing_trains_only_the_groups_it_names():
    torch.manual_seed(1)
    data = Encoded([torch.randint(1, 30, (int(n),)).tolist() for n in torch.randint(3, 9, (16,))],
                   [i % 2 for i in range(16)])
    # Epoch e trains the top e groups (embedding, layer 1, layer 2, head): after e epochs
    # exactly those have moved.
    for epochs, moved in ((1, [False, False, False, True]), (2, [False, False, True, True]),
                          (3, [False, True, True, True]), (4, [True, True, True, True])):
        clf = make_classifier()
        before = [[p.detach().clone() for p in g] for g in clf.groups()]
        train_classifier(clf, data, data, ClassifierConfig(epochs=epochs, batch_size=4, lr=1e-2), 0, "cpu",
                         log=lambda *a: None, progress=False)
        after = clf.groups()
        assert [any(not torch.equal(x, y) for x, y in zip(ga, gb)) for ga, gb in zip(before, after)] == moved
    clf = make_classifier()
    assert trainable_groups(clf, 1, "all") == 4 and all(p.requires_grad for p in clf.parameters())


def test_it_learns_the_generated_labelled_set(tiny_run, tmp_path, capsys):
    run, _ = tiny_run
    data = tmp_path / "labelled"
    write_labelled_synthetic(SyntheticSpec(train_lines=800, eval_lines=200), data)
    out = tmp_path / "clf"
    code = main(["classify", "train", str(run), str(data), "--out", str(out), "--set", "epochs=6",
                 "--set", "unfreeze=all"])
    text = capsys.readouterr().out
    assert code == 0
    accuracy = float(text.split("test: accuracy ")[1].split("%")[0]) / 100
    assert accuracy > 0.8, text  # chance is 0.5
    assert "true \\ predicted" in text
    code = main(["classify", "eval", str(out), str(data / "valid.tsv")])
    assert code == 0 and "accuracy" in capsys.readouterr().out
    lines = tmp_path / "new.txt"
    lines.write_text("a1 w0 w3 z1\na2 w3 w4 w5 z2\n")
    assert main(["classify", "predict", str(out), str(lines)]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert [r.split("\t")[0] for r in rows] == ["yes", "no"]
    # Bad input: a label the classifier does not know, an empty document.
    bad = tmp_path / "bad.tsv"
    bad.write_text("yes\ta1 w0 z1\nmaybe\ta2 w3 z2\n")
    assert main(["classify", "eval", str(out), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.tsv:2: unknown label 'maybe'" in err and len(err.splitlines()) == 1
    lines.write_text("a1 w0 z1\n\n")
    assert main(["classify", "predict", str(out), str(lines)]) == 2
    assert "new.txt:2: the document is empty" in capsys.readouterr().err


def test_settings_errors():
    with pytest.raises(AwdlstmError, match="key of \\[classify\\]"):
        classifier_config(["nope=1"])
    with pytest.raises(AwdlstmError, match="classify.unfreeze"):
        classifier_config(["unfreeze=sometimes"])
