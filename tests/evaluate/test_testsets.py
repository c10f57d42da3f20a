"""Test-set loaders on the public layouts in ../shared/data, and the download code against 127.0.0.1."""

from __future__ import annotations

import functools
import io
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bayling import records
from bayling import testsets as ts
from bayling.errors import DataError
from bayling.evaluate import download as dl
from bayling.validate import read_lines


def test_flores_plain_and_packed_languages(shared_data_dir):
    root = shared_data_dir / "flores200"
    # eng/zho are plain files; ace_Arab and ltg_Latn are only inside devtest_extra_102langs.tar.xz
    bitexts = ts.load_flores(root, [("eng_Latn", "zho_Hans"), ("ace_Arab", "eng_Latn"), ("eng_Latn", "ltg_Latn")])
    assert [b.key for b in bitexts] == ["eng_Latn-zho_Hans", "ace_Arab-eng_Latn", "eng_Latn-ltg_Latn"]
    assert all(len(b.sources) == len(b.refs) == 1012 for b in bitexts)
    assert bitexts[0].sources[0] == bitexts[1].refs[0]  # aligned by line across languages
    assert bitexts[1].sources[0] != bitexts[2].refs[0]
    assert bitexts[0].head(5).ids == ["flores200-devtest-1", *[f"flores200-devtest-{i}" for i in range(2, 6)]]


def test_flores_missing_language_names_the_file(shared_data_dir):
    with pytest.raises(DataError, match=r"eng_Latn\.devtest not found"):
        records.read_columns(shared_data_dir / "wmt22", ["eng_Latn"])


def test_wmt22_all_14_directions(shared_data_dir):
    pairs = [tuple(p.split("-")) for p in ts.WMT22_DIRECTIONS]
    bitexts = ts.load_wmt22(shared_data_dir / "wmt22", pairs)
    sizes = {b.key: len(b.sources) for b in bitexts}
    assert len(sizes) == 14
    assert sizes["zho_Hans-eng_Latn"] == 1875 and sizes["deu_Latn-eng_Latn"] == 1984
    assert sizes["eng_Latn-ces_Latn"] == 2037
    # cs-en has no reference A in this copy, so B is used; zh-en uses A
    assert ts.wmt22_files(shared_data_dir / "wmt22", "ces_Latn", "eng_Latn")[1].name.endswith(".ref.B.en")
    assert ts.wmt22_files(shared_data_dir / "wmt22", "zh", "en")[1].name.endswith(".ref.A.en")
    with pytest.raises(DataError, match="no zh-de direction"):
        ts.wmt22_files(shared_data_dir / "wmt22", "zh", "de")


def test_ntrex_both_directions(shared_data_dir):
    en_zh, ja_en = ts.load_ntrex(shared_data_dir / "ntrex128", [("en", "zh"), ("ja", "en")])
    assert len(en_zh.sources) == 1997 and en_zh.tgt == "zho_Hans"
    assert en_zh.sources[0] == ja_en.refs[0]  # English source is the reference of X->en


def test_misaligned_files_fail_with_file_and_line(tmp_path):
    (tmp_path / "generaltest2022.de-en.src.de").write_text("a\nb\nc\n", encoding="utf-8")
    (tmp_path / "generaltest2022.de-en.ref.A.en").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"ref\.A\.en:3: 2 reference lines but 3 source lines"):
        ts.load_wmt22(tmp_path, [("de", "en")])


def test_dataset_dir_explains_how_to_get_data(tmp_path, monkeypatch):
    monkeypatch.delenv("BAYLING_FLORES_DIR", raising=False)
    with pytest.raises(DataError, match="bayling eval download wmt22 --dest DIR"):
        records.dataset_dir("wmt22", str(tmp_path))


@pytest.fixture
def file_server(tmp_path):
    """A static HTTP server on 127.0.0.1 serving ``tmp_path/www`` (stands in for the publishers' hosts)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_downloads_write_the_shared_layout(shared_data_dir, file_server, tmp_path):
    www, url = file_server
    # FLORES-200: Meta's tarball layout flores200_dataset/devtest/CODE.devtest
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for code in ("eng_Latn", "zho_Hans"):
            t.add(
                shared_data_dir / "flores200" / "devtest" / f"{code}.devtest",
                f"flores200_dataset/devtest/{code}.devtest",
            )
        t.add(shared_data_dir / "flores200" / "metadata_devtest.tsv", "flores200_dataset/metadata_devtest.tsv")
    (www / "flores200_dataset.tar.gz").write_bytes(buf.getvalue())
    # WMT22: wmt22-news-systems txt/sources + txt/references; de-en only has reference B here
    (www / "sources").mkdir()
    (www / "references").mkdir()
    for name in ("generaltest2022.zh-en.src.zh", "generaltest2022.de-en.src.de"):
        (www / "sources" / name).write_bytes((shared_data_dir / "wmt22" / name).read_bytes())
    for name in ("generaltest2022.zh-en.ref.A.en", "generaltest2022.de-en.ref.B.en"):
        (www / "references" / name).write_bytes((shared_data_dir / "wmt22" / name).read_bytes())
    for name in ("newstest2019-src.eng.txt", "newstest2019-ref.deu.txt", "DOCUMENT_IDS.tsv"):
        (www / name).write_bytes((shared_data_dir / "ntrex128" / name).read_bytes())

    dest = tmp_path / "data"
    dl.download_flores200(dest, url=f"{url}/flores200_dataset.tar.gz")
    dl.download_wmt22(dest, ["zh-en", "de-en"], base_url=url)
    dl.download_ntrex(dest, ["deu"], base_url=url)
    (b,) = ts.load_bitexts("flores200", [("eng_Latn", "zho_Hans")], data_dir=str(dest))
    assert len(b.sources) == 1012
    zh_en, de_en = ts.load_bitexts("wmt22", [("zh", "en"), ("de", "en")], data_dir=str(dest))
    assert (
        len(zh_en.refs) == 1875
        and de_en.refs[0] == read_lines(shared_data_dir / "wmt22" / "generaltest2022.de-en.ref.B.en")[0]
    )
    (n,) = ts.load_bitexts("ntrex", [("en", "de")], data_dir=str(dest))
    assert len(n.sources) == 1997
    # the article of every line comes too, so the data stage can split FLORES and NTREX by document
    from bayling.records import document_ids

    assert len(document_ids(dest / "flores200", "devtest")[0]) == 1012
    assert len(set(document_ids(dest / "ntrex128", "devtest")[0])) == 123
    assert not list(Path(dest).rglob("*.part"))  # atomic writes leave no partial files
    with pytest.raises(DataError, match="download failed"):
        dl.download_ntrex(tmp_path / "x", ["kor"], base_url=url)
