"""A small stand-in for the Django ORM over objects.json, with the relations and
on_delete rules of the Authentik models the blueprints touch."""
import fake_state

GROUP = "authentik_core.group"
USER = "authentik_core.user"
APPLICATION = "authentik_core.application"
PROXY_PROVIDER = "authentik_providers_proxy.proxyprovider"
EXPRESSION_POLICY = "authentik_policies_expression.expressionpolicy"
BINDING = "authentik_policies.policybinding"
FLOW = "authentik_flows.flow"
OUTPOST = "authentik_outposts.outpost"

# Foreign keys: model → field → model it points at.
FOREIGN_KEYS = {
    APPLICATION: {"provider": PROXY_PROVIDER},
    PROXY_PROVIDER: {"authorization_flow": FLOW, "invalidation_flow": FLOW},
    BINDING: {"target": APPLICATION, "policy": EXPRESSION_POLICY, "group": GROUP, "user": USER},
}

# What deleting an object does to the objects pointing at it:
# - PolicyBinding.policy/group/user/target: on_delete=CASCADE (authentik/policies/models.py);
# - Application.provider: on_delete=SET_NULL (authentik/core/models.py);
# - Outpost.providers: a many-to-many, the row goes.
ON_DELETE = {
    APPLICATION: [(BINDING, "target", "cascade")],
    EXPRESSION_POLICY: [(BINDING, "policy", "cascade")],
    GROUP: [(BINDING, "group", "cascade")],
    USER: [(BINDING, "user", "cascade")],
    PROXY_PROVIDER: [(APPLICATION, "provider", "set_null"), (OUTPOST, "providers", "m2m")],
}


class Instance:
    def __init__(self, model, pk, fields):
        self._model = model
        self.pk = pk
        self._fields = fields

    def __getattr__(self, name):
        fields = self.__dict__["_fields"]
        if name not in fields:
            raise AttributeError(name)
        value = fields[name]
        target = FOREIGN_KEYS.get(self._model, {}).get(name)
        if target and value is not None:
            return get(target, value)
        return value

    def all_groups(self):
        return QuerySet(GROUP, list(self._fields.get("groups", [])))


def get(model, pk):
    record = fake_state.load_objects().get(model, {}).get(pk)
    return None if record is None else Instance(model, pk, record)


def _matches(model, pk, record, key, value):
    if isinstance(value, Instance):
        value = value.pk
    if key == "pk":
        return pk == value
    field, _, rest = key.partition("__")
    if rest == "in":
        return record.get(field) in value
    if rest:
        ref = record.get(field)
        target = FOREIGN_KEYS[model][field]
        linked = fake_state.load_objects().get(target, {}).get(ref) if ref is not None else None
        return linked is not None and _matches(target, ref, linked, rest, value)
    return record.get(field) == value


class QuerySet:
    def __init__(self, model, pks=None):
        self.model = model
        table = fake_state.load_objects().get(model, {})
        self.pks = sorted(table) if pks is None else [pk for pk in pks if pk in table]

    def _records(self):
        table = fake_state.load_objects().get(self.model, {})
        return [(pk, table[pk]) for pk in self.pks]

    def filter(self, **kwargs):
        return QuerySet(self.model, [pk for pk, r in self._records() if all(_matches(self.model, pk, r, k, v) for k, v in kwargs.items())])

    def exclude(self, **kwargs):
        # Like Django's exclude: a row whose relation is null is not excluded.
        return QuerySet(self.model, [pk for pk, r in self._records() if not all(_matches(self.model, pk, r, k, v) for k, v in kwargs.items())])

    def first(self):
        records = self._records()
        return Instance(self.model, *records[0]) if records else None

    def exists(self):
        return bool(self.pks)

    def count(self):
        return len(self.pks)

    def __iter__(self):
        return iter([Instance(self.model, pk, r) for pk, r in self._records()])

    def delete(self):
        for pk in list(self.pks):
            delete(self.model, pk)


def delete(model, pk):
    objects = fake_state.load_objects()
    if pk not in objects.get(model, {}):
        return
    del objects[model][pk]
    fake_state.store_objects(objects)
    for other, field, rule in ON_DELETE.get(model, []):
        objects = fake_state.load_objects()
        cascade = []
        for other_pk, record in objects.get(other, {}).items():
            if rule == "m2m" and pk in record.get(field, []):
                record[field] = [p for p in record[field] if p != pk]
            elif rule == "set_null" and record.get(field) == pk:
                record[field] = None
            elif rule == "cascade" and record.get(field) == pk:
                cascade.append(other_pk)
        fake_state.store_objects(objects)
        for other_pk in cascade:
            delete(other, other_pk)


def save(model, pk, fields):
    objects = fake_state.load_objects()
    table = objects.setdefault(model, {})
    if pk is None:
        pk = f"{model.split('.')[1]}-{len(table) + 1}"
        while pk in table:
            pk += "x"
    table[pk] = fields
    fake_state.store_objects(objects)
    return pk


class Manager:
    def __init__(self, model):
        self.model = model

    def filter(self, **kwargs):
        return QuerySet(self.model).filter(**kwargs)

    def all(self):
        return QuerySet(self.model)
