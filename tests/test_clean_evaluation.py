"""The development tools around the cleaner: what they refuse and what the shipped models record."""
import json

from commentary.clean.model import HTML_MODEL_PATH, MODEL_PATH
from tools import evaluation


def test_evaluation_names_the_missing_data_folder_and_fails(tmp_path, capsys):
    missing = tmp_path / "shared"
    assert evaluation.main(["--shared", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"missing folder: {missing} (the benchmark and pool data live in ../shared)"]


def test_shipped_models_record_their_training_data_and_licences():
    for path in (MODEL_PATH, HTML_MODEL_PATH):
        trained_on = json.loads(path.read_text(encoding="utf-8"))["trained_on"]
        datasets = trained_on["datasets"]
        assert {"benchmark", "dragnet", "readability", "cleanportal"} <= set(datasets)
        assert datasets["benchmark"]["licence"] == "MIT" and datasets["dragnet"]["licence"] == "AGPL-3.0"
        assert all(entry["pages"] > 0 for entry in datasets.values())
        assert len(trained_on["data_fingerprint"]) == 16
