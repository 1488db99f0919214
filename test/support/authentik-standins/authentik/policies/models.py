import fake_orm


class PolicyBinding:
    objects = fake_orm.Manager(fake_orm.BINDING)
