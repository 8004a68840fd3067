"""The embedded SecantusDB: started as a child process, data under DATA_DIR survives a restart."""

from __future__ import annotations

from pathlib import Path

from pymongo import MongoClient

from app.storage.mongo import EmbeddedMongo


def test_data_survives_a_restart_and_the_child_process_is_stopped(tmp_path: Path) -> None:
    storage = tmp_path / "db"
    with EmbeddedMongo(storage) as first:
        with MongoClient(first.uri, serverSelectionTimeoutMS=5000) as client:
            client["kept"]["things"].insert_one({"name": "survivor"})
        process = first.process
    assert process is not None and process.poll() is not None, "the child must be gone after stop()"
    with EmbeddedMongo(storage) as second, MongoClient(second.uri, serverSelectionTimeoutMS=5000) as client:
        assert client["kept"]["things"].find_one({}, {"_id": 0}) == {"name": "survivor"}
    assert any(storage.iterdir()), "files live under the storage directory"
