import json
import os
from pathlib import Path

STATE = Path(os.environ["FAKE_STATE"])


def counter(name):
    file = STATE / name
    return int(file.read_text()) if file.exists() else 0


def set_counter(name, value):
    (STATE / name).write_text(str(value))


def load():
    file = STATE / "db.json"
    return json.loads(file.read_text()) if file.exists() else {}


def store(db):
    (STATE / "db.json").write_text(json.dumps(db, indent=2, sort_keys=True))


def load_objects():
    """Authentik's objects: {model: {pk: fields}}."""
    file = STATE / "objects.json"
    return json.loads(file.read_text()) if file.exists() else {}


def store_objects(objects):
    (STATE / "objects.json").write_text(json.dumps(objects, indent=2, sort_keys=True))
