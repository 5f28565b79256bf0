"""pandas (the `pandas` extra): every documented path from the dataset to a DataFrame keeps a 64-bit `outcome`
exact, 2^64 - 1 included, and a bitstring wider than 64 bits as a missing value, never a float."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import oqtopus_data as od

TOP = 2**64 - 1


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    counts = {"1" * 64: 3, "1" * 65: 2, "0" * 64: 1}
    job = {"job_id": "wide", "name": "w", "job_type": "sampling", "status": "succeeded", "device_id": "sim",
           "shots": 6, "job_info": {"result": {"sampling": {"counts": counts}}},
           "submitted_at": "2025-01-01T00:00:00Z"}
    path = tmp_path_factory.mktemp("pandas") / "out"
    od.write_dataset(od.flatten([job]), path)
    return path


def exact(series: pd.Series) -> None:
    assert series.tolist()[:2] == [TOP, 0] and pd.isna(series.tolist()[2])
    assert not pd.api.types.is_float_dtype(series.dtype), series.dtype


def test_duckdb_df_gives_nullable_uint64(out: Path) -> None:
    con = od.connect(out)
    for source in ("counts", "count_probabilities"):
        frame = con.sql(f"SELECT outcome FROM {source} ORDER BY n_bits, bitstring DESC").df()
        assert str(frame["outcome"].dtype) == "UInt64"
        exact(frame["outcome"])


def test_polars_and_arrow_to_pandas_with_arrow_types(out: Path) -> None:
    counts = od.read(out, "counts").sort("n_bits", "bitstring", descending=[False, True])
    exact(counts.to_pandas(use_pyarrow_extension_array=True)["outcome"])
    exact(counts.to_arrow().to_pandas(types_mapper=pd.ArrowDtype)["outcome"])
    # The plain conversions are the lossy ones the docs warn about: the null makes the column float.
    assert pd.api.types.is_float_dtype(counts.to_pandas()["outcome"].dtype)
