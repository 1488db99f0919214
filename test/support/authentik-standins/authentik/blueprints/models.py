import os
from pathlib import Path

from django.db import IntegrityError
import fake_state


class BlueprintRetrievalFailed(Exception):
    pass


class BlueprintInstanceStatus:
    SUCCESSFUL = "successful"
    WARNING = "warning"
    ERROR = "error"
    ORPHANED = "orphaned"
    UNKNOWN = "unknown"


FIELDS = ("name", "path", "context", "status", "enabled", "managed_models", "metadata", "last_applied_hash")


class BlueprintInstance:
    def __init__(self, **values):
        self.last_applied_hash = ""
        for key, value in values.items():
            assert key in FIELDS, key
            setattr(self, key, value)

    def save(self):
        db = fake_state.load()
        for path, record in db.items():
            if record["name"] == self.name and path != self.path:
                raise IntegrityError("duplicate key value violates unique constraint on name")
        record = {key: getattr(self, key) for key in FIELDS}
        # A database that disagrees with what the importer reported (goauthentik/authentik#12186).
        forced = os.environ.get("FAKE_DB_STATUS")
        if forced:
            record["status"] = forced
        db[self.path] = record
        fake_state.store(db)

    def refresh_from_db(self):
        for key, value in fake_state.load()[self.path].items():
            setattr(self, key, value)

    def retrieve(self):
        try:
            return (Path(os.environ["FAKE_BLUEPRINTS_DIR"]) / self.path).read_text(encoding="utf-8")
        except OSError as exc:
            raise BlueprintRetrievalFailed(exc) from exc


class _Query:
    def __init__(self, records):
        self.records = records

    def first(self):
        return BlueprintInstance(**self.records[0]) if self.records else None

    def delete(self):
        db = fake_state.load()
        for record in self.records:
            db.pop(record["path"], None)
        fake_state.store(db)


class _Manager:
    def filter(self, **kwargs):
        assert list(kwargs) == ["path"], kwargs
        return _Query([r for p, r in sorted(fake_state.load().items()) if p == kwargs["path"]])

    def create(self, **values):
        instance = BlueprintInstance(**values)
        instance.save()
        return instance


BlueprintInstance.objects = _Manager()
