import fake_orm


class Application:
    objects = fake_orm.Manager(fake_orm.APPLICATION)


class Group:
    objects = fake_orm.Manager(fake_orm.GROUP)


class User:
    objects = fake_orm.Manager(fake_orm.USER)
