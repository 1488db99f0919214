"""Stand-in for authentik/blueprints/v1/importer.py (goauthentik/authentik), reproducing
what decides the outcome of edgeplane's blueprints:

- `_validate_single`: the identifiers (all but `pk`) are AND-ed into one query and the
  importer takes `existing_models.first()`; an existing object is updated with
  `partial=True` (attributes the entry leaves out keep their values), otherwise a new
  one is created from attrs merged with the identifiers (identifiers win,
  `always_merger.merge(full_data, updated_identifiers)`).
- `_apply_models`: `present` saves; `created` saves only when no instance was found
  (an existing one is skipped, "Instance exists, skipping", never updated); `absent`
  deletes the instance found, or skips when there is none; nothing else is ever
  deleted: an object the blueprint stops naming stays as it is. The first invalid entry stops the run (returns False).
- `apply()` runs `_apply_models` in `atomic()` and rolls back when it fails;
  `validate()` runs it in `transaction_rollback()` and always rolls back.
- `!Find [model, [field, value]]` is the pk of the first match or None, `!KeyOf id`
  the pk of the object the entry with that id saved (authentik/blueprints/v1/common.py).

Serializer errors are reproduced for what the tests need: a null flow, a binding with
none of policy, group and user. Marker comments (`# fake-authentik: …`) still force
the outcomes the protocol tests need (unparsable, invalid, apply-fails).
"""
import re
from dataclasses import dataclass, field

import yaml
from django.db.transaction import atomic

import fake_orm
import fake_state
from authentik.events.logs import LogEvent, capture_logs, emit


class EntryInvalidError(Exception):
    pass


class DoRollback(Exception):
    pass


@dataclass
class BlueprintMetadata:
    name: str
    labels: dict = field(default_factory=dict)


class Blueprint:
    def __init__(self, data):
        meta = data.get("metadata")
        self.metadata = BlueprintMetadata(meta["name"], meta.get("labels", {})) if meta else None
        self.context = data.get("context", {})
        self.entries = data.get("entries", [])
        self.version = data.get("version")


class Find:
    def __init__(self, model, query):
        self.model, self.query = model, query


class KeyOf:
    def __init__(self, id_):
        self.id = id_


class BlueprintLoader(yaml.SafeLoader):
    pass


BlueprintLoader.add_constructor("!Find", lambda loader, node: Find(*loader.construct_sequence(node, deep=True)))
BlueprintLoader.add_constructor("!KeyOf", lambda loader, node: KeyOf(loader.construct_scalar(node)))


def marker(content, kind):
    found = re.search(rf"^# fake-authentik: {kind}(?: (.*))?$", content, re.M)
    return None if found is None else (found.group(1) or "")


def null(name):
    return {name: ["ErrorDetail(string='This field may not be null.', code='null')"]}


def serializer_errors(model, data):
    """The serializer errors edgeplane's entries can meet (required, non-null fields)."""
    errors = {}
    if model == fake_orm.PROXY_PROVIDER:
        for name in ("authorization_flow", "invalidation_flow"):
            if data.get(name) is None:
                errors.update(null(name))
    if model == fake_orm.BINDING and not any(data.get(k) for k in ("policy", "group", "user")):
        errors["non_field_errors"] = [
            "ErrorDetail(string=\"One of 'policy', 'group' or 'user' must be set.\", code='invalid')"
        ]
    return errors


class Importer:
    def __init__(self, content, blueprint, context=None):
        self.content = content
        self.blueprint = blueprint
        self.pk_map = {}

    @staticmethod
    def from_string(yaml_input, context=None):
        problem = marker(yaml_input, "unparsable")
        if problem is not None:
            raise EntryInvalidError(problem)
        return Importer(yaml_input, Blueprint(yaml.load(yaml_input, BlueprintLoader)), context)

    def resolve(self, value):
        if isinstance(value, Find):
            found = fake_orm.QuerySet(value.model).filter(**{value.query[0]: value.query[1]}).first()
            return None if found is None else found.pk
        if isinstance(value, KeyOf):
            if value.id not in self.pk_map:
                raise EntryInvalidError(f"KeyOf: failed to find entry with `id` of `{value.id}` and a model instance")
            return self.pk_map[value.id]
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value

    def warn(self, message, entry):
        emit(LogEvent(message, "warning", "authentik.blueprints.v1.importer", {"entry": {"model": entry["model"], "identifiers": {}}}))

    def _apply_models(self):
        self.pk_map = {}
        for entry in self.blueprint.entries:
            model, state = entry["model"], entry.get("state", "present")
            try:
                identifiers = self.resolve(entry.get("identifiers", {}))
                attrs = self.resolve(entry.get("attrs", {}))
            except EntryInvalidError as exc:
                self.warn(f"Entry invalid: {exc}", entry)
                return False
            if not identifiers:
                self.warn("Entry invalid: No or invalid identifiers", entry)
                return False
            instance = fake_orm.QuerySet(model).filter(**identifiers).first()
            if state == "absent":
                if instance is not None:
                    fake_orm.delete(model, instance.pk)
                continue
            data = {**attrs, **identifiers}
            fields = {**instance._fields, **data} if instance is not None else data
            errors = serializer_errors(model, fields)
            if errors:
                self.warn(f"Entry invalid: Serializer errors {errors}", entry)
                return False
            if state == "created" and instance is not None:
                pk = instance.pk  # "Instance exists, skipping": validated, not saved
            else:
                pk = fake_orm.save(model, instance.pk if instance is not None else None, fields)
            if "id" in entry:
                self.pk_map[entry["id"]] = pk
        return True

    def validate(self, raise_validation_errors=False):
        fake_state.set_counter("validations", fake_state.counter("validations") + 1)
        problem = marker(self.content, "invalid")
        if problem is not None:
            entry = {"model": "authentik_policies.policybinding", "identifiers": {"order": 0}}
            return False, [
                LogEvent("Starting blueprint import validation", "debug", "authentik.blueprints.v1.importer"),
                LogEvent(f"Entry invalid: {problem}", "warning", "authentik.blueprints.v1.importer", {"entry": entry}),
                LogEvent("Blueprint validation failed", "warning", "authentik.blueprints.v1.importer"),
            ]
        with capture_logs() as logs:
            try:
                with atomic():
                    successful = self._apply_models()
                    raise DoRollback()
            except DoRollback:
                pass
        return successful, [LogEvent("Finished blueprint import validation", "debug", "authentik.blueprints.v1.importer"), *logs]

    def apply(self):
        problem = marker(self.content, "apply-fails")
        if problem is not None:
            emit(LogEvent(problem, "warning", "authentik.blueprints.v1.importer"))
            return False
        try:
            with atomic():
                if not self._apply_models():
                    raise DoRollback()
        except DoRollback:
            return False
        fake_state.set_counter("applies", fake_state.counter("applies") + 1)
        return True
