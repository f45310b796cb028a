"""A 2 GB artifact passes through the server with its memory staying flat."""

import hashlib

import requests

SIZE = 2 << 30
CHUNK = 1 << 20


def _chunks(seed_block):
    sent = 0
    while sent < SIZE:
        yield seed_block
        sent += len(seed_block)


def test_two_gigabytes_stream_through_flat_memory(local_server):
    block = bytes((i * 7 + 3) % 251 for i in range(CHUNK))
    expected = hashlib.sha256()
    for _ in range(SIZE // CHUNK):
        expected.update(block)
    url = f"{local_server.url}/api/2.0/mlflow-artifacts/artifacts/0/big/artifacts/huge.bin"
    r = requests.put(url, data=_chunks(block), timeout=600)
    assert r.status_code == 200, r.text
    got = hashlib.sha256()
    total = 0
    with requests.get(url, stream=True, timeout=600) as r:
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == SIZE
        for piece in r.iter_content(CHUNK):
            got.update(piece)
            total += len(piece)
    assert total == SIZE
    assert got.hexdigest() == expected.hexdigest()
    peak_mb = local_server.peak_rss_kb() / 1024
    print(f"server peak RSS: {peak_mb:.1f} MB")
    assert peak_mb < 100, f"peak RSS {peak_mb:.1f} MB"
