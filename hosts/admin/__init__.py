"""The hosts' admin: the Host, CounterRepair and OutsideWrite admins (audit, repair, agent tokens,
outside writes) and the helpers every admin of the project shares (large tables, read-only
admins, errors as messages)."""

from hosts.admin import hosts, outside  # noqa: F401 -- registers the hosts' admin and the outside writes'
