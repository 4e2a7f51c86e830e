"""`tempo-fast blocks ...` against an S3 backend (moto): the same commands read the bucket
the configuration names, through ranged GETs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tempo_fast import cli
from tempo_fast.backend import S3Backend
from tests.backend.conftest import s3_config
from tests.backend.motoserver import MotoServer
from tests.operator.conftest import TENANT, ingest, trace, write_config


def test_list_lookup_export_on_s3(
    moto: MotoServer, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spans = [s for n in range(1, 4) for s in trace(n, 4)]
    ingest(tmp_path, [(TENANT, spans)])
    (block,) = (tmp_path / "blocks" / TENANT).iterdir()
    store = S3Backend(s3_config(bucket, moto.endpoint))
    meta = store.upload_block(TENANT, block.name, block)
    store.close()
    s3 = dataclasses.asdict(s3_config(bucket, moto.endpoint))  # the same keys as the YAML's
    del s3["part_size"]
    config = str(write_config(tmp_path / "s3.yaml", {"backend": "s3", "s3": s3}))

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("blocks", "list", "-json", "-config.file", config)
    assert code == 0
    assert [(d["blockID"], d["state"], d["meta"]) for d in json.loads(out)] == [
        (block.name, "complete", meta)
    ]
    code, out, err = run("blocks", "lookup", spans[5].trace_id.hex(), "-config.file", config)
    assert code == 0, err
    assert f"{block.name}      4" in out and "spans: 4 " in out
    code, _, err = run(
        "blocks", "show", TENANT, "00000000-0000-0000-0000-00000000dead", "-config.file", config
    )
    assert code == 1 and f"s3://{bucket}/pfx/tempo" in err and "tempo-fast blocks list" in err

    out_path = tmp_path / "export.parquet"
    code, _, err = run(
        "blocks", "export", TENANT, block.name, str(out_path), "-config.file", config
    )
    assert code == 0, err
    table = pq.read_table(out_path, columns=["span_id", "name"])
    assert sorted(table.column("span_id").to_pylist()) == sorted(s.span_id.hex() for s in spans)

    # a bucket that does not exist: the backend's message, exit code 1
    missing = str(
        write_config(tmp_path / "m.yaml", {"backend": "s3", "s3": {**s3, "bucket": "nope"}})
    )
    code, _, err = run("blocks", "list", "-config.file", missing)
    assert code == 1 and "nope" in err
