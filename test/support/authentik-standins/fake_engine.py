"""Who gets through an application: authentik/policies/engine.py PolicyEngine over the
application's enabled bindings, in order. No binding at all: everybody passes
(`empty_result`, True by default). `policy_engine_mode` all: every binding must pass;
any: one is enough. A group binding passes for members (`user.all_groups()`); a policy
binding runs the expression policy as authentik/lib/expression/evaluator.py does: the
expression becomes the body of `handler(request, …)`, with `ak_is_group_member(user,
**filters)` = `user.all_groups().filter(**filters).exists()`. `negate` inverts a result."""
import sys
from textwrap import indent
from types import SimpleNamespace

import fake_orm


def evaluate(expression, request):
    code = "def handler(request):\n" + indent(expression, "    ") + "\nresult = handler(request)\n"
    scope = {"ak_is_group_member": lambda u, **filters: u.all_groups().filter(**filters).exists(), "request": request}
    exec(code, scope)  # noqa: S102 - what Authentik does with an expression policy
    return bool(scope["result"])


def passes(username, slug):
    """True/False for a user at the application with this slug; None when there is no such application."""
    user = fake_orm.QuerySet(fake_orm.USER).filter(username=username).first()
    app = fake_orm.QuerySet(fake_orm.APPLICATION).filter(slug=slug).first()
    if app is None:
        return None
    bindings = sorted((b for b in fake_orm.QuerySet(fake_orm.BINDING).filter(target=app) if b.enabled), key=lambda b: b.order)
    if not bindings:
        return True
    results = []
    for binding in bindings:
        if binding._fields.get("policy"):
            result = evaluate(binding.policy.expression, SimpleNamespace(user=user))
        elif binding._fields.get("group"):
            result = user.all_groups().filter(pk=binding._fields["group"]).exists()
        else:
            result = binding._fields.get("user") == user.pk
        results.append(not result if binding._fields.get("negate") else result)
    return all(results) if app.policy_engine_mode == "all" else any(results)


if __name__ == "__main__":
    # python3 fake_engine.py SLUG USER…: one line per user, "user yes|no|no-application".
    slug = sys.argv[1]
    for name in sys.argv[2:]:
        verdict = passes(name, slug)
        print(name, {True: "yes", False: "no", None: "no-application"}[verdict])
